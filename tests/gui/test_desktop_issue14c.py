"""Issue 14, second round: the camera page without a camera, the batch window's thumbnails and per-image
CSV, the drop highlight, toolbar icons and Tab order, elided file names, secondary-text contrast and the
model picker's facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

WAIT_MS = 30_000


def test_camera_page_without_a_camera(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No camera: Capture and Hold to record are disabled with the reason as tooltip (before: enabled, and
    pressing them talked about the dataset folder); the no-camera message is said once (before: also
    "No live video." in the results panel; capture messages also repeated in the notice bar)."""
    from PySide6.QtWidgets import QLabel

    from squeezelens.gui import camera_source as cs
    from squeezelens.gui.camera_page import NO_VIDEO_TO_CAPTURE

    monkeypatch.setattr(cs, "list_cameras", lambda: [])
    window = make_window()
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    window.act_camera.trigger()
    page = window.camera_page
    qtbot.waitUntil(lambda: page.view.message == cs.NO_CAMERA, timeout=WAIT_MS)
    cap = page.capture
    for button in (cap.capture, cap.record):
        assert not button.isEnabled() and NO_VIDEO_TO_CAPTURE in button.toolTip()
    shown = [lbl.text() for lbl in window.findChildren(QLabel) if lbl.isVisible()]
    assert not any("no live video" in t.lower() or "no camera" in t.lower() for t in shown), shown
    cap.set_dataset("")
    assert not cap.capture_one()
    assert "dataset folder" in cap.status.text() and "dataset folder" not in window.notice.text()


