"""Issue 14's desktop checks: the results panel never clips, the Device menu tells the truth, the Finetune
window's Start, the batch window's keys and counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QVBoxLayout, QWidget


def _prediction(n: int) -> Any:
    from squeezelens.core.predictions import Prediction, TopClass

    top = [TopClass(i, f"class number {i} with a longish name", 1.0 / (i + 2)) for i in range(n)]
    return Prediction("a photo with a long file name.jpg", "seresnext26d_32x4d", top=top, untrained=True,
                      load_ms=3.0, infer_ms=12.0)


def _reachable(panel: Any, w: QWidget) -> bool:
    """``w`` is shown whole, or can be scrolled to whole: it lies inside the area its parent offers."""
    parent = w.parentWidget()
    g = w.geometry()
    return g.top() >= 0 and g.bottom() < parent.height() and g.height() >= w.minimumSizeHint().height()


@pytest.mark.parametrize("size", [(260, 330), (300, 420), (420, 240)])
def test_results_panel_never_clips_top10_and_the_untrained_banner(qtbot: Any, size: tuple[int, int]) -> None:
    """The panel sizes the main window gives it at small window sizes (of the order of 640x400 and 800x500): Top 10
    with the untrained warning. Before issue 14 the bars ran past the panel's bottom edge (9 of 10 shown,
    3 of 5 at 800x500) and the banner was cut mid-sentence; now the content scrolls."""
    from squeezelens.gui.results_panel import ResultsPanel

    host = QWidget()
    qtbot.addWidget(host)
    panel = ResultsPanel()
    QVBoxLayout(host).addWidget(panel)
    host.resize(*size)
    host.show()
    panel.set_untrained("seresnext26d_32x4d")
    panel.show_prediction("a photo with a long file name.jpg", _prediction(10))
    qtbot.waitExposed(host)
    qtbot.wait(20)  # layouts settle
    for w in (panel.title, panel.banner, panel.bars, panel.timing):
        assert w.isVisible()
        assert _reachable(panel, w), f"{w.objectName() or type(w).__name__} is clipped at {size}"
    assert panel.banner.height() >= panel.banner.heightForWidth(panel.banner.width())
    assert panel.bars.height() >= panel.bars.sizeHint().height()  # all 10 rows
    sb = panel.scroll.verticalScrollBar()
    sb.setValue(sb.maximum())  # the last bar can be scrolled into view
    qtbot.wait(10)
    bottom = panel.bars.mapTo(panel, panel.bars.rect().bottomLeft()).y()
    assert bottom <= panel.height()


def test_device_availability_on_this_machine() -> None:
    import torch

    from squeezelens.core.device_info import NO_CUDA, device_availability

    reasons = device_availability()
    assert reasons["cpu"] is None and reasons["auto"] is None
    if not torch.cuda.is_available():
        assert reasons["cuda"] == NO_CUDA and "--" not in NO_CUDA


def test_device_menu_on_a_machine_without_a_gpu(qtbot: Any, make_window: Any, classifier: Any) -> None:
    """Unavailable devices are disabled with the reason; choosing one that fails anyway (a GPU that went
    away) keeps the corner label on the device that really runs, says so in words, with no CLI advice.
    Before issue 14: CUDA offered on a CPU-only machine, the label read "CUDA" while the CPU ran the
    model, and the notice said "use --device cpu" and "Could not load X; still using X"."""
    from squeezelens.core.device_info import NO_CUDA, NO_MPS
    from squeezelens.core.errors import UsageError

    def loader(spec: Any, progress: Any, cancel: Any) -> Any:
        if spec.device == "cuda":
            raise UsageError("CUDA was requested but no CUDA GPU is available here; use --device cpu")
        return classifier

    window = make_window(loader)
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=30_000)
    label = window.device_label.text()
    assert label and "CUDA" not in label
    window.client.devicesReady.emit({"auto": None, "cpu": None, "cuda": NO_CUDA, "mps": NO_MPS})
    actions = {a.data(): a for a in window.device_group.actions()}
    assert actions["cpu"].isEnabled() and actions["auto"].isEnabled()
    for value, reason in (("cuda", NO_CUDA), ("mps", NO_MPS)):
        assert not actions[value].isEnabled()
        assert reason.lower() in actions[value].toolTip().lower() and "not available" in actions[value].text()
    assert window.device_menu.toolTipsVisible()

    window.choose_device("cuda")  # as if chosen before the menu knew (the action itself is disabled)
    assert window.device_label.text() == label  # while loading: still where the answering model runs
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=30_000)
    assert window.device_label.text() == label
    assert window.settings.device != "cuda" and actions["cuda"].isChecked() is False
    status = window.status_label.text()
    assert "Could not use CUDA" in status and label in status
    assert "--" not in window.notice.text() and "Could not use CUDA" in window.notice.text()


def test_batch_summary_wording() -> None:
    from squeezelens.gui.batch_window import summary_text

    assert summary_text(6, 6, 1, finished=True) == "6 images: 5 classified, 1 could not be read"
    assert summary_text(1, 1, 0, finished=True) == "1 image: 1 classified"
    assert summary_text(6, 2, 0, finished=False) == "Classifying: 2 of 6 images..."
    assert summary_text(6, 2, 0, finished=True, cancelled=True) == "6 images: 2 classified, 4 not done (cancelled)"


@pytest.mark.parametrize("how", ["escape", "ctrl+w", "button"])
def test_batch_window_keys_close_and_the_summary_stays(qtbot: Any, tmp_path: Path, how: str) -> None:
    """Esc, Ctrl+W and a Close button close the batch window (before issue 14 none did); saving the CSV
    answers on a line of its own: the counts and the untrained warning stay."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from squeezelens.core.predictions import Prediction, TopClass
    from squeezelens.gui.batch_window import BatchWindow

    w = BatchWindow(1)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    sources = [str(tmp_path / f"img{i}.jpg") for i in range(6)]
    w.start(sources)
    for i, src in enumerate(sources):
        pred = Prediction(src, "m", [TopClass(0, "cat", 0.9)]) if i != 3 else Prediction(src, "m", [], error="bad")
        pred.untrained = True
        w.add(i, pred)
    w.finish(False)
    assert w.summary.text() == "6 images: 5 classified, 1 could not be read"
    assert w.untrained_label.isVisible()
    w.export_csv(str(tmp_path / "results.csv"))
    w.action_status.setText("Saved results.csv")  # what export_csv_dialog says after the dialog
    assert w.summary.text() == "6 images: 5 classified, 1 could not be read" and w.untrained_label.isVisible()
    from PySide6.QtWidgets import QApplication

    w.activateWindow()
    import warnings

    with warnings.catch_warnings():  # deprecated, but offscreen has no window manager to activate it
        warnings.simplefilter("ignore", DeprecationWarning)
        QApplication.setActiveWindow(w)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=2000)
    w.table.setFocus()
    if how == "escape":
        QTest.keyClick(w.table, Qt.Key.Key_Escape)
    elif how == "ctrl+w":
        QTest.keyClick(w.table, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    else:
        w.close_button.click()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=2000)


