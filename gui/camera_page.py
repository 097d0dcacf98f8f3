"""Camera mode's left-hand page: camera picker (follows plugging and unplugging), resolution, mirror,
pause, smoothing, the video with its overlay, and the capture panel. Results go to the window's
results panel through ``resultReady``. Keys while it is shown: Space captures (the Capture button's
shortcut), holding R records a burst (an application event filter, installed only while the page is shown).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from . import camera_source as cs
from .camera_view import CameraView
from .capture_panel import RECORD_KEY, CapturePanel
from .live_controller import LiveController
from .settings import SMOOTHING_RANGE, AppSettings
from .worker import InferenceClient

OVERLAY_MS = 250  # overlay text refresh
NO_VIDEO_MS = 6000  # a started camera that has sent no frame by then gets a message
#: Capture and Hold to record are disabled with this tooltip while no frame is on show.
NO_VIDEO_TO_CAPTURE = "Nothing to capture: there is no video (no camera, or it is starting, stopped or failed)."

_KEY_PRESS, _KEY_RELEASE = QEvent.Type.KeyPress, QEvent.Type.KeyRelease
_DEACTIVATE = QEvent.Type.WindowDeactivate


def is_text_field(w: QWidget) -> bool:
    """Typing goes into ``w`` (a line edit, spin box, text editor or editable combo box)."""
    return (isinstance(w, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit))
            or (isinstance(w, QComboBox) and w.isEditable()))


class CameraPage(QWidget):
    """Everything camera mode shows on the left. ``start()`` opens the chosen camera, ``stop()`` closes it."""

    resultReady = Signal(object, object)  # LiveResult, rows
    message = Signal(str)  # a short notice for the window

    def __init__(self, client: InferenceClient, settings: AppSettings, top_k: Any = lambda: 5,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cameraPage")
        self.client = client
        self.settings = settings
        self.view = CameraView()
        self.view.set_mirrored(settings.camera_mirror)
        self.problem: str | None = cs.multimedia_problem()
        self.controller: LiveController | None = None
        self._devices: Any = None  # QMediaDevices, for videoInputsChanged
        self._cameras: list[cs.CameraInfo] = []
        self.active = False
        self._key_burst = False  # a burst started by holding RECORD_KEY (its release stops it)
        self._filtering = False  # the application event filter is installed

        self.camera_box = QComboBox()
        self.camera_box.setMinimumContentsLength(16)
        self.camera_box.setToolTip("Camera")
        self.camera_box.setPlaceholderText("No camera")
        self.resolution_box = QComboBox()
        self.resolution_box.setToolTip("Resolution")
        self.mirror = QCheckBox("Mirror")
        self.mirror.setToolTip("Flip the video left to right (display only; captures are saved unmirrored)")
        self.mirror.setChecked(settings.camera_mirror)
        self.pause = QPushButton("Pause")
        self.pause.setCheckable(True)
        self.pause.setToolTip("Freeze the video and stop classifying")
        self.pause.setEnabled(False)  # until frames come
        self.smoothing = QSpinBox()
        self.smoothing.setRange(*SMOOTHING_RANGE)
        self.smoothing.setValue(settings.camera_smoothing)
        self.smoothing.setPrefix("Smooth ")
        self.smoothing.setToolTip("Average the bars over this many results (1 = off)")
        self.retry = QPushButton("Retry")
        self.retry.setToolTip("Open the chosen camera again")
        self.retry.hide()  # shown with an error message
        self.capture = CapturePanel(settings, self.current_frame)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Camera"))
        controls.addWidget(self.camera_box, 1)
        controls.addWidget(self.resolution_box)
        controls.addWidget(self.mirror)
        controls.addWidget(self.smoothing)
        controls.addWidget(self.pause)
        controls.addWidget(self.retry)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.capture)

        self._overlay_timer = QTimer(self, interval=OVERLAY_MS)
        self._overlay_timer.timeout.connect(self._update_overlay)
        self._no_video = QTimer(self, singleShot=True)
        self._no_video.timeout.connect(self._check_video)
        self._frames_at_start = 0
        self.mirror.toggled.connect(self._on_mirror)
        self.pause.toggled.connect(self._on_pause)
        self.smoothing.valueChanged.connect(self._on_smoothing)
        # the capture panel's messages stay on its own status line (once, next to its buttons)
        self.capture.set_video(NO_VIDEO_TO_CAPTURE)  # until the first frame
        self.retry.clicked.connect(lambda: self.start())
        self._after_stack: Any = None  # what start()/start_source() do once the model stack is loaded
        client.stackReady.connect(self._on_stack_ready)

        if self.problem is None:
            self.controller = LiveController(client, top_k, self)
            self.controller.set_smoothing(settings.camera_smoothing)
            self.controller.frameShown.connect(self.view.set_frame)
            self.controller.frameShown.connect(self._on_frame_shown)
            self.controller.resultReady.connect(self.resultReady)
            self.controller.problem.connect(self._show_problem)
            self._devices = cs.multimedia().QMediaDevices(self)
            self._devices.videoInputsChanged.connect(self._on_devices_changed)
            self.camera_box.currentIndexChanged.connect(self._on_camera_chosen)
            # choosing the entry already selected (after an error) gives no currentIndexChanged
            self.camera_box.activated.connect(self._on_camera_activated)
            self.resolution_box.currentIndexChanged.connect(self._on_resolution_chosen)
            self._fill_cameras()
        else:
            self._enable_controls(False)
            self.view.set_message(self.problem)

    # -- start / stop --------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the chosen camera (asking for permission where the platform wants it)."""
        self.active = True
        if self.controller is None:
            self.view.set_message(self.problem or cs.NO_CAMERA)
            return
        if self._stack_first(self.start):
            return
        status = cs.check_camera_permission()
        if status == "denied":
            self._show_problem(cs.PERMISSION_DENIED)
            return
        if status == "undetermined":
            self.view.set_message("Waiting for permission to use the camera...")
            cs.request_camera_permission(self, self._on_permission)
            return
        self._open_camera()

    def stop(self) -> None:
        """Close the camera (leaving camera mode); captures being written finish in the background."""
        self.active = False
        self._after_stack = None
        self.retry.hide()
        self._overlay_timer.stop()
        self._no_video.stop()
        self._stop_key_burst()
        self.capture.stop_burst()
        self._video_gone()
        if self.controller is not None:
            self.controller.set_source(None)

    def start_source(self, source: cs.FrameSource) -> None:
        """Run live mode on ``source`` (a camera, or synthetic frames for tests and the benchmark)."""
        assert self.controller is not None, self.problem
        self.active = True
        self.retry.hide()
        self._video_gone()  # Pause comes back with the first frame
        if self._stack_first(lambda: self.start_source(source)):
            return
        cs.warm_frame_conversion()
        self.controller.set_source(source)
        self.view.set_message(f"Starting {source.description}...")
        self._frames_at_start = self.controller.stats.frames
        self.controller.start()
        if self.controller.running:
            self._overlay_timer.start()
            self._no_video.start(NO_VIDEO_MS)

    @property
    def waiting_for_stack(self) -> bool:
        """Camera mode is on and waits for the model stack before it starts the video (STARTING_CAMERA)."""
        return self._after_stack is not None

    def _stack_first(self, then: Any) -> bool:
        """True when the model stack is not loaded yet: ``then`` runs when it is (if still active).

        Qt's video path loads OpenGL (Mesa, LLVM) with the first frame; the model stack's own native
        libraries (triton's LLVM) must be loaded before it, whatever the order the user clicks in."""
        if self.client.model_stack_ready:
            return False
        self._after_stack = then
        self.view.set_message(cs.STARTING_CAMERA)
        self.client.prepare_model_stack()
        return True

    def _on_stack_ready(self) -> None:
        then, self._after_stack = self._after_stack, None
        if then is not None and self.active:
            then()

    def shutdown(self, msecs: int = 1000) -> None:
        self.stop()
        self.capture.shutdown(msecs)

    def current_frame(self) -> Any:
        return self.controller.last_frame if self.controller is not None else None

    @property
    def _live(self) -> LiveController:
        """The controller, for what runs only when Qt Multimedia works (the camera list's signals)."""
        assert self.controller is not None, self.problem
        return self.controller

    # -- cameras -----------------------------------------------------------------------------------
    def _fill_cameras(self, keep: str | None = None) -> None:
        """List the cameras; select ``keep`` (the one running), else the saved one, else the default."""
        self._cameras = cs.list_cameras()
        self.camera_box.blockSignals(True)
        self.camera_box.clear()
        for cam in self._cameras:
            self.camera_box.addItem(cam.description, cam.id)
        wanted = keep or self.settings.camera_id
        index = next((i for i, c in enumerate(self._cameras) if c.id == wanted), None)
        if index is None:
            index = next((i for i, c in enumerate(self._cameras) if c.is_default), 0)
        if self._cameras:
            self.camera_box.setCurrentIndex(index)
        self.camera_box.blockSignals(False)
        self._enable_controls(bool(self._cameras))
        self._fill_resolutions()

    def _fill_resolutions(self) -> None:
        self.resolution_box.blockSignals(True)
        self.resolution_box.clear()
        cam = self._camera()
        if cam is not None:
            formats = cs.resolutions(cam.device.videoFormats())
            chosen = cs.pick_format(formats, self.settings.camera_resolution)
            for f in formats:
                self.resolution_box.addItem(cs.format_key(f), f)
            if chosen is not None:
                self.resolution_box.setCurrentIndex(formats.index(chosen))
        self.resolution_box.setEnabled(self.resolution_box.count() > 1)
        self.resolution_box.blockSignals(False)

    def _camera(self) -> cs.CameraInfo | None:
        i = self.camera_box.currentIndex()
        return self._cameras[i] if 0 <= i < len(self._cameras) else None

    def _enable_controls(self, on: bool) -> None:
        for w in (self.camera_box, self.resolution_box):
            w.setEnabled(on)

    def _video_gone(self) -> None:
        """No running video (stopped, starting, failed, no camera): nothing to pause."""
        self.pause.setChecked(False)
        self.pause.setEnabled(False)
        self.capture.set_video(NO_VIDEO_TO_CAPTURE)

    def _on_frame_shown(self, _frame: Any) -> None:
        if not self.pause.isEnabled():
            self.pause.setEnabled(True)  # frames flow (again)
        if self.capture.no_video is not None:
            self.capture.set_video(None)

    def _open_camera(self) -> None:
        cam = self._camera()
        if cam is None:
            self._video_gone()
            self._live.set_source(None)
            self.view.set_message(cs.NO_CAMERA)
            return
        fmt = self.resolution_box.currentData()
        source = cs.CameraSource(self._live.sink, cam.device, fmt)
        self.start_source(source)

    def _on_permission(self, granted: bool) -> None:
        if not self.active:
            return
        if granted:
            self._open_camera()
        else:
            self._show_problem(cs.PERMISSION_DENIED)

    def _on_devices_changed(self) -> None:
        """A camera was plugged in or out: refresh the list; switch away from one that is gone."""
        before = self._camera()
        self._fill_cameras(before.id if before is not None else None)
        if not self.active:
            return
        gone = before if before is not None and all(c.id != before.id for c in self._cameras) else None
        running = self._live.source is not None and self._live.running
        if gone is not None and self._cameras:  # another camera is there: use it
            self.message.emit(f"The camera '{gone.description}' was disconnected; "
                              f"switched to '{self.camera_box.currentText()}'.")
            self._open_camera()
        elif gone is not None:
            self._live.set_source(None)
            self._show_problem(cs.DISCONNECTED)
        elif not running and self._cameras and (before is None or self.view.message):
            self._open_camera()  # the first camera was plugged in, or one came back after an error

    def _on_camera_chosen(self, index: int) -> None:
        cam = self._camera()
        if cam is not None:
            self.settings.camera_id = cam.id
        self._fill_resolutions()
        if self.active:
            self._open_camera()

    def _on_camera_activated(self, index: int) -> None:
        if self.active and not self._live.running:
            self._open_camera()  # the same entry chosen again after an error: try it again

    def _on_resolution_chosen(self, index: int) -> None:
        fmt = self.resolution_box.currentData()
        if fmt is not None:
            self.settings.camera_resolution = cs.format_key(fmt)
        if self.active:
            self._open_camera()

    # -- controls ----------------------------------------------------------------------------------
    def _on_mirror(self, on: bool) -> None:
        self.settings.camera_mirror = on
        self.view.set_mirrored(on)

    def _on_pause(self, paused: bool) -> None:
        self.pause.setText("Resume" if paused else "Pause")
        self.view.set_paused(paused)
        if self.controller is not None:
            self.controller.set_paused(paused)

    def _on_smoothing(self, n: int) -> None:
        self.settings.camera_smoothing = n
        if self.controller is not None:
            self.controller.set_smoothing(n)

    def _check_video(self) -> None:
        c = self.controller
        if (self.active and c is not None and c.source is not None and c.running
                and c.stats.frames == self._frames_at_start):
            # not an error yet: if frames start to come, the first one replaces this message
            self.view.set_message(f"{c.source.description} sends no video. Another app may be using it; "
                                  "close it or choose another camera.")

    def _show_problem(self, message: str) -> None:
        self._overlay_timer.stop()
        self._no_video.stop()
        self._video_gone()
        self.view.set_message(message)
        self.retry.setVisible(self.active)
        self.message.emit(message)

    def _update_overlay(self) -> None:
        c = self.controller
        if c is None:
            return
        s = c.stats
        latency = s.latency_ms()
        text = f"video {s.video.rate():4.1f} fps   inference {s.inference.rate():4.1f} fps"
        text += f"   latency {latency:4.0f} ms" if latency is not None else "   latency  -"
        if self.client.model is None:
            text += "\nwaiting for the model to load..."
        elif self.client.batch_running:
            text += f"\n{cs.BATCH_RUNNING}"
        self.view.set_overlay(text)

    # -- hold R to record --------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._filtering:
            # an application filter: a focused class list or combo box would eat R (keyboard search)
            _app().installEventFilter(self)
            self._filtering = True

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._stop_key_burst()
        if self._filtering:
            _app().removeEventFilter(self)
            self._filtering = False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == _KEY_PRESS or kind == _KEY_RELEASE:
            if isinstance(obj, QWidget) and isinstance(event, QKeyEvent) and event.key() == RECORD_KEY:
                return self._record_key(obj, event)
        elif kind == _DEACTIVATE and self._key_burst and obj is self.window():
            self._stop_key_burst()  # the release would go to another window
        return False

    def _record_key(self, target: QWidget, event: QKeyEvent) -> bool:
        """R pressed starts a burst, released stops it; auto-repeats are swallowed. True when handled."""
        if event.type() == _KEY_RELEASE:
            if not self._key_burst:
                return False
            if not event.isAutoRepeat():
                self._stop_key_burst()
            return True
        if self._key_burst:
            return True  # an auto-repeat (or a second press before the release): keep recording
        if (event.isAutoRepeat() or event.modifiers() != Qt.KeyboardModifier.NoModifier
                or target.window() is not self.window() or is_text_field(target)):
            return False
        self._key_burst = True
        self.capture.record.setDown(True)  # shows that it records, like holding the button
        self.capture.start_burst()
        return True

    def _stop_key_burst(self) -> None:
        if self._key_burst:
            self._key_burst = False
            self.capture.record.setDown(False)
            self.capture.stop_burst()


def _app() -> QCoreApplication:
    app = QApplication.instance()
    assert app is not None, "a widget is shown only inside an application"
    return app
