"""Frame sources for live mode: a real camera (``QCamera``) writing ``QVideoFrame``s into a
``QVideoSink`` that the live controller reads (``dev_tools.SyntheticSource`` is the made-up one for
tests, benchmarks and screenshots).

Qt Multimedia is imported inside functions, so the rest of the app works (and starts as fast) when
it is missing; :func:`multimedia_problem` says so in words for the camera view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal

#: The default resolution: the smallest format of at least this size...
MIN_DEFAULT = (640, 480)
#: ...and at most this one.
MAX_DEFAULT = (1280, 720)

NO_CAMERA = "No camera found. Connect a camera; it will appear here when it is plugged in."
PERMISSION_DENIED = (
    "SqueezeLens is not allowed to use the camera. Allow it in System Settings > Privacy & Security > "
    "Camera, then press Retry."
)
DISCONNECTED = "The camera was disconnected. Plug it in again or choose another camera."
#: Said while a batch job has the worker: live mode then gets one frame per chunk of the batch.
BATCH_RUNNING = "classifying a folder: live results slowed down"


def _import_multimedia() -> Any:
    import PySide6.QtMultimedia as mm

    return mm


def multimedia() -> Any:
    """The ``PySide6.QtMultimedia`` module (raises ImportError when it cannot be loaded)."""
    return _import_multimedia()


#: Shown while camera mode waits for the model stack (core.model_stack) before it loads Qt's video stack.
STARTING_CAMERA = "Starting camera... (loading the model libraries first, a few seconds)"

_warmed = False


def warm_frame_conversion() -> None:
    """Convert one private frame in the GUI thread, once, before any camera frame flows.

    The first ``QVideoFrame.toImage()``/``paint()`` in a thread creates that thread's RHI (OpenGL on X11:
    Mesa and its LLVM load here) and a ``QOffscreenSurface``, whose events pass the application's Python
    event filters while the frame's lock is held. Were that a frame the worker converts at the same time
    (``toImage()`` keeps the GIL while it waits for the lock), the two threads would wait on each other for
    ever. Done first on a frame no other thread sees, later conversions in the GUI thread never re-enter
    Python. Call it only once the model stack is loaded (see core.model_stack).
    """
    global _warmed
    if _warmed:
        return
    from PySide6.QtGui import QImage

    image = QImage(2, 2, QImage.Format.Format_RGB32)
    image.fill(0)
    multimedia().QVideoFrame(image).toImage()
    _warmed = True


def _plugin_folders() -> list[Path]:
    return [Path(p) / "multimedia" for p in QCoreApplication.libraryPaths()]


def multimedia_problem() -> str | None:
    """Why live mode cannot work at all (no Qt Multimedia, no backend plugin), or None."""
    try:
        _import_multimedia()
    except ImportError as e:
        return f"Camera support is not available: Qt Multimedia could not be loaded ({e})."
    if not any(f.is_dir() and any(f.iterdir()) for f in _plugin_folders()):
        return ("Camera support is not available: Qt Multimedia has no backend plugin "
                "(the 'multimedia' plugins folder is missing or empty).")
    return None


# -- permission (macOS asks the user; Linux and Windows grant it) -------------------------------------
def check_camera_permission() -> str:
    """``"granted"``, ``"denied"`` or ``"undetermined"`` (Qt 6.5+ ``QCameraPermission``)."""
    app = QCoreApplication.instance()
    try:
        from PySide6.QtCore import QCameraPermission
    except ImportError:  # older Qt: no permission API, the platform decides on use
        return "granted"
    if app is None:
        return "granted"
    status = app.checkPermission(QCameraPermission())
    return {Qt.PermissionStatus.Granted: "granted", Qt.PermissionStatus.Denied: "denied"}.get(status, "undetermined")


def request_camera_permission(context: QObject, done: Callable[[bool], None]) -> None:
    """Ask the user (macOS shows its prompt once); ``done(granted)`` is called in the GUI thread."""
    from PySide6.QtCore import QCameraPermission

    app = QCoreApplication.instance()
    assert app is not None, "asked only after check_camera_permission() said 'undetermined', which needs an app"
    app.requestPermission(QCameraPermission(), context,
                          lambda perm: done(perm.status() == Qt.PermissionStatus.Granted))


# -- cameras and formats ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraInfo:
    """A camera as the picker lists it."""

    id: str
    description: str
    is_default: bool
    device: Any  # QCameraDevice


def list_cameras() -> list[CameraInfo]:
    mm = multimedia()
    out = []
    for dev in mm.QMediaDevices.videoInputs():
        out.append(CameraInfo(bytes(dev.id()).decode("utf-8", "replace"), dev.description(), dev.isDefault(), dev))
    return out


def format_key(fmt: Any) -> str:
    """``"640x480"``: how a resolution is stored in the settings and shown in the picker."""
    size = fmt.resolution()
    return f"{size.width()}x{size.height()}"


def resolutions(formats: Sequence[Any]) -> list[Any]:
    """One format per resolution (the fastest frame rate of each), smallest first."""
    best: dict[tuple[int, int], Any] = {}
    for f in formats:
        size = f.resolution()
        key = (size.width(), size.height())
        if key not in best or f.maxFrameRate() > best[key].maxFrameRate():
            best[key] = f
    return [best[k] for k in sorted(best, key=lambda k: (k[0] * k[1], k))]


def pick_format(formats: Sequence[Any], wanted: str = "") -> Any | None:
    """The format for ``wanted`` ("WxH") if the camera has it, else the default: the smallest of at
    least 640x480 and at most 1280x720, else the largest below 640x480, else the smallest."""
    choices = resolutions(formats)
    if not choices:
        return None
    for f in choices:
        if wanted and format_key(f) == wanted:
            return f

    def size(f: Any) -> tuple[int, int]:
        return f.resolution().width(), f.resolution().height()

    fits = [f for f in choices if MIN_DEFAULT[0] <= size(f)[0] <= MAX_DEFAULT[0]
            and MIN_DEFAULT[1] <= size(f)[1] <= MAX_DEFAULT[1]]
    if fits:
        return fits[0]
    small = [f for f in choices if size(f)[0] < MIN_DEFAULT[0] or size(f)[1] < MIN_DEFAULT[1]]
    return small[-1] if small else choices[0]


# -- sources ------------------------------------------------------------------------------------------
class FrameSource(QObject):
    """Writes frames into ``sink`` (a ``QVideoSink``) between ``start()`` and ``stop()``.

    ``errorOccurred(message)`` is a user-facing sentence; after it the source delivers nothing more.
    """

    errorOccurred = Signal(str)
    activeChanged = Signal(bool)

    def __init__(self, sink: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sink = sink

    description = "source"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class CameraSource(FrameSource):
    """A real camera: ``QCamera`` -> ``QMediaCaptureSession`` -> the sink."""

    def __init__(self, sink: Any, device: Any, fmt: Any | None = None, parent: QObject | None = None) -> None:
        super().__init__(sink, parent)
        mm = multimedia()
        self.description = device.description()
        self.camera = mm.QCamera(device)
        if fmt is not None and not fmt.isNull():
            self.camera.setCameraFormat(fmt)
        self.session = mm.QMediaCaptureSession()
        self.session.setCamera(self.camera)
        self.session.setVideoSink(sink)
        self._wanted = False
        self._failed = False
        self.camera.errorOccurred.connect(self._on_error)
        self.camera.activeChanged.connect(self._on_active)

    def start(self) -> None:
        self._wanted, self._failed = True, False
        self.camera.start()
        if self.camera.error() != multimedia().QCamera.Error.NoError:  # failed at once, without a signal
            self._on_error(self.camera.error(), self.camera.errorString())

    def stop(self) -> None:
        self._wanted = False
        self.camera.stop()

    def _fail(self, message: str) -> None:
        if not self._failed:
            self._failed = True
            self._wanted = False
            self.errorOccurred.emit(message)

    def _on_error(self, error: Any, text: str) -> None:
        if not self._wanted:
            return
        detail = f" ({text})" if text else ""
        self._fail(f"The camera '{self.description}' could not be used{detail}. "
                   "Another app may be using it, or it was unplugged.")
        self.camera.stop()

    def _on_active(self, active: bool) -> None:
        self.activeChanged.emit(active)
        if not active and self._wanted:
            self._fail(f"The camera '{self.description}' stopped. It may have been unplugged or taken by "
                       "another app.")