def test_removing_a_class_keeps_its_files(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A class can be removed from the list, after a question that says nothing is deleted; its folder and
    images stay, it does not come back from the folder scan, and adding it again brings it back."""
    from PySide6.QtWidgets import QMessageBox

    from squeezelens.gui.capture_panel import CapturePanel
    from squeezelens.gui.settings import AppSettings

    dataset = tmp_path / "dataset"
    (dataset / "apple").mkdir(parents=True)
    (dataset / "apple" / "a.jpg").write_bytes(b"x")
    settings = AppSettings()
    settings.capture_folder = str(dataset)
    panel = CapturePanel(settings, lambda: None)
    qtbot.addWidget(panel)
    panel.add("pear")
    assert panel.class_names() == ["pear", "apple"]
    qtbot.waitUntil(lambda: not panel.counting, timeout=WAIT_MS)
    panel.select("apple")
    asked: list[str] = []
    yes = QMessageBox.StandardButton.Yes
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or yes)
    panel.remove_class.click()
    assert asked and "stay on disk" in asked[0] and "1 image " in asked[0]
    assert panel.class_names() == ["pear"] and (dataset / "apple" / "a.jpg").is_file()
    assert "left on disk" in panel.status.text()
    again = CapturePanel(settings, lambda: None)
    qtbot.addWidget(again)
    assert again.class_names() == ["pear"]  # remembered
    again.shutdown(5000)
    panel.add("apple")
    assert panel.class_names() == ["pear", "apple"]
    panel.shutdown(5000)


def test_per_image_csv() -> None:
    """One row per image (top-1), besides the CLI's one row per (image, rank); unknown when in force."""
    from squeezelens.core.predictions import Prediction, TopClass
    from squeezelens.core.report import format_csv, format_csv_per_image

    preds = [Prediction("a.jpg", "m", [TopClass(3, "cat", 0.75), TopClass(1, "dog", 0.25)]),
             Prediction("b.jpg", "m", [], error="b.jpg: not an image")]
    assert format_csv_per_image(preds).splitlines() == [
        "path,label,prob,error", "a.jpg,cat,0.75000000,", "b.jpg,,,b.jpg: not an image"]
    assert len(format_csv(preds, False).splitlines()) == 4  # the per-rank CSV is unchanged
    preds[0].unknown = True
    assert format_csv_per_image(preds).splitlines()[:2] == [
        "path,label,prob,unknown,error", "a.jpg,cat,0.75000000,true,"]


def test_batch_window_thumbnails_and_csv_choice(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The table shows a small thumbnail per row, decoded in a background task (not the GUI thread) and
    cached; Export CSV offers both layouts, named, and writes the chosen one."""
    import threading

    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QFileDialog

    from squeezelens.core.predictions import Prediction, TopClass
    from squeezelens.gui import batch_thumbs
    from squeezelens.gui.batch_window import CSV_PER_IMAGE, CSV_PER_RANK, BatchWindow

    sources = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (300, 200), (200, 40 * i, 0)).save(p)
        sources.append(str(p))
    decoded_in: list[str] = []
    real = batch_thumbs.read_for_display
    monkeypatch.setattr(batch_thumbs, "read_for_display",
                        lambda *a, **k: decoded_in.append(threading.current_thread().name) or real(*a, **k))
    w = BatchWindow(1)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.start(sources)
    for i, src in enumerate(sources):
        w.add(i, Prediction(src, "m", [TopClass(0, "cat", 0.9), TopClass(1, "dog", 0.1)]))
    w.finish(False)
    index = w.model.index(0, 0)
    qtbot.waitUntil(lambda: isinstance(w.model.data(index, Qt.ItemDataRole.DecorationRole), QPixmap), timeout=WAIT_MS)
    pix = w.model.data(index, Qt.ItemDataRole.DecorationRole)
    assert 0 < pix.deviceIndependentSize().width() <= batch_thumbs.THUMB_PX
    assert decoded_in and threading.main_thread().name not in decoded_in
    n = len(decoded_in)
    w.model.data(index, Qt.ItemDataRole.DecorationRole)
    assert len(decoded_in) == n  # cached

    filters: list[str] = []
    for chosen, rows in ((CSV_PER_IMAGE, 4), (CSV_PER_RANK, 7)):
        out = tmp_path / "r.csv"
        monkeypatch.setattr(QFileDialog, "getSaveFileName",
                            lambda *a, c=chosen, o=out: filters.append(a[3]) or (str(o), c))
        w.export_csv_dialog()
        assert len(out.read_text().splitlines()) == rows
    assert "One row per image:" in filters[0] and "per image and rank" in filters[0]
    assert "per image" in w.action_status.text()
    assert w.wait_for_copies(5000)


def test_drop_highlight_toolbar_icons_and_tab_order(qtbot: Any, make_window: Any, photo_dir: Path) -> None:
    """Dragging a file over the window shows a highlight (gone on leave and on drop); the toolbar's buttons
    have icons and take Tab focus (before: no highlight, text-only buttons that Tab skipped)."""
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent
    from PySide6.QtWidgets import QApplication, QToolBar, QToolButton

    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sorted(photo_dir.iterdir())[0]))])
    enter = QDragEnterEvent(QPoint(20, 80), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    highlight = window.findChild(QWidget_type(), "dropHighlight")
    assert highlight is not None and highlight.isVisible()
    assert highlight.geometry() == window.centralWidget().rect()
    QApplication.sendEvent(window, QDragLeaveEvent())
    assert not highlight.isVisible()

    tools = window.findChild(QToolBar, "mainToolbar")
    buttons = [tools.widgetForAction(a) for a in tools.actions() if isinstance(tools.widgetForAction(a), QToolButton)]
    assert len(buttons) >= 5
    for b in buttons:
        assert not b.icon().isNull() or not b.defaultAction().icon().isNull(), b.text()
        assert b.focusPolicy() & Qt.FocusPolicy.TabFocus, b.text()


def QWidget_type() -> Any:  # noqa: N802
    from PySide6.QtWidgets import QWidget

    return QWidget


def test_long_file_names_are_elided_in_the_middle_with_a_tooltip(qtbot: Any) -> None:
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from squeezelens.gui.results_panel import ResultsPanel

    host = QWidget()
    qtbot.addWidget(host)
    panel = ResultsPanel()
    QVBoxLayout(host).addWidget(panel)
    host.resize(340, 400)
    host.show()
    qtbot.waitExposed(host)
    name = "a-very-long-photo-name-from-the-camera-roll-with-no-spaces-at-all-2026-11-29-IMG_0001.jpg"
    panel.show_message("x", name)
    qtbot.wait(20)
    assert panel.title.width() <= host.width()  # the panel was not pushed wider than the window
    shown = panel.title.elided_text()
    assert "\u2026" in shown and shown.startswith("a-very") and shown.endswith(".jpg")
    assert panel.title.toolTip() == name and panel.title.text() == name


def _palettes() -> list[tuple[str, Any]]:
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication, QStyleFactory

    light = QStyleFactory.create("Fusion").standardPalette()
    dark = QPalette(QApplication.palette())
    R = QPalette.ColorRole
    # the colours of scripts/screenshot_support.apply_dark_palette
    for role, colour in ((R.Window, "#2b2b2b"), (R.WindowText, "#e6e6e6"), (R.Base, "#1f1f1f"),
                         (R.Text, "#e6e6e6"), (R.PlaceholderText, "#a0a0a0")):
        dark.setColor(role, QColor(colour))
    return [("light", light), ("dark", dark), ("app", QApplication.palette())]


@pytest.mark.parametrize("which", ["light", "dark", "app"])
def test_secondary_text_contrast_at_least_4_5(qtbot: Any, which: str) -> None:
    """The empty view's hint ("Drop an image...") as painted, against the window colour: at least 4.5:1
    (WCAG AA). Before: the palette's placeholder colour, 3.89:1 in Fusion's light palette."""
    from PySide6.QtGui import QPalette

    from squeezelens.gui.contrast import MIN_CONTRAST, contrast_ratio
    from squeezelens.gui.image_view import ImageView

    palette = dict(_palettes())[which]
    view = ImageView()
    qtbot.addWidget(view)
    view.setPalette(palette)
    view.setAutoFillBackground(True)
    view.resize(400, 200)
    image = view.grab().toImage()
    bg = palette.color(QPalette.ColorRole.Window)
    best = max(contrast_ratio(image.pixelColor(x, y), bg) for x in range(0, 400) for y in range(80, 120))
    assert best >= MIN_CONTRAST, f"{which}: {best:.2f}:1"


def test_model_picker_facts_and_download(qtbot: Any) -> None:
    """Each variant shows its size and timm's published ImageNet top-1 (with the source in the tooltip);
    "needs download" is explained, and the Download action loads it through the normal path (modelChosen)."""
    from squeezelens.core.imagenet_results import RESULTS, SOURCE_URL, SPEED_SOURCE_URL
    from squeezelens.gui.model_picker import ModelPicker
    from squeezelens.gui.worker import CatalogueEntry

    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_catalogue([
        CatalogueEntry("seresnext26d_32x4d.bt_in1k", "seresnext26d_32x4d", True, "apache-2.0", True, 224),
        CatalogueEntry("seresnext50_32x4d.racm_in1k", "seresnext50_32x4d", False, "apache-2.0", True, 224),
        CatalogueEntry("seresnext26ts.ch_in1k", "seresnext26ts", False, "apache-2.0", True, 0),
    ])
    picker.set_current("seresnext26d_32x4d")
    # size, accuracy and speed at the size the app runs it at (timm's CPU benchmark: 22.357 ms at 224)
    assert picker.itemText(0) == "seresnext26d_32x4d  16.8M params, 78.8% top-1, ~22 ms/image  (cached)"
    tip = picker.itemData(1, 3)
    assert "82.20%" in tip and SOURCE_URL in tip and "288 x 288" in tip
    assert "runs here at: 224 x 224" in tip and "4.26 billion multiply-adds" in tip and SPEED_SOURCE_URL in tip
    assert "ms/image" not in picker.itemText(2) and "multiply-adds" not in picker.itemData(2, 3)  # no row: no figure
    # the closed box shows the short label (the toolbar cut the facts mid-number); the open list all of it
    from squeezelens.gui.model_picker import SHORT_LABEL_ROLE

    assert picker.itemData(0, SHORT_LABEL_ROLE) == "seresnext26d_32x4d"
    assert picker.itemData(1, SHORT_LABEL_ROLE) == "seresnext50_32x4d  (needs download)"
    assert picker.sizeHint().width() < picker.fontMetrics().horizontalAdvance(picker.itemText(0))
    assert picker.view().minimumWidth() >= picker.view().sizeHintForColumn(0)
    assert "Hugging Face Hub" in tip and f"about {RESULTS['seresnext50_32x4d.racm_in1k'].params_m * 4:.0f} MB" in tip
    assert not picker.download_action.isEnabled()  # the current one is cached
    chosen: list[str] = []
    picker.modelChosen.connect(chosen.append)
    assert not picker.download(0)
    picker.setCurrentIndex(1)
    assert picker.download_action.isEnabled() and picker.download_action in picker.actions()
    picker.download_action.trigger()
    assert chosen == ["seresnext50_32x4d"]
