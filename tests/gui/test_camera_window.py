"""Camera mode in the main window: live results in the results panel, a responsive window at 30 fps,
and every failure (no camera, unplugged, busy, permission denied, no Qt Multimedia) as a message in the
camera view while the rest of the app keeps working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from squeezelens.gui import camera_source as cs
from squeezelens.gui.dev_tools import SyntheticSource

from .conftest import fixed_loader, watch_gaps
from .test_main_window import drop, file_mime, wait_result

WAIT_MS = 20_000


class FakeCamera(SyntheticSource):
    """Stands in for ``CameraSource`` (same constructor): synthetic 640x480 frames at 30 fps."""

    made: list[FakeCamera] = []

    def __init__(self, sink: Any, device: Any, fmt: Any = None, parent: Any = None) -> None:
        super().__init__(sink, size=(320, 240), fps=30.0, parent=parent)
        self.description = device.description()
        self.fmt = fmt
        FakeCamera.made.append(self)


class FakeDevice:
    def __init__(self, name: str) -> None:
        self.name = name

    def description(self) -> str:
        return self.name

    def videoFormats(self) -> list:
        return []


def fake_cameras(monkeypatch: pytest.MonkeyPatch, names: list[str]) -> list[cs.CameraInfo]:
    cams = [cs.CameraInfo(f"id-{n}", n, i == 0, FakeDevice(n)) for i, n in enumerate(names)]
    monkeypatch.setattr(cs, "list_cameras", lambda: list(cams))
    monkeypatch.setattr(cs, "CameraSource", FakeCamera)
    FakeCamera.made.clear()
    return cams


def enter_camera_mode(qtbot: Any, window: Any) -> Any:
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    window.act_camera.trigger()
    assert window.act_camera.isChecked()
    page = window.camera_page
    assert window.left.currentWidget() is page
    return page


def drop_photo_and_check(qtbot: Any, window: Any, photo: Path) -> None:
    """The rest of the app works: a dropped photo leaves camera mode and is classified."""
    assert drop(window, file_mime(photo))
    assert not window.act_camera.isChecked() and window.left.currentWidget() is window.view
    pred = wait_result(qtbot, window)
    assert pred.ok and window.results.title.text() == photo.name
    assert len(window.results.bars.rows) == window.top_k.value()


def test_camera_mode_shows_live_results_and_stays_responsive(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, photo_dir: Path, onnx_classifier: Any) -> None:
    """Ctrl+K: video at 30 fps, live top-k bars in the results panel, an fps/latency overlay, no call of
    live-mode code in the GUI thread (frame, result with the results panel, paint) takes 100 ms of its CPU
    (ONNX Runtime, the CPU default; the wall-clock gap depends on the machine's load and is printed);
    leaving camera mode stops the camera and shows the image view again."""
    fake_cameras(monkeypatch, ["Front camera"])
    window = make_window(loader=fixed_loader(onnx_classifier))
    assert window.act_camera.shortcut() == QKeySequence("Ctrl+K")
    page = enter_camera_mode(qtbot, window)
    assert [page.camera_box.itemText(i) for i in range(page.camera_box.count())] == ["Front camera"]
    source = FakeCamera.made[-1]
    c = page.controller
    qtbot.waitUntil(lambda: c.stats.results >= 3, timeout=WAIT_MS)
    assert window.results.title.text() == "Camera"
    assert len(window.results.bars.rows) == window.top_k.value()
    gaps = watch_gaps(qtbot, 2.0)
    print(f"camera mode: {c.stats.frames} frames, {c.stats.results} results, "
          f"longest GUI gap {max(gaps) * 1000:.1f} ms, "
          f"longest live call {c.stats.slot_cpu_ms:.1f} ms CPU, longest paint {page.view.paint_cpu_ms:.1f} ms CPU")
    assert 0 < c.stats.slot_cpu_ms < 100, f"a live-mode call took {c.stats.slot_cpu_ms:.0f} ms of GUI-thread CPU"
    assert 0 < page.view.paint_cpu_ms < 100, f"a paint took {page.view.paint_cpu_ms:.0f} ms of GUI-thread CPU"
    assert c.max_pending_jobs <= 1
    assert "video" in page.view.overlay and "inference" in page.view.overlay and "latency" in page.view.overlay
    assert page.view.frame is not None and not page.view.message
    window.top_k.setValue(3)  # live bars follow the top-k choice
    qtbot.waitUntil(lambda: len(window.results.bars.rows) == 3, timeout=WAIT_MS)

    window.act_camera.trigger()  # leave
    assert not window.act_camera.isChecked() and window.left.currentWidget() is window.view
    assert not source.running and not c.running
    n = c.stats.results
    qtbot.wait(200)
    assert c.stats.results == n  # nothing more arrives
    assert "Drop an image" in window.results.state.text()
    drop_photo_and_check(qtbot, window, photo_dir / "chelsea.jpg")


def test_no_camera_is_a_message_and_the_app_keeps_working(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, photo_dir: Path) -> None:
    monkeypatch.setattr(cs, "list_cameras", lambda: [])  # QMediaDevices.videoInputs() is empty
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    assert page.view.message == cs.NO_CAMERA
    assert not page.camera_box.isEnabled() and not page.pause.isEnabled()
    assert page.controller.source is None
    drop_photo_and_check(qtbot, window, photo_dir / "chelsea.jpg")
    window.act_camera.trigger()  # and back again: still the message, no crash
    assert page.view.message == cs.NO_CAMERA


def test_camera_unplugged_mid_stream_then_plugged_back(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, photo_dir: Path) -> None:
    cams = fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    first = FakeCamera.made[-1]
    monkeypatch.setattr(cs, "list_cameras", lambda: [])
    page._devices.videoInputsChanged.emit()  # what QMediaDevices says when it is pulled out
    assert page.view.message == cs.DISCONNECTED
    assert not first.running and page.controller.source is None
    assert window.notice.text().endswith(cs.DISCONNECTED) and page.camera_box.count() == 0
    monkeypatch.setattr(cs, "list_cameras", lambda: list(cams))
    page._devices.videoInputsChanged.emit()  # plugged in again: it opens by itself
    assert page.camera_box.count() == 1 and len(FakeCamera.made) == 2
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1 and not page.view.message, timeout=WAIT_MS)
    drop_photo_and_check(qtbot, window, photo_dir / "chelsea.jpg")


def test_camera_error_mid_stream_is_a_message(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, photo_dir: Path) -> None:
    """A running source that fails (a camera taken by another app, a driver error) stops live mode with
    its message; the results panel keeps the last result and the window keeps working."""
    fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    FakeCamera.made[-1].fail("The camera 'USB camera' could not be used (Device or resource busy).")
    assert "Device or resource busy" in page.view.message
    assert not page.controller.running and page.controller.mailbox.pending == 0
    n = page.controller.stats.results
    qtbot.wait(200)
    assert page.controller.stats.results <= n + 1  # at most the one already being classified
    drop_photo_and_check(qtbot, window, photo_dir / "chelsea.jpg")


def test_qcamera_errors_become_messages(qtbot: Any) -> None:
    """The real ``CameraSource`` on a ``QCamera``: errorOccurred (busy) and activeChanged(false)
    (unplugged) while running each give one user-facing message; a camera that cannot start says so."""
    mm = cs.multimedia()
    sink = mm.QVideoSink()
    source = cs.CameraSource(sink, mm.QCameraDevice())  # no such camera: fails as it starts
    messages: list[str] = []
    source.errorOccurred.connect(messages.append)
    source.start()
    assert len(messages) == 1 and "could not be used" in messages[0]
    source._wanted, source._failed = True, False  # as if it had been streaming
    source.camera.errorOccurred.emit(mm.QCamera.Error.CameraError, "Device or resource busy")
    assert "Device or resource busy" in messages[-1] and len(messages) == 2
    source.camera.errorOccurred.emit(mm.QCamera.Error.CameraError, "again")
    assert len(messages) == 2  # one message per failure
    source._wanted, source._failed = True, False
    source.camera.activeChanged.emit(False)
    assert "stopped" in messages[-1] and len(messages) == 3
    source.stop()
    source.camera.activeChanged.emit(False)  # stopping on purpose is not an error
    assert len(messages) == 3


@pytest.mark.parametrize("answer", [False, True])
def test_camera_permission(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, answer: bool) -> None:
    """macOS asks once (undetermined -> the system prompt); a refusal is a message naming the setting."""
    fake_cameras(monkeypatch, ["FaceTime HD Camera"])
    asked: list[Any] = []
    monkeypatch.setattr(cs, "check_camera_permission", lambda: "undetermined")
    monkeypatch.setattr(cs, "request_camera_permission", lambda ctx, done: asked.append(done))
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    assert len(asked) == 1 and "permission" in page.view.message and not FakeCamera.made
    asked[0](answer)
    if answer:
        qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    else:
        assert page.view.message == cs.PERMISSION_DENIED and not FakeCamera.made


def test_camera_permission_denied_before(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch,
                                         photo_dir: Path) -> None:
    fake_cameras(monkeypatch, ["FaceTime HD Camera"])
    monkeypatch.setattr(cs, "check_camera_permission", lambda: "denied")
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    assert page.view.message == cs.PERMISSION_DENIED and not FakeCamera.made
    assert "Privacy & Security" in window.notice.text()
    drop_photo_and_check(qtbot, window, photo_dir / "chelsea.jpg")


def test_permission_check_on_this_platform(qapp: Any) -> None:
    assert cs.check_camera_permission() in ("granted", "denied", "undetermined")


def test_missing_qt_multimedia(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, photo_dir: Path) -> None:
    def no_module() -> Any:
        raise ImportError("libQt6Multimedia.so.6: cannot open shared object file")

    monkeypatch.setattr(cs, "_import_multimedia", no_module)
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    assert page.controller is None
    assert page.view.message.startswith("Camera support is not available: Qt Multimedia could not be loaded")
    assert not page.camera_box.isEnabled()
    drop_photo_and_check(qtbot, window, photo_dir / "chelsea.jpg")


def test_missing_multimedia_backend(qtbot: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cs, "_plugin_folders", lambda: [tmp_path / "plugins" / "multimedia"])
    assert "no backend plugin" in cs.multimedia_problem()
    (tmp_path / "plugins" / "multimedia").mkdir(parents=True)
    assert "no backend plugin" in cs.multimedia_problem()
    monkeypatch.undo()
    assert cs.multimedia_problem() is None  # this machine has the FFmpeg backend


def test_mirror_and_pause_controls(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cameras(monkeypatch, ["Front camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    page.mirror.setChecked(False)
    assert not page.view.mirrored and window.settings.camera_mirror is False
    page.mirror.setChecked(True)
    assert page.view.mirrored and window.settings.camera_mirror is True
    page.pause.setChecked(True)
    assert page.controller.paused and page.pause.text() == "Resume"
    qtbot.wait(100)
    frozen = page.view.frame
    qtbot.wait(200)
    assert page.view.frame is frozen
    page.pause.setChecked(False)
    qtbot.waitUntil(lambda: page.view.frame is not frozen, timeout=WAIT_MS)
    page.smoothing.setValue(5)
    assert page.controller.smoother.n == 5 and window.settings.camera_smoothing == 5


def test_plugging_another_camera_keeps_the_running_one(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cams = fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    other = cs.CameraInfo("id-new", "New default camera", True, FakeDevice("New default camera"))
    monkeypatch.setattr(cs, "list_cameras", lambda: [other, cams[0]])
    page._devices.videoInputsChanged.emit()
    assert [page.camera_box.itemText(i) for i in range(2)] == ["New default camera", "USB camera"]
    assert page.camera_box.currentText() == "USB camera"
    assert len(FakeCamera.made) == 1 and FakeCamera.made[0].running and page.controller.running
    page.camera_box.setCurrentIndex(0)  # choosing another camera switches to it
    assert len(FakeCamera.made) == 2 and not FakeCamera.made[0].running and FakeCamera.made[1].running
    assert window.settings.camera_id == "id-new"


def test_camera_settings_round_trip(qapp: Any) -> None:
    from squeezelens.gui.settings import AppSettings

    s = AppSettings()
    assert (s.camera_id, s.camera_resolution, s.camera_mirror, s.camera_smoothing, s.camera_classes) == (
        "", "", True, 3, [])
    s.camera_id, s.camera_resolution, s.camera_mirror, s.camera_smoothing = "cam-1", "1280x720", False, 99
    s.camera_classes = ["cat", "dog", "cat"]
    s.sync()
    again = AppSettings()
    assert (again.camera_id, again.camera_resolution, again.camera_mirror, again.camera_smoothing) == (
        "cam-1", "1280x720", False, 30)  # smoothing clamped to 1..30
    assert again.camera_classes == ["cat", "dog"]
    again.camera_classes = ["solo"]  # QSettings reads a one-item list back as a plain string
    assert AppSettings().camera_classes == ["solo"]


def test_a_camera_that_sends_nothing_says_so(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from squeezelens.gui import camera_page

    class SilentCamera(FakeCamera):
        def start(self) -> None:  # opens, but no frame ever comes (some drivers when the camera is busy)
            self.activeChanged.emit(True)

    fake_cameras(monkeypatch, ["Busy camera"])
    monkeypatch.setattr(cs, "CameraSource", SilentCamera)
    monkeypatch.setattr(camera_page, "NO_VIDEO_MS", 200)
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    assert page.view.message.startswith("Starting")
    qtbot.waitUntil(lambda: "sends no video" in page.view.message, timeout=WAIT_MS)
    assert not page.pause.isEnabled()  # nothing to pause yet
    FakeCamera.made[-1].push_frame()  # frames after all: the video replaces the message
    qtbot.waitUntil(lambda: page.view.frame is not None and not page.view.message, timeout=WAIT_MS)
    assert page.pause.isEnabled()


def test_retry_after_a_camera_error(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch,
                                    tmp_path: Path) -> None:
    """After an error the Retry button (or choosing the same camera again) opens it again; the frame of
    the failed camera is gone, so a capture says there is no video instead of saving a stale frame."""
    fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    assert page.retry.isHidden() and page.current_frame() is not None
    FakeCamera.made[-1].fail("The camera 'USB camera' could not be used (Device or resource busy).")
    assert not page.retry.isHidden() and page.current_frame() is None
    page.capture.set_dataset(str(tmp_path))
    page.capture.add("thing")
    assert not page.capture.capture_one() and "no video" in page.capture.status.text()
    assert not list(tmp_path.iterdir())
    page.retry.click()
    assert len(FakeCamera.made) == 2 and page.retry.isHidden()
    qtbot.waitUntil(lambda: page.controller.running and page.view.frame is not None, timeout=WAIT_MS)
    FakeCamera.made[-1].fail("The camera 'USB camera' stopped.")
    page.camera_box.activated.emit(page.camera_box.currentIndex())  # the user picks the same entry again
    assert len(FakeCamera.made) == 3 and page.controller.running
    page.camera_box.activated.emit(page.camera_box.currentIndex())  # running: nothing to do
    assert len(FakeCamera.made) == 3
    window.act_camera.trigger()  # leaving camera mode: no frame to capture either
    assert page.current_frame() is None


def test_permission_denied_then_allowed_with_retry(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cameras(monkeypatch, ["FaceTime HD Camera"])
    monkeypatch.setattr(cs, "check_camera_permission", lambda: "denied")
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    assert page.view.message == cs.PERMISSION_DENIED and "Retry" in cs.PERMISSION_DENIED
    assert not page.retry.isHidden()
    monkeypatch.setattr(cs, "check_camera_permission", lambda: "granted")  # allowed in System Settings
    page.retry.click()
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1 and not page.view.message, timeout=WAIT_MS)


def test_unplugging_the_running_camera_switches_to_another(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cams = fake_cameras(monkeypatch, ["USB camera", "Built-in camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    assert page.camera_box.currentText() == "USB camera"
    monkeypatch.setattr(cs, "list_cameras", lambda: [cams[1]])
    page._devices.videoInputsChanged.emit()
    assert page.camera_box.currentText() == "Built-in camera"
    assert len(FakeCamera.made) == 2 and not FakeCamera.made[0].running and FakeCamera.made[1].running
    assert "disconnected" in window.notice.text() and "Built-in camera" in window.notice.text()
    n = page.controller.stats.results
    qtbot.waitUntil(lambda: page.controller.stats.results > n and not page.view.message, timeout=WAIT_MS)


def test_a_failed_prediction_shows_its_error(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from squeezelens.core.engine import Prediction
    from squeezelens.gui.worker import LiveResult

    fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    page.stop()  # no live results of its own meanwhile
    bad = Prediction("frame", "m", error="image has no pixels")
    page.resultReady.emit(LiveResult(1, 0.0, 0.0, 0.0, bad), [])
    assert "image has no pixels" in window.results.state.text()


def test_top_k_and_model_changes_in_camera_mode_wait_for_leaving_it(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, photo_dir: Path) -> None:
    """The hidden image is not classified again while live mode runs (it would compete for the worker);
    leaving camera mode classifies it with the new top-k."""
    fake_cameras(monkeypatch, ["USB camera"])
    window = make_window(images=[str(photo_dir / "chelsea.jpg")])
    wait_result(qtbot, window)
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    requests: list[Any] = []
    window.client.classify = lambda *a: requests.append(a) or 0  # an instance attribute, deleted below
    window.top_k.setValue(2)
    window.load_model(None)
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    qtbot.wait(100)
    assert requests == []
    del window.client.classify
    window.act_camera.trigger()
    qtbot.waitUntil(lambda: window.current.prediction is not None and len(window.current.prediction.top) == 2,
                    timeout=WAIT_MS)


def test_overlay_says_when_a_batch_slows_live_mode(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.controller.stats.results >= 1, timeout=WAIT_MS)
    page._update_overlay()
    assert cs.BATCH_RUNNING not in page.view.overlay
    monkeypatch.setattr(type(window.client), "batch_running", property(lambda self: True))
    page._update_overlay()
    assert cs.BATCH_RUNNING in page.view.overlay


def test_pause_is_enabled_only_while_frames_flow(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to pause after a camera error, with the camera unplugged or out of camera mode (nor before
    the first frame: test_a_camera_that_sends_nothing_says_so); frames after a Retry (or a camera plugged
    back in) bring Pause back."""
    cams = fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    qtbot.waitUntil(lambda: page.view.frame is not None and page.pause.isEnabled(), timeout=WAIT_MS)
    page.pause.setChecked(True)
    FakeCamera.made[-1].fail("The camera 'USB camera' could not be used (Device or resource busy).")
    assert not page.pause.isEnabled() and not page.pause.isChecked() and page.pause.text() == "Pause"
    page.retry.click()
    qtbot.waitUntil(lambda: page.pause.isEnabled(), timeout=WAIT_MS)
    assert page.view.frame is not None and page.controller.running
    monkeypatch.setattr(cs, "list_cameras", lambda: [])
    page._devices.videoInputsChanged.emit()  # unplugged
    assert page.view.message == cs.DISCONNECTED and not page.pause.isEnabled()
    monkeypatch.setattr(cs, "list_cameras", lambda: list(cams))
    page._devices.videoInputsChanged.emit()  # plugged back: opens by itself
    qtbot.waitUntil(lambda: page.pause.isEnabled() and not page.view.message, timeout=WAIT_MS)
    window.act_camera.trigger()  # leaving camera mode stops the video
    assert not page.pause.isEnabled()


def capture_setup(qtbot: Any, window: Any, page: Any, dataset: Path) -> Any:
    """Frames running, two classes ("apple" selected, "rabbit"), the class list focused; the window active."""
    qtbot.waitUntil(lambda: page.current_frame() is not None, timeout=WAIT_MS)
    page.capture.set_dataset(str(dataset))
    page.capture.add("apple")
    page.capture.add("rabbit")
    page.capture.select("apple")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    lst = page.capture.classes
    lst.setFocus()
    qtbot.waitUntil(lst.hasFocus, timeout=WAIT_MS)
    return lst


def saved(page: Any, folder: Path, qtbot: Any) -> list[Path]:
    qtbot.waitUntil(lambda: page.capture.writer.queued == 0, timeout=WAIT_MS)
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def test_space_captures_whatever_has_focus_on_the_camera_page(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Space captures with the class list (or a button) focused, not in a text field, and does nothing
    once camera mode is off."""
    fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    lst = capture_setup(qtbot, window, page, tmp_path)
    clicks: list[bool] = []
    page.capture.capture.clicked.connect(lambda: clicks.append(True))
    QTest.keyClick(lst, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(clicks) == 1, timeout=WAIT_MS)  # a shortcut clicks after 100 ms
    assert lst.hasFocus() and page.capture.current_class() == "apple"
    assert len(saved(page, tmp_path / "apple", qtbot)) == 1
    page.mirror.setFocus()
    QTest.keyClick(page.mirror, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(clicks) == 2, timeout=WAIT_MS)
    assert page.mirror.isChecked() == window.settings.camera_mirror  # not toggled by the Space
    assert len(saved(page, tmp_path / "apple", qtbot)) == 2
    edit = page.smoothing.lineEdit()
    edit.setFocus()
    QTest.keyClick(edit, Qt.Key.Key_Space)  # a text field keeps its Space
    qtbot.wait(300)
    assert len(clicks) == 2
    window.act_camera.trigger()  # camera mode off: Space is the rest of the app's again
    QTest.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Space)
    qtbot.wait(300)
    assert len(clicks) == 2 and len(saved(page, tmp_path / "apple", qtbot)) == 2


def key(widget: Any, kind: QEvent.Type, repeat: bool = False, text: str = "r") -> None:
    """An R key event as the platform sends it (auto-repeats come as release + press with repeat set)."""
    QApplication.sendEvent(widget, QKeyEvent(kind, Qt.Key.Key_R, Qt.KeyboardModifier.NoModifier, text, repeat))


def test_holding_r_records_a_burst(
        qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Holding R on the camera page (the class list focused: its keyboard search would eat R) records like
    holding the button; auto-repeats neither restart nor stop it; the release stops it. Not in a text
    field, not when the window loses focus, and not once camera mode is off."""
    from squeezelens.gui.capture_panel import BURST_FPS

    fake_cameras(monkeypatch, ["USB camera"])
    window = make_window()
    page = enter_camera_mode(qtbot, window)
    assert "hold the R key" in page.capture.record.toolTip()
    lst = capture_setup(qtbot, window, page, tmp_path)
    burst = page.capture._burst
    key(lst, QEvent.Type.KeyPress)
    assert burst.isActive() and page.capture.record.isDown()
    for _ in range(int(3.5 * 1000 / BURST_FPS / 50)):  # auto-repeats every 50 ms for ~3.5 burst periods
        qtbot.wait(50)
        key(lst, QEvent.Type.KeyRelease, repeat=True)
        key(lst, QEvent.Type.KeyPress, repeat=True)
        assert burst.isActive()
    key(lst, QEvent.Type.KeyRelease)
    assert not burst.isActive() and not page.capture.record.isDown()
    assert page.capture.current_class() == "apple"  # the list never saw the R (no jump to "rabbit")
    files = saved(page, tmp_path / "apple", qtbot)
    assert 3 <= len(files) <= 5, [f.name for f in files]
    qtbot.wait(int(2000 / BURST_FPS))
    assert len(saved(page, tmp_path / "apple", qtbot)) == len(files)  # released: no more

    key(lst, QEvent.Type.KeyPress)  # the window loses focus while R is held: the release goes elsewhere
    assert burst.isActive()
    QApplication.sendEvent(window, QEvent(QEvent.Type.WindowDeactivate))
    assert not burst.isActive() and not page.capture.record.isDown()
    key(lst, QEvent.Type.KeyRelease)

    edit = page.smoothing.lineEdit()  # typing in a text field is typing
    key(edit, QEvent.Type.KeyPress)
    key(edit, QEvent.Type.KeyRelease)
    assert not burst.isActive()
    window.act_camera.trigger()  # camera mode off: R is the rest of the app's again
    key(window.view, QEvent.Type.KeyPress)
    assert not burst.isActive() and not page._key_burst
    key(window.view, QEvent.Type.KeyRelease)