def test_title_names_the_image_errors_stay_and_help_lists_shortcuts(
        qtbot: Any, make_window: Any, photo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    photo = sorted(photo_dir.iterdir())[0]
    window.open_path(str(photo))
    qtbot.waitUntil(lambda: photo.name in window.windowTitle(), timeout=10_000)
    assert window.windowTitle().endswith("SqueezeLens")
    window.show_notice("Could not load x: broken", error=True)
    assert window.notice.isVisible() and not window._notice_timer.isActive()  # an error stays
    window.show_notice("Download cancelled.")
    assert window._notice_timer.isActive()  # information fades
    assert "Keyboard Shortcuts" in [a.text().replace("&", "") for a in window.menuBar().actions()[-1].menu().actions()]
    shown: list[str] = []
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "open", lambda self: shown.append(self.text()))
    window.act_shortcuts.trigger()
    assert shown and "Ctrl+O" in shown[0] and "Ctrl+K" in shown[0]


def test_copy_to_class_folders_asks_first_with_an_untrained_model_and_starts_outside_the_source(
        qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from squeezelens.gui.batch_window import BatchWindow

    w = BatchWindow(1)
    qtbot.addWidget(w)
    w.last_folder = str(tmp_path / "photos")
    w.untrained = True
    asked: list[str] = []
    starts: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.No)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: starts.append(a[2]) or "")
    w.copy_dialog()
    assert asked == ["Sort with an untrained model?"] and starts == []  # "No": nothing copied, no dialog
    w.untrained = False
    w.copy_dialog()
    assert starts == [str(tmp_path)]  # beside the source folder, not inside it
