"""The main window end to end: drops, paste, open, batch table, model switch, close, responsiveness."""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from .conftest import Renamed, SlowClassifier, fixed_loader, watch_gaps

WAIT_MS = 20_000


def drop(window: Any, mime: QMimeData) -> bool:
    """Send a real drag-enter then drop of ``mime`` to the window; returns whether the enter was accepted."""
    pos = QPointF(window.view.mapTo(window, QPoint(10, 10)))
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(pos.toPoint(), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    return True


def file_mime(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def wait_result(qtbot: Any, window: Any, timeout: int = WAIT_MS) -> Any:
    qtbot.waitUntil(lambda: window.current is not None and window.current.prediction is not None, timeout=timeout)
    return window.current.prediction


def expected_top(classifier: Any, source: Any, k: int = 5) -> list[tuple[str, float]]:
    return [(t.label, t.prob) for t in classifier.classify([source], top_k=k)[0].top]


def shown_rows(window: Any) -> list[tuple[str, float]]:
    return window.results.bars.rows


def no_dialogs() -> bool:
    return not any(isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets())


def test_window_title_icon_and_model_state(qtbot: Any, make_window: Any) -> None:
    window = make_window()
    assert window.windowTitle().startswith("SqueezeLens")
    assert not QApplication.windowIcon().isNull()
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    assert "ready" in window.status_label.text()
    assert window.device_label.text().startswith("CPU")
    assert not window.results.banner.isVisible()


def test_drop_image_file_shows_its_top5(qtbot: Any, make_window: Any, classifier: Any, photo_dir: Path) -> None:
    window = make_window()
    photo = photo_dir / "chelsea.jpg"
    assert drop(window, file_mime(photo))
    pred = wait_result(qtbot, window)
    assert pred.ok and pred.source == str(photo)
    want = expected_top(classifier, photo)
    assert [label for label, _ in shown_rows(window)] == [label for label, _ in want]
    assert [p for _, p in shown_rows(window)] == pytest.approx([p for _, p in want], abs=1e-6)
    assert window.results.title.text() == "chelsea.jpg"
    qtbot.waitUntil(lambda: not window.view.image.isNull(), timeout=WAIT_MS)
    assert window.view.image.size().toTuple() == Image.open(photo).size
    assert window.history.count() == 1


def test_drop_image_data_from_another_app(qtbot: Any, make_window: Any, classifier: Any, photo_dir: Path) -> None:
    window = make_window()
    image = QImage(str(photo_dir / "coffee.png"))
    mime = QMimeData()
    mime.setImageData(image)
    assert drop(window, mime)
    pred = wait_result(qtbot, window)
    assert pred.ok
    want = expected_top(classifier, Image.open(photo_dir / "coffee.png").convert("RGB"))
    assert [label for label, _ in shown_rows(window)] == [label for label, _ in want]
    assert [p for _, p in shown_rows(window)] == pytest.approx([p for _, p in want], abs=1e-5)


def test_drop_non_image_is_a_friendly_inline_message(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    window = make_window()
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert drop(window, file_mime(notes))
    assert window.notice.isVisible()
    assert "notes.txt is not an image" in window.notice.text()
    assert window.current is None and not window.batches
    assert no_dialogs()


def test_drag_of_plain_text_is_refused_on_enter(make_window: Any) -> None:
    window = make_window()
    mime = QMimeData()
    mime.setText("just words")
    assert not drop(window, mime)


def test_paste_image_data_and_file_path(qtbot: Any, make_window: Any, classifier: Any, photo_dir: Path) -> None:
    window = make_window()
    clipboard = QApplication.clipboard()
    clipboard.setImage(QImage(str(photo_dir / "rocket.png")))
    window.act_paste.trigger()
    pred = wait_result(qtbot, window)
    assert pred.ok and window.results.title.text() == "Pasted image"

    mime = QMimeData()
    mime.setText(str(photo_dir / "astronaut.jpg"))
    window.paste_mime(mime)  # the same path a Ctrl+V with a copied path takes
    qtbot.waitUntil(lambda: window.current.title == "astronaut.jpg" and window.current.prediction is not None,
                    timeout=WAIT_MS)
    want = expected_top(classifier, photo_dir / "astronaut.jpg")
    assert [label for label, _ in shown_rows(window)] == [label for label, _ in want]


def test_open_dialog(qtbot: Any, make_window: Any, photo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    seen = {}

    def fake_open(parent: Any, caption: str, folder: str, filters: str) -> tuple[list[str], str]:
        seen["filters"] = filters
        return [str(photo_dir / "camera.jpg")], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(fake_open))
    window.act_open.trigger()
    pred = wait_result(qtbot, window)
    assert pred.ok and pred.source.endswith("camera.jpg")
    assert "*.jpg" in seen["filters"] and "*.png" in seen["filters"]
    assert window.settings.last_folder == str(photo_dir)


def test_command_line_images_wait_for_the_model(qtbot: Any, make_window: Any, photo_dir: Path) -> None:
    window = make_window(images=[str(photo_dir / "chelsea.jpg")])
    pred = wait_result(qtbot, window)
    assert pred.ok and pred.source.endswith("chelsea.jpg")


def test_untrained_banner(qtbot: Any, make_window: Any, untrained_classifier: Any, photo_dir: Path) -> None:
    window = make_window(loader=fixed_loader(untrained_classifier), images=[str(photo_dir / "chelsea.jpg")])
    pred = wait_result(qtbot, window)
    assert pred.untrained
    assert window.results.banner.isVisible()
    assert "Untrained" in window.results.banner.text()
    assert "untrained" in window.status_label.text()
    assert "untrained" in window.results.timing.text()


def test_stale_result_is_dropped(qtbot: Any, make_window: Any, classifier: Any, photo_dir: Path) -> None:
    window = make_window(loader=fixed_loader(SlowClassifier(classifier, 0.3)))
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    window.open_path(str(photo_dir / "chelsea.jpg"))
    window.open_path(str(photo_dir / "astronaut.jpg"))
    pred = wait_result(qtbot, window)
    assert pred.source.endswith("astronaut.jpg")
    qtbot.wait(700)  # long enough for a late chelsea answer to arrive, were it not dropped
    assert window.results.title.text() == "astronaut.jpg"
    assert window.current.prediction.source.endswith("astronaut.jpg")


def test_history_click_shows_the_result_again(qtbot: Any, make_window: Any, photo_dir: Path) -> None:
    window = make_window()
    window.open_path(str(photo_dir / "chelsea.jpg"))
    first = wait_result(qtbot, window)
    qtbot.waitUntil(lambda: window.history.count() == 1, timeout=WAIT_MS)
    window.open_path(str(photo_dir / "rocket.png"))
    qtbot.waitUntil(lambda: window.current.title == "rocket.png" and window.current.prediction is not None,
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.history.count() == 2, timeout=WAIT_MS)
    old = window.history.item(1)  # newest first
    assert old.text().startswith(first.top[0].label[:15])
    window.history.itemClicked.emit(old)
    assert window.results.title.text() == "chelsea.jpg"
    assert shown_rows(window)[0][0] == first.top[0].label


def test_top_k_setting_reclassifies_and_persists(qtbot: Any, make_window: Any, photo_dir: Path) -> None:
    from squeezelens.gui.settings import AppSettings

    window = make_window()
    window.open_path(str(photo_dir / "chelsea.jpg"))
    wait_result(qtbot, window)
    window.top_k.setValue(3)
    qtbot.waitUntil(lambda: window.current.prediction is not None and len(shown_rows(window)) == 3, timeout=WAIT_MS)
    assert AppSettings().top_k == 3


def test_exif_orientation_is_applied_to_the_view(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    img = Image.new("RGB", (120, 40), (200, 30, 30))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    window = make_window()
    window.open_path(str(path))
    qtbot.waitUntil(lambda: not window.view.image.isNull(), timeout=WAIT_MS)
    assert window.view.image.size().toTuple() == (40, 120)


def test_batch_table_fills_sorts_exports_and_copies(
    qtbot: Any, make_window: Any, many_images: Path, tmp_path: Path
) -> None:
    window = make_window()
    assert drop(window, file_mime(many_images))
    qtbot.waitUntil(lambda: len(window.batches) == 1, timeout=WAIT_MS)
    batch = next(iter(window.batches.values()))
    qtbot.waitUntil(lambda: not batch.running, timeout=60_000)
    model = batch.model
    assert len(model.sources) == 25
    assert all(p is not None for p in model.preds)
    broken = [p for p in model.preds if not p.ok]
    assert len(broken) == 1 and "img12_broken" in broken[0].source
    assert batch.summary.text() == "25 images: 24 classified, 1 could not be read"  # issue 14's wording
    assert batch.progress.value() == batch.progress.maximum()

    batch.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    probs = [batch.proxy.index(r, 2).data(Qt.ItemDataRole.UserRole + 1) for r in range(batch.proxy.rowCount())]
    assert probs == sorted(probs, reverse=True)

    out = tmp_path / "results.csv"
    batch.export_csv(str(out))
    rows = list(csv.DictReader(out.open()))
    assert len({r["path"] for r in rows}) == 25
    assert sum(1 for r in rows if r["error"]) == 1

    dest = tmp_path / "sorted"
    batch.copy_to(str(dest))
    qtbot.waitUntil(lambda: batch.copy_button.isEnabled(), timeout=WAIT_MS)
    copied = sorted(p.name for p in dest.rglob("*") if p.is_file())
    assert len(copied) == 24
    for src, pred in zip(model.sources, model.preds):
        if pred.ok:
            assert (dest / pred.top[0].label.replace("/", "_") / Path(src).name).is_file()


def test_drop_several_files_opens_a_batch(qtbot: Any, make_window: Any, photo_dir: Path) -> None:
    window = make_window()
    assert drop(window, file_mime(photo_dir / "chelsea.jpg", photo_dir / "rocket.png"))
    qtbot.waitUntil(lambda: len(window.batches) == 1, timeout=WAIT_MS)
    batch = next(iter(window.batches.values()))
    qtbot.waitUntil(lambda: not batch.running, timeout=WAIT_MS)
    assert [Path(s).name for s in batch.model.sources] == ["chelsea.jpg", "rocket.png"]
    assert all(p.ok for p in batch.model.preds)


def test_batch_cancel(qtbot: Any, make_window: Any, classifier: Any, many_images: Path) -> None:
    slow = SlowClassifier(classifier, 0.1)
    window = make_window(loader=fixed_loader(slow))
    window.open_batch([str(many_images)])
    batch = next(iter(window.batches.values()))
    qtbot.waitUntil(lambda: len(batch.model.done()) >= 4, timeout=WAIT_MS)
    batch.cancel_button.click()
    qtbot.waitUntil(lambda: not batch.running, timeout=5000)
    done = len(batch.model.done())
    assert 4 <= done < 25
    assert "cancelled" in batch.summary.text()
    assert batch.export_button.isEnabled()
    qtbot.wait(300)
    assert len(batch.model.done()) == done  # nothing arrives after the cancel


def test_model_switch_mid_inference(
    qtbot: Any, make_window: Any, classifier: Any, many_images: Path, photo_dir: Path
) -> None:
    """Switching models cancels the running batch and reloads in the worker; the window keeps answering.

    "Answering" is asserted as the GUI thread's own work, as the camera tests do: choosing takes under
    100 ms of its CPU, no pass of its event loop takes 100 ms of its CPU, and the loop keeps turning while
    the worker loads (a GUI thread that waited for the load would not tick). The wall-clock gaps also
    count time the thread was not scheduled, or waited for the GIL, on a busy machine (CI saw single
    0.16 s and 0.38 s gaps with 1.5-6 ms of GUI-thread work in the switch): printed, not asserted."""
    from squeezelens.gui.worker import default_loader

    slow = SlowClassifier(classifier, 0.1)

    def loader(spec: Any, progress: Any, cancel: Any) -> Any:
        if spec.name == "seresnext26t_32x4d":  # a real load, no weights reachable: untrained
            return default_loader(dataclasses.replace(spec, device="cpu", backend="torch", allow_download=False),
                                  progress, cancel)
        return slow

    window = make_window(loader=loader)
    window.open_path(str(photo_dir / "chelsea.jpg"))
    wait_result(qtbot, window)
    window.open_batch([str(many_images)])
    batch = next(iter(window.batches.values()))
    qtbot.waitUntil(lambda: len(batch.model.done()) >= 1, timeout=WAIT_MS)

    choose_cpu: list[float] = []
    ticks: list[tuple[float, bool]] = []  # (GUI-thread CPU, model still loading) at the choice, then each tick

    def choose() -> None:
        c0 = time.thread_time()
        ticks.append((c0, True))
        window.choose_model("seresnext26t_32x4d")
        choose_cpu.append(time.thread_time() - c0)

    gaps = watch_gaps(qtbot, action=choose,
                      sample=lambda: ticks.append((time.thread_time(), window.model_state is None)))
    pass_cpu = [b[0] - a[0] for a, b in zip(ticks, ticks[1:])]
    print(f"model switch: choose_model {choose_cpu[0] * 1000:.1f} ms CPU; {len(gaps)} gaps, longest "
          f"{max(gaps) * 1000:.1f} ms wall; longest pass {max(pass_cpu) * 1000:.1f} ms CPU")
    assert choose_cpu[0] < 0.1, "choosing a model did its work in the GUI thread"
    assert max(pass_cpu) < 0.1, f"a GUI-thread pass took {max(pass_cpu) * 1000:.0f} ms of its CPU"
    assert sum(loading for _, loading in ticks[1:]) >= 5, "the window stopped answering while the model loaded"
    qtbot.waitUntil(lambda: not batch.running, timeout=10_000)
    assert "cancelled" in batch.summary.text()
    qtbot.waitUntil(lambda: window.model_state is not None and window.model_state.name == "seresnext26t_32x4d",
                    timeout=60_000)
    pred = wait_result(qtbot, window, timeout=60_000)
    assert pred.model == "seresnext26t_32x4d" and pred.untrained
    assert window.results.banner.isVisible()
    assert window.settings.model == "seresnext26t_32x4d"


def test_failed_model_load_keeps_the_previous_model(
    qtbot: Any, make_window: Any, classifier: Any, photo_dir: Path
) -> None:
    from squeezelens.core.errors import ModelNotFoundError

    def loader(spec: Any, progress: Any, cancel: Any) -> Any:
        if spec.name == "nope":
            raise ModelNotFoundError("unknown model 'nope'")
        return classifier

    window = make_window(loader=loader)
    window.open_path(str(photo_dir / "rocket.png"))
    wait_result(qtbot, window)
    window.choose_model("nope")
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=WAIT_MS)
    assert "unknown model 'nope'" in window.notice.text()
    assert no_dialogs()
    assert wait_result(qtbot, window).model == classifier.name  # the image on show, answered by the kept model
    assert window.picker.current_name() == "seresnext26d_32x4d"
    assert window.settings.model == ""  # the failing choice is not remembered for the next start
    assert window.model_state is not None and window.model_state.name == classifier.name
    window.open_path(str(photo_dir / "chelsea.jpg"))
    assert wait_result(qtbot, window).ok  # the old model still answers


def test_unloadable_saved_choice_falls_back_to_the_default(
    qtbot: Any, make_window: Any, classifier: Any, photo_dir: Path
) -> None:
    from squeezelens.core.errors import SqueezeLensError
    from squeezelens.gui.settings import AppSettings

    AppSettings().model = "/gone/my-model"
    AppSettings().device = "cuda"
    tried = []

    def loader(spec: Any, progress: Any, cancel: Any) -> Any:
        tried.append((spec.name, spec.device))
        if spec.name is not None:
            raise SqueezeLensError("no such model folder: /gone/my-model")
        return classifier

    window = make_window(loader=loader, images=[str(photo_dir / "chelsea.jpg")])
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    assert tried == [("/gone/my-model", "cuda"), (None, "auto")]
    assert "Loading the default model instead" in window.notice.text()
    assert AppSettings().model == "" and AppSettings().device == "auto"
    # the image from the command line, refused while there was no model, is classified by the default one
    pred = wait_result(qtbot, window)
    assert pred.ok and pred.source.endswith("chelsea.jpg")


def test_close_during_inference_is_clean_and_quick(
    qtbot: Any, make_window: Any, classifier: Any, many_images: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    window = make_window(loader=fixed_loader(SlowClassifier(classifier, 0.1)))
    window.open_batch([str(many_images)])
    batch = next(iter(window.batches.values()))
    qtbot.waitUntil(lambda: len(batch.model.done()) >= 1, timeout=WAIT_MS)
    t0 = time.perf_counter()
    window.close()
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0
    assert not window.client.running
    assert "Destroyed while thread" not in capfd.readouterr().err


def test_settings_persist_geometry_and_model(qtbot: Any, make_window: Any) -> None:
    from squeezelens.gui.settings import AppSettings

    window = make_window()
    window.resize(777, 555)
    window.settings.model = "seresnext50_32x4d"
    window.close()
    settings = AppSettings()
    assert settings.geometry is not None and settings.model == "seresnext50_32x4d"
    again = make_window(start=False)
    assert again.size().width() == 777
    assert again.picker.current_name() == "seresnext50_32x4d"


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_gui_stays_responsive_while_the_worker_classifies(
    qtbot: Any, make_window: Any, request: pytest.FixtureRequest, photo_dir: Path, many_images: Path, backend: str
) -> None:
    """A 10 ms timer in the GUI thread never waits more than 100 ms while the model runs continuously."""
    clf = request.getfixturevalue("classifier" if backend == "torch" else "onnx_classifier")
    window = make_window(loader=fixed_loader(clf))
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    batch_done = []
    window.client.batchFinished.connect(lambda req, cancelled: batch_done.append(req))
    photos = sorted(str(p) for p in photo_dir.iterdir())
    window.open_batch(photos * 200 + [str(many_images)])
    qtbot.waitUntil(lambda: any(w.model.done() for w in window.batches.values()), timeout=WAIT_MS)
    gaps = watch_gaps(qtbot, seconds=3.0)
    assert not batch_done, "the batch finished before the measurement ended: make it longer"
    for w in window.batches.values():
        w.cancel()
    # -s shows it; docs/PERFORMANCE.md quotes it
    print(f"{backend}: GUI-thread timer: {len(gaps)} ticks, longest gap {max(gaps) * 1000:.1f} ms")
    assert len(gaps) > 100
    assert max(gaps) < 0.1, f"longest GUI-thread gap {max(gaps) * 1000:.0f} ms"


def test_download_progress_and_cancel(qtbot: Any, make_window: Any, untrained_classifier: Any) -> None:
    """Weights being fetched show a progress bar with Cancel; cancelling loads the model untrained."""
    from squeezelens.core.errors import DownloadCancelled

    calls = []

    def downloading(spec: Any, progress: Any, cancel: Any) -> Any:
        calls.append(spec.allow_download)
        if not spec.allow_download:
            return untrained_classifier
        total = 100_000_000
        for i in range(1000):
            progress(i * 1_000_000 // 10, total)
            if cancel.wait(0.06):
                raise DownloadCancelled("download cancelled")
        raise AssertionError("never cancelled")

    window = make_window(loader=downloading)
    qtbot.waitUntil(lambda: window.download_bar.isVisible() and window.download_bar.value() > 0, timeout=WAIT_MS)
    assert window.download_cancel.isVisible()
    assert "Downloading weights" in window.status_label.text()
    assert "of 100.0 MB" in window.status_label.text()
    window.download_cancel.click()
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    assert calls == [True, False]
    assert window.model_state.untrained
    assert not window.download_bar.isVisible()
    assert "Download cancelled" in window.notice.text()
    assert window.results.banner.isVisible()


def test_unexpected_load_error_is_reported_and_the_old_model_kept(
    qtbot: Any, make_window: Any, classifier: Any
) -> None:
    def loader(spec: Any, progress: Any, cancel: Any) -> Any:
        if spec.name == "gpu-hungry":
            raise RuntimeError("CUDA out of memory")
        return classifier

    window = make_window(loader=loader)
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    window.choose_model("gpu-hungry")
    qtbot.waitUntil(lambda: window.model_state is not None and "RuntimeError" in window.notice.text(),
                    timeout=WAIT_MS)
    assert "CUDA out of memory" in window.notice.text()
    assert "Loading" not in window.status_label.text()
    assert window.model_state.name == classifier.name


def test_superseded_load_does_not_replace_the_model(
    qtbot: Any, make_window: Any, classifier: Any, photo_dir: Path
) -> None:
    """Pick A (slow to load), then a broken model: the window and the results both stay on the first model."""
    from squeezelens.core.errors import ModelNotFoundError

    def loader(spec: Any, progress: Any, cancel: Any) -> Any:
        if spec.name == "model-a":
            time.sleep(0.5)
            return Renamed(classifier, "model-a")
        if spec.name == "nope":
            raise ModelNotFoundError("unknown model 'nope'")
        return classifier

    window = make_window(loader=loader)
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    window.choose_model("model-a")
    window.choose_model("nope")
    qtbot.waitUntil(lambda: "nope" in window.notice.text(), timeout=WAIT_MS)
    assert window.model_state.name == classifier.name
    window.open_path(str(photo_dir / "chelsea.jpg"))
    assert wait_result(qtbot, window).model == classifier.name


def test_close_during_download_does_not_build_an_untrained_model(qtbot: Any, make_window: Any) -> None:
    from squeezelens.core.errors import DownloadCancelled

    calls = []

    def downloading(spec: Any, progress: Any, cancel: Any) -> Any:
        calls.append(spec.allow_download)
        while not cancel.wait(0.05):
            progress(1, 10)
        if not spec.allow_download:
            raise AssertionError("not reached")
        raise DownloadCancelled("download cancelled")

    window = make_window(loader=downloading)
    qtbot.waitUntil(lambda: window.download_bar.isVisible(), timeout=WAIT_MS)
    t0 = time.perf_counter()
    window.close()
    assert time.perf_counter() - t0 < 1.0
    assert not window.client.running
    assert calls == [True]


def test_closed_batch_windows_are_freed(qtbot: Any, make_window: Any, photo_dir: Path) -> None:
    window = make_window()
    window.open_batch([str(photo_dir)])
    batch = next(iter(window.batches.values()))
    qtbot.waitUntil(lambda: not batch.running, timeout=WAIT_MS)
    batch.close()
    qtbot.waitUntil(lambda: not window.batches, timeout=5000)


def test_history_result_from_another_top_k_is_refreshed(qtbot: Any, make_window: Any, photo_dir: Path) -> None:
    window = make_window()
    window.open_path(str(photo_dir / "chelsea.jpg"))
    wait_result(qtbot, window)
    qtbot.waitUntil(lambda: window.history.count() == 1, timeout=WAIT_MS)
    chelsea = window.history.entries()[0]
    window.open_path(str(photo_dir / "rocket.png"))
    qtbot.waitUntil(lambda: window.current.title == "rocket.png" and window.current.prediction is not None,
                    timeout=WAIT_MS)
    window.top_k.setValue(2)
    qtbot.waitUntil(lambda: len(window.current.prediction.top if window.current.prediction else []) == 2,
                    timeout=WAIT_MS)
    assert len(chelsea.prediction.top) == 5
    window.show_entry(chelsea)
    qtbot.waitUntil(lambda: chelsea.prediction is not None and len(chelsea.prediction.top) == 2, timeout=WAIT_MS)
    assert len(shown_rows(window)) == 2
    qtbot.waitUntil(lambda: not window.view.image.isNull(), timeout=WAIT_MS)  # decoded again on demand


def test_only_the_current_file_image_stays_decoded(qtbot: Any, make_window: Any, photo_dir: Path) -> None:
    window = make_window()
    for name in ("chelsea.jpg", "rocket.png", "astronaut.jpg"):
        window.open_path(str(photo_dir / name))
        qtbot.waitUntil(lambda n=name: window.current.title == n and not window.view.image.isNull(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.history.count() == 3, timeout=WAIT_MS)
    kept = [e.title for e in window.history.entries() if not e.image.isNull()]
    assert kept == ["astronaut.jpg"]
    assert all(not e.thumb.isNull() for e in window.history.entries())
