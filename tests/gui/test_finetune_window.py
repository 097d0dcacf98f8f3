"""The Finetune window driven like a user: real quick/deep runs on a made-up shapes dataset.

Models are randomly initialised seresnext26d_32x4d (no weights can be downloaded in tests; the
window says so) at a tiny input size, so a quick run takes a few seconds on two CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from squeezelens.core import finetune as core_finetune
from squeezelens.core.errors import DatasetError, ScanCancelled
from squeezelens.core.finetune import EpochEvent, StageEvent
from squeezelens.gui.confusion_view import MAX_CELL_IMAGES, CellImages
from squeezelens.gui.finetune_form import DatasetScanner, default_output_for
from squeezelens.gui.finetune_window import FinetuneWindow
from squeezelens.gui.settings import AppSettings
from squeezelens.gui.tasks import Task, running_tasks

ARCH = "seresnext26d_32x4d"
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def shapes(shapes_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes x 8 images (48 px) and one unreadable file."""
    data = shapes_module.make_dataset(tmp_path_factory.mktemp("ft") / "shapes", per_class=8, size=48)
    (data / "red_circles" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return data


@pytest.fixture
def no_dialogs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail on any message box; ``_confirm`` questions are answered yes and recorded."""
    asked: list[str] = []

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a message box was shown: {args[1:3]}")

    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, boom)
    monkeypatch.setattr(FinetuneWindow, "_confirm", lambda self, title, text: asked.append(title) or True)
    return asked


@pytest.fixture
def make_ft(qtbot: Any, no_dialogs: list[str]) -> Iterator[Any]:
    """``make_ft(data, out, mode="quick", epochs=3)``: a shown Finetune window with its form filled in."""
    windows: list[FinetuneWindow] = []

    def make(data: Path, out: Path, mode: str = "quick", epochs: int = 3, size: int = 32) -> FinetuneWindow:
        settings = AppSettings()
        settings.device = "cpu"
        w = FinetuneWindow(settings, ARCH)
        qtbot.addWidget(w)
        windows.append(w)
        w.show()
        fill(w, data, out, mode, epochs, size)
        return w

    yield make
    for w in windows:
        assert w.shutdown(20_000), "the finetune thread did not stop"


def fill(w: FinetuneWindow, data: Path, out: Path, mode: str = "quick", epochs: int = 3, size: int = 32) -> None:
    w.form.set_data_folder(str(data))
    w.form.mode.setCurrentIndex(w.form.mode.findData(mode))
    w.form.epochs.setValue(epochs)
    w.form.input_size.setValue(size)
    w.form.output_edit.setText(str(out))


def wait_idle(qtbot: Any, w: FinetuneWindow, timeout: int = RUN_TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: w.run is None, timeout=timeout)


def hold_until_cancelled(monkeypatch: pytest.MonkeyPatch, when: Any) -> None:
    """Hold the next run (in its own thread, once the window has been sent the event) at the first event for
    which ``when(event)`` is true until it is cancelled, so a test can cancel from the GUI at that exact
    point, however fast the run is. Call it before starting the run."""
    run_finetune = core_finetune.finetune
    held: list[Any] = []

    def finetune(config: Any, on_event: Any, cancel: threading.Event, **kwargs: Any) -> Any:
        def gate(e: Any) -> None:
            on_event(e)
            if not held and when(e):
                held.append(e)
                cancel.wait(20)

        return run_finetune(config, gate, cancel, **kwargs)  # e.g. stage_only (issue 16's staged save)

    monkeypatch.setattr(core_finetune, "finetune", finetune)


def click_cell(qtbot: Any, w: FinetuneWindow, t: int, p: int) -> None:
    view = w.results.confusion
    rect = view.visualRect(view.matrix.index(t, p))
    view.scrollTo(view.matrix.index(t, p))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_startup_imports_neither_the_window_nor_qtcharts() -> None:
    code = ("import sys, squeezelens.gui.main_window, squeezelens.gui.app; "
            "print(sorted(m for m in ('PySide6.QtCharts', 'squeezelens.gui.finetune_window', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_opened_once_from_the_model_menu_with_the_capture_folder_offered(make_window: Any, shapes: Path,
                                                                        tmp_path: Path, qtbot: Any) -> None:
    main = make_window()
    main.settings.capture_folder = str(shapes)
    assert main.act_finetune.shortcut().toString() == "Ctrl+T"
    model_menu = next(a.menu() for a in main.menuBar().actions() if a.text() == "&Model")
    assert main.act_finetune in model_menu.actions()
    main.act_finetune.trigger()
    ft = main.finetune_window
    assert ft is not None and ft.isVisible()
    assert ft.form.base_picker.current_name() == ARCH  # the main window's model
    assert ft.form.data_combo.itemText(0) == str(shapes)  # the camera's capture folder is offered (and chosen)
    assert ft.form.data_folder() == str(shapes)
    assert ft.form.output_edit.text() == default_output_for(str(shapes)) == str(shapes.parent / "shapes-model")
    qtbot.waitUntil(lambda: ft.form.scan is not None, timeout=10_000)
    ft.close()
    main.settings.capture_folder = str(tmp_path / "captures")  # the camera chose another folder meanwhile
    main.act_finetune.trigger()
    assert main.finetune_window is ft and ft.isVisible()  # one window, shown again
    assert ft.form.data_combo.itemText(0) == str(tmp_path / "captures")  # offered
    assert ft.form.data_folder() == str(shapes)  # the folder on show stays


def test_preview_lists_classes_counts_small_classes_and_unreadable_files(
        make_ft: Any, shapes_module: ModuleType, tmp_path: Path, qtbot: Any) -> None:
    data = shapes_module.make_dataset(tmp_path / "few", per_class=6, size=32, classes=("checkerboard", "red_circles"))
    for f in sorted((data / "red_circles").iterdir())[3:]:
        f.unlink()
    (data / "checkerboard" / "notes.jpg").write_text("not an image")
    w = make_ft(data, tmp_path / "out")
    qtbot.waitUntil(lambda: w.form.scan is not None, timeout=10_000)
    items = [w.form.preview.topLevelItem(i) for i in range(w.form.preview.topLevelItemCount())]
    rows = [(item.text(0), item.text(1), item.text(2)) for item in items]
    assert rows == [("checkerboard", "5", "1"), ("red_circles", "2", "1")]
    note = w.form.preview_note.text()
    assert "2 classes, 7 training and 2 validation images" in note
    assert "fewer than 5 images in: red_circles (3)" in note
    assert "1 file will be skipped" in note and "notes.jpg" in note


def test_one_class_folder_is_a_clear_error_in_the_window(make_ft: Any, shapes_module: ModuleType,
                                                         tmp_path: Path, qtbot: Any) -> None:
    data = shapes_module.make_dataset(tmp_path / "one", per_class=4, size=32, classes=("red_circles",))
    w = make_ft(data, tmp_path / "out")
    qtbot.waitUntil(lambda: bool(w.form.scan_error), timeout=10_000)
    assert "needs at least 2 classes" in w.form.preview_note.text()
    # issue 14: Start is not offered for a folder the preview already refused, and the status says why
    assert not w.start_button.isEnabled() and not w.status.text().startswith("Ready")
    assert "needs at least 2 classes" in w.status.text() and "c62828" in w.status.styleSheet()
    assert w.start()  # a stale click (or Enter) still gets the run's own answer, in the status line
    wait_idle(qtbot, w)
    assert "needs at least 2 classes" in w.status.text() and "Traceback" not in w.status.text()
    assert "c62828" in w.status.styleSheet()  # shown as an error
    assert w.result is None and not (tmp_path / "out").exists()
    assert not w.start_button.isEnabled() and not w.cancel_button.isEnabled()


@pytest.mark.slow
def test_quick_run_shows_progress_curves_results_and_switches_the_main_window(
        make_window: Any, classifier: Any, shapes: Path, tmp_path: Path, qtbot: Any, no_dialogs: list[str]) -> None:
    from squeezelens.core.engine import Classifier

    def loader(spec: Any, progress: Any, cancel: Any) -> Any:  # the real load of a saved folder
        return classifier if spec.name is None else Classifier.load(spec.name, device="cpu", backend="torch")

    main = make_window(loader=loader)
    qtbot.waitUntil(lambda: main.model_state is not None, timeout=10_000)
    main.act_finetune.trigger()
    w = main.finetune_window
    out = tmp_path / "shapes-model"
    fill(w, shapes, out, "quick", epochs=4)
    seen: list[tuple[int, int, str, str]] = []  # the progress bar and ETA after each event the window handled
    assert w.start()
    w.run.progressed.connect(lambda _run, e: seen.append((w.progress.value(), w.progress.maximum(),
                                                             w.progress.format(), w.eta_label.text())))
    assert not w.start_button.isEnabled() and w.cancel_button.isEnabled() and not w.form.data_combo.isEnabled()
    wait_idle(qtbot, w)
    r = w.result
    assert r is not None, w.status.text()
    assert no_dialogs == []  # a new output folder: nothing to confirm

    # progress per batch, with an ETA
    assert any("features, batch" in f for _, _, f, _ in seen)
    assert (1000, 1000, "epoch 4/4, batch 1/1", "training ETA 0:00") in seen  # 24 training vectors: 1 batch an epoch
    assert any("ETA" in eta for *_, eta in seen)
    # one chart point per epoch, the run's own numbers
    assert [p[0] for p in w.results.loss_chart.points()] == [h.epoch for h in r.history]
    assert w.results.loss_chart.points() == [(h.epoch, h.train_loss, h.val_loss) for h in r.history]
    assert w.results.acc_chart.points() == [(h.epoch, 100 * h.train_acc, 100 * h.val_acc) for h in r.history]
    # results: accuracy, per class, the confusion matrix as computed, skipped files
    assert f"Validation accuracy {r.val_accuracy:.1%}" in w.results.summary.text()
    assert "no pretrained weights" in w.results.summary.text()
    names = r.class_names
    assert [w.results.confusion.matrix.headerData(i, Qt.Orientation.Horizontal) for i in range(4)] == names
    assert [[w.results.confusion.cell_count(t, p) for p in range(4)] for t in range(4)] == r.confusion
    assert sum(map(sum, r.confusion)) == 8  # 2 validation images per class
    assert [w.results.per_class.item(i, 0).text() for i in range(4)] == [m.name for m in r.per_class]
    assert [w.results.per_class.item(i, 2).text() for i in range(4)] == [f"{m.recall:.1%}" for m in r.per_class]
    issues = [w.results.issues.item(i).text() for i in range(w.results.issues.count())]
    assert any("broken.jpg" in t for t in issues)
    # clicking a cell lists exactly its images
    for t, p in [(0, 0), (3, 3), (1, 2)]:
        click_cell(qtbot, w, t, p)
        assert w.results.cell_images.paths() == [str(x) for x in r.images_in_cell(t, p)]
    assert len(w.results.cell_images.paths()) == r.confusion[1][2]
    click_cell(qtbot, w, 3, 3)
    assert len(w.results.cell_images.paths()) == r.confusion[3][3] > 0
    chosen: list[tuple[int, int]] = []
    w.results.confusion.cellChosen.connect(lambda t, p: chosen.append((t, p)))
    qtbot.keyClick(w.results.confusion, Qt.Key.Key_Up)  # the arrow keys move through the cells too
    assert w.results.cell_images.paths() == [str(x) for x in r.images_in_cell(2, 3)]
    click_cell(qtbot, w, 0, 1)
    assert chosen == [(2, 3), (0, 1)]  # once per cell: each is listed (and its thumbnails loaded) once
    qtbot.waitUntil(lambda: not w.results.cell_images.loader.running, timeout=5000)

    # the saved model: timm's layout, and "Use this model" makes the main window load and use it
    assert json.loads((out / "config.json").read_text())["label_names"] == names
    w.results.use_button.click()
    assert main.settings.model == str(out.resolve())
    assert main.settings.recent_models[0] == str(out.resolve())
    qtbot.waitUntil(lambda: main.model_state is not None and main.model_state.name == str(out.resolve()),
                    timeout=20_000)
    assert main.model_state.num_classes == 4
    main.open_path(str(r.images_in_cell(0, 0)[0]))
    qtbot.waitUntil(lambda: main.current is not None and main.current.prediction is not None, timeout=20_000)
    assert main.current.prediction.top[0].label in names


def test_cancel_keeps_the_earlier_model_and_returns_to_idle(make_ft: Any, shapes: Path, tmp_path: Path,
                                                            qtbot: Any, no_dialogs: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "models" / "model"
    out.mkdir(parents=True)
    (out / "config.json").write_text('{"architecture": "seresnext26d_32x4d", "num_classes": 2}')
    (out / "model.safetensors").write_bytes(b"earlier weights")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    w = make_ft(shapes, out)
    hold_until_cancelled(monkeypatch, lambda e: isinstance(e, StageEvent) and e.stage == "features")
    assert w.start()
    assert no_dialogs == ["Replace the saved model?"]  # asked before replacing a model folder
    qtbot.waitUntil(lambda: w.progress.format().startswith("features"), timeout=20_000)
    w.cancel_button.click()
    assert not w.cancel_button.isEnabled() and not w.start_button.isEnabled()  # until the thread has stopped
    wait_idle(qtbot, w)
    assert w.result is None
    assert w.status.text().startswith("Cancelled"), w.status.text()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir()] == ["model"]  # no temp folder left beside it
    assert w.start_button.isEnabled() and not w.cancel_button.isEnabled() and w.form.data_combo.isEnabled()
    assert not w.resume_button.isVisible()  # quick mode has nothing to resume
    assert w.progress.format() == "cancelled"


def test_declining_to_replace_an_existing_model_does_not_start(make_ft: Any, shapes: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")
    w = make_ft(shapes, out)
    monkeypatch.setattr(FinetuneWindow, "_confirm", lambda self, title, text: False)
    assert not w.start() and w.run is None
    w.form.output_edit.setText(str(shapes / "new-model"))  # inside the dataset: refused with a reason
    assert not w.start() and "inside the dataset folder" in w.status.text()


@pytest.mark.slow
def test_deep_run_cancelled_after_an_epoch_resumes_to_the_end(make_ft: Any, shapes_module: ModuleType,
                                                              tmp_path: Path, qtbot: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = shapes_module.make_dataset(tmp_path / "deep", per_class=4, size=32, classes=("checkerboard", "red_circles"))
    out = tmp_path / "deep-model"
    w = make_ft(data, out, "deep", epochs=2)
    hold_until_cancelled(monkeypatch, lambda e: isinstance(e, EpochEvent))
    assert w.start()
    qtbot.waitUntil(lambda: len(w.results.loss_chart.points()) == 1, timeout=30_000)
    w.cancel_button.click()
    wait_idle(qtbot, w)
    assert w.result is None and not out.exists()
    assert w.resume_button.isVisible() and w.resume_button.text() == "Resume (after epoch 1)"
    assert len(w.results.loss_chart.points()) == 1
    w.resume_button.click()
    assert not w.resume_button.isVisible()
    wait_idle(qtbot, w)
    r = w.result
    assert r is not None, w.status.text()
    assert [h.epoch for h in r.history] == [1, 2]
    assert [p[0] for p in w.results.loss_chart.points()] == [1, 2]
    assert (out / "config.json").is_file()


def test_closing_mid_run_asks_then_stops_the_thread(make_ft: Any, shapes: Path, tmp_path: Path, qtbot: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_ft(shapes, tmp_path / "out")
    answers = [False, True]
    monkeypatch.setattr(FinetuneWindow, "_confirm", lambda self, title, text: answers.pop(0))
    assert w.start()
    run = w.run
    w.close()  # "keep training"
    assert w.isVisible() and w.run is run and not run.cancel_requested
    w.close()  # "stop and close"
    assert not w.isVisible() and run.cancel_requested
    wait_idle(qtbot, w, timeout=20_000)
    assert w.result is None and not (tmp_path / "out").exists()


def test_closing_the_main_window_mid_run_stops_the_finetune_thread(make_window: Any, shapes: Path, tmp_path: Path,
                                                                   qtbot: Any, no_dialogs: list[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    main = make_window()
    main.open_finetune()
    w = main.finetune_window
    fill(w, shapes, tmp_path / "out")
    hold_until_cancelled(monkeypatch, lambda e: isinstance(e, StageEvent) and e.stage == "features")
    assert w.start()
    run = w.run
    qtbot.waitUntil(lambda: w.progress.format().startswith("features"), timeout=20_000)
    main.close()
    assert no_dialogs == ["Stop training?"]  # asked first (answered yes here)
    assert not w.isVisible() and run.cancel_requested
    qtbot.waitUntil(lambda: w.run is None, timeout=20_000)  # stopped (the main close waits at most 1.8 s)
    assert not (tmp_path / "out").exists()


def test_declining_to_stop_training_keeps_the_main_window_open(make_window: Any, shapes: Path, tmp_path: Path,
                                                               qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    main = make_window()
    main.open_finetune()
    w = main.finetune_window
    fill(w, shapes, tmp_path / "out")
    asked: list[str] = []
    monkeypatch.setattr(FinetuneWindow, "_confirm", lambda self, title, text: asked.append(text) or False)
    hold_until_cancelled(monkeypatch, lambda e: isinstance(e, StageEvent) and e.stage == "features")
    assert w.start()
    run = w.run
    qtbot.waitUntil(lambda: w.progress.format().startswith("features"), timeout=20_000)
    main.close()  # "No": keep training
    assert len(asked) == 1 and "Stop it and quit?" in asked[0]
    assert main.isVisible() and w.isVisible()
    assert w.run is run and not run.cancel_requested
    w.cancel()
    wait_idle(qtbot, w, timeout=20_000)


def test_quitting_saves_the_form_changed_since_the_last_run(make_window: Any, shapes: Path, tmp_path: Path,
                                                           qtbot: Any) -> None:
    main = make_window()
    main.open_finetune()
    w = main.finetune_window
    fill(w, shapes, tmp_path / "somewhere" / "model", "deep", epochs=9, size=96)  # never started
    main.close()
    s = AppSettings()
    assert (s.finetune_mode, s.finetune_epochs, s.finetune_input_size) == ("deep", 9, 96)
    assert s.finetune_output_folder == str(tmp_path / "somewhere" / "model")


def test_the_remembered_base_model_wins_over_the_main_windows(qtbot: Any) -> None:
    settings = AppSettings()
    settings.finetune_model = "resnet18.a1_in1k"
    w = FinetuneWindow(settings, ARCH)  # the main window uses another catalogue model
    qtbot.addWidget(w)
    assert w.form.base_picker.current_name() == "resnet18.a1_in1k"
    settings.finetune_model = ""
    other = FinetuneWindow(settings, ARCH)  # nothing remembered: the main window's model
    qtbot.addWidget(other)
    assert other.form.base_picker.current_name() == ARCH
    assert w.shutdown(5000) and other.shutdown(5000)


def test_the_form_is_remembered(make_ft: Any, shapes: Path, tmp_path: Path, qtbot: Any) -> None:
    w = make_ft(shapes, tmp_path / "out", "deep", epochs=7, size=64)
    assert w.start()
    w.cancel()
    wait_idle(qtbot, w)
    w.close()
    again = FinetuneWindow(AppSettings())
    qtbot.addWidget(again)
    assert again.form.data_folder() == str(shapes)
    assert (again.form.mode_value(), again.form.epochs.value(), again.form.input_size.value()) == ("deep", 7, 64)
    assert again.form.output_edit.text() == str(tmp_path / "out")
    again.form.mode.setCurrentIndex(again.form.mode.findData("quick"))
    assert again.form.epochs.value() == 7  # a chosen number of epochs stays; a mode's default follows the mode
    again.form.epochs.setValue(5)
    again.form.mode.setCurrentIndex(again.form.mode.findData("deep"))
    assert again.form.epochs.value() == 5
    again.form.mode.setCurrentIndex(again.form.mode.findData("quick"))
    assert again.form.epochs.value() == 50
    assert again.shutdown(5000)


# -- the dataset preview: scanned when a folder is chosen, bounded, cancellable ------------------------------
def record_scans(w: FinetuneWindow, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders the window asks its scanner to scan, from now on."""
    folders: list[str] = []
    scan = w.form.scanner.scan
    monkeypatch.setattr(w.form.scanner, "scan", lambda token, folder: folders.append(folder) or scan(token, folder))
    return folders


def test_typing_a_path_scans_only_on_enter_with_home_expanded(make_ft: Any, shapes: Path, tmp_path: Path, qtbot: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_ft(shapes, tmp_path / "out")
    qtbot.waitUntil(lambda: w.form.scan is not None, timeout=10_000)
    scans = record_scans(w, monkeypatch)
    monkeypatch.setenv("HOME", str(shapes.parent))
    edit = w.form.data_combo.lineEdit()
    edit.clear()
    qtbot.keyClicks(edit, "~/shapes")  # "~", "~/", "~/s"... are never scanned
    assert w.form.scan is None and w.form.preview.topLevelItemCount() == 0  # the old preview went with the old text
    assert "Press Enter" in w.form.preview_note.text()
    qtbot.wait(600)  # longer than the pause after which the window used to scan the partial text
    assert scans == []
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert scans == [str(shapes)]  # "~" expanded, as a run does
    qtbot.waitUntil(lambda: w.form.scan is not None, timeout=10_000)
    assert w.form.preview.topLevelItemCount() == 4
    w.form.data_combo.setFocus()
    w.form.data_browse.setFocus()  # leaving the field: the same folder is not scanned again
    assert scans == [str(shapes)]
    assert w.form.build_config().data_dir == str(shapes)


def test_relative_folders_a_clear_message_and_an_output_name_goes_next_to_the_dataset(
        make_ft: Any, shapes: Path, tmp_path: Path, qtbot: Any) -> None:
    w = make_ft(shapes, tmp_path / "out")
    w.form.output_edit.setText("my-model")
    assert w.form.build_config().output_dir == str(shapes.parent / "my-model")
    w.form.set_data_folder("shapes")
    assert "full path" in w.form.scan_error and "full path" in w.form.preview_note.text()
    assert not w.start() and "full path" in w.status.text()
    w.status.setText("<b>x</b>")  # messages carry paths: shown as typed, never as markup
    assert w.status.textFormat() == Qt.TextFormat.PlainText == w.results.cell_label.textFormat()


def test_the_preview_stops_at_its_bound(make_ft: Any, shapes: Path, tmp_path: Path, qtbot: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("squeezelens.gui.finetune_form.PREVIEW_MAX_ENTRIES", 10)  # shapes: 37 files, 4 folders
    w = make_ft(shapes, tmp_path / "out")
    qtbot.waitUntil(lambda: bool(w.form.scan_error), timeout=10_000)
    assert "more than 10 files and folders" in w.form.preview_note.text()
    assert w.form.preview.topLevelItemCount() == 0


@pytest.fixture
def endless_scan(monkeypatch: pytest.MonkeyPatch) -> dict[str, threading.Event]:
    """Replace the preview's scan with one that runs until cancelled (a huge folder or a slow mount).

    ``started`` is set once it runs; ``release`` ends it with a DatasetError instead.
    """
    events = {"started": threading.Event(), "release": threading.Event()}

    def scan(folder: str, *, cancel: threading.Event, max_entries: int | None) -> Any:
        events["started"].set()
        while not cancel.wait(0.01):
            if events["release"].is_set():
                raise DatasetError(f"{folder}: released")
        raise ScanCancelled(f"{folder}: scan cancelled")

    monkeypatch.setattr("squeezelens.gui.finetune_form.scan_dataset", scan)
    return events


def preview_scans() -> list[Task]:
    return [t for t in running_tasks() if t.name == "finetune-preview-scan"]


def test_a_new_folder_and_the_app_exit_cancel_a_long_preview_scan(make_ft: Any, endless_scan: Any, shapes: Path,
                                                                   tmp_path: Path, qtbot: Any) -> None:
    w = make_ft(shapes, tmp_path / "out")
    assert endless_scan["started"].wait(10)
    [first] = preview_scans()  # registered: at exit app.run sees it (and ends the process) should it still run
    qtbot.keyClicks(w.form.data_combo.lineEdit(), "x")  # typing makes the preview stale: its scan is cancelled
    assert first.wait(5000)
    assert first.done
    endless_scan["started"].clear()
    w.form.set_data_folder(str(shapes))
    assert endless_scan["started"].wait(10)
    assert w.shutdown(5000)  # quitting cancels the scan and waits for it
    assert preview_scans() == []
    qtbot.wait(50)  # the scans' last answers are delivered
    assert w.form.preview_note.text() == "Scanning..."  # a cancelled scan answers nothing


def test_a_scan_ending_after_its_window_was_deleted_is_quiet(endless_scan: Any, capsys: pytest.CaptureFixture,
                                                             qtbot: Any) -> None:
    scanner = DatasetScanner()
    answers: list[Any] = []
    scanner.failed.connect(lambda token, message: answers.append(message))
    scanner.scan(1, "/somewhere")
    assert endless_scan["started"].wait(10)
    [task] = preview_scans()
    shiboken6.delete(scanner)
    endless_scan["release"].set()  # it now answers "failed" to a deleted QObject
    assert task.wait(5000)
    qtbot.wait(50)  # the answer reaches the GUI thread, where nobody listens any more
    assert answers == []
    assert "RuntimeError" not in capsys.readouterr().err


# -- resume, cancelling while saving, long lists -------------------------------------------------------------
@pytest.mark.slow
def test_resume_is_withdrawn_once_the_form_changes(make_ft: Any, shapes_module: ModuleType, tmp_path: Path,
                                                   qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = shapes_module.make_dataset(tmp_path / "deep", per_class=4, size=32, classes=("checkerboard", "red_circles"))
    w = make_ft(data, tmp_path / "deep-model", "deep", epochs=2)
    hold_until_cancelled(monkeypatch, lambda e: isinstance(e, EpochEvent))
    assert w.start()
    qtbot.waitUntil(lambda: len(w.results.loss_chart.points()) == 1, timeout=30_000)
    w.cancel_button.click()
    wait_idle(qtbot, w)
    assert w.resume_button.isVisible() and w.can_resume(w.form.build_config())
    w.form.epochs.setValue(4)  # the form no longer describes the cancelled run
    assert not w.resume_button.isVisible() and not w.can_resume(w.form.build_config())
    w.form.epochs.setValue(2)  # changed back: still withdrawn (Start begins a new run)
    assert not w.resume_button.isVisible()
    assert not w.start(resume=True) and w.run is None
    assert "cannot be resumed" in w.status.text()


def test_a_cancel_that_lands_while_saving_says_the_model_was_saved(make_ft: Any, shapes: Path, tmp_path: Path,
                                                                  qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "saved-model"
    w = make_ft(shapes, out, "quick", epochs=2)
    hold_until_cancelled(monkeypatch, lambda e: isinstance(e, StageEvent) and e.stage == "save")  # past the last check
    assert w.start()
    qtbot.waitUntil(lambda: w.progress.format() == "save", timeout=30_000)
    w.cancel_button.click()
    assert w.status.text().startswith("Cancelling")
    wait_idle(qtbot, w)
    assert w.result is not None and (out / "config.json").is_file()
    assert w.status.text().startswith("The run finished before the cancel took effect: the model was saved to")
    assert w.results.use_button.isEnabled()
    assert w.results.tabs.tabText(2) == "Skipped && warnings (3)"  # broken.jpg, its warning, the untrained base
    assert w.start()  # a second run: no stale count while it runs
    assert w.results.tabs.tabText(2) == "Skipped && warnings"
    wait_idle(qtbot, w)


def test_a_cell_lists_its_first_images_and_counts_the_rest(qtbot: Any, tmp_path: Path) -> None:
    cells = CellImages()
    qtbot.addWidget(cells)
    paths = [tmp_path / f"img{i}.jpg" for i in range(MAX_CELL_IMAGES + 50)]
    cells.show_paths(paths)
    assert cells.paths() == [str(p) for p in paths[:MAX_CELL_IMAGES]]
    assert cells.count() == MAX_CELL_IMAGES + 1 and cells.item(MAX_CELL_IMAGES).text() == "... and 50 more"
    assert cells.loader.wait(20_000)


FINETUNE_SCRIPT = r"""
import json, sys, threading
data, out, log_path = sys.argv[1:4]
log = open(log_path, "a")
def hook(event, args):
    if event == "import" and args[0] in ("torch", "timm"):
        log.write(json.dumps({"module": args[0],
                              "main_thread": threading.current_thread() is threading.main_thread()}) + "\n")
        log.flush()
sys.addaudithook(hook)
from PySide6.QtCore import QTimer
from squeezelens.gui.app import create_app
from squeezelens.gui.finetune_window import FinetuneWindow
from squeezelens.gui.settings import AppSettings
app = create_app()
settings = AppSettings()
settings.device = "cpu"
w = FinetuneWindow(settings, "seresnext26d_32x4d")
w.show()
w.form.set_data_folder(data)
w.form.mode.setCurrentIndex(w.form.mode.findData("quick"))
w.form.epochs.setValue(2)
w.form.input_size.setValue(32)
w.form.output_edit.setText(out)
poll = QTimer(interval=20, timeout=lambda: w.run is None and app.quit())
QTimer.singleShot(0, lambda: (w.start(), poll.start()))
QTimer.singleShot(120_000, app.quit)
app.exec()
ok = w.shutdown(5000)
print(json.dumps({"saved": w.result is not None, "status": w.status.text(), "idle": ok}))
"""


@pytest.mark.slow
def test_a_run_imports_torch_and_timm_only_off_the_gui_thread(shapes: Path, tmp_path: Path) -> None:
    """A fresh process drives a quick run through the window while an audit hook records who imports torch."""
    log = tmp_path / "imports.jsonl"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))
    out = subprocess.run([sys.executable, "-c", FINETUNE_SCRIPT, str(shapes), str(tmp_path / "model"), str(log)],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["saved"] and report["idle"], report["status"]
    imports = [json.loads(line) for line in log.read_text().splitlines()]
    assert {i["module"] for i in imports} == {"torch", "timm"}
    assert not [i for i in imports if i["main_thread"]], "the GUI thread imported torch or timm"
    assert "Traceback" not in out.stderr
