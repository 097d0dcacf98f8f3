"""Frame sources for live mode: a real camera (QCamera) or a synthetic generator, both writing
``QVideoFrame``s into a ``QVideoSink`` that the live controller reads.

Qt Multimedia is imported inside functions, so the rest of the app works (and starts as fast) when
it is missing; :func:`multimedia_problem` says so in words for the camera view.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter

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
        self.device = device
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


#: Pixel formats SyntheticSource can send: ``rgb32`` (a QVideoFrame wrapping a QImage) or ``nv12``
#: (what most webcams deliver: a Y plane and an interleaved half-size CbCr plane, BT.601 video range).
PIXEL_FORMATS = ("rgb32", "nv12")


class SyntheticSource(FrameSource):
    """Made-up frames at a steady rate (tests, the benchmark, screenshots): a moving bar over a
    gradient, or the given images in turn. With ``pixel_format="rgb32"`` each frame is a ``QVideoFrame``
    wrapping a ``QImage``; with ``"nv12"`` a new NV12 frame is filled for each push, so converting and
    drawing it costs what a real camera's frames cost."""

    description = "Synthetic frames"

    def __init__(self, sink: Any, size: tuple[int, int] = (640, 480), fps: float = 30.0,
                 images: Sequence[QImage] | None = None, distinct: int = 30, parent: QObject | None = None,
                 pixel_format: str = "rgb32") -> None:
        super().__init__(sink, parent)
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format must be one of {PIXEL_FORMATS}, not {pixel_format!r}")
        self.fps = fps
        self.pixel_format = pixel_format
        self.frames = [img.convertToFormat(QImage.Format.Format_RGB32) for img in images] if images else [
            _pattern(size, i, distinct) for i in range(distinct)]
        if pixel_format == "nv12":  # NV12 needs even sizes
            self.frames = [f.copy(0, 0, f.width() & ~1, f.height() & ~1) for f in self.frames]
            self._planes = [_nv12_planes(f) for f in self.frames]
        self.sent = 0
        self._timer = QTimer(self, singleShot=True, timerType=Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._due = 0
        self.activeChanged.emit(True)
        self._tick()

    def stop(self) -> None:
        self._timer.stop()
        self.activeChanged.emit(False)

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def push_frame(self) -> None:
        """Write the next frame into the sink now."""
        mm = multimedia()
        i = self.sent % len(self.frames)
        self.sent += 1
        if self.pixel_format == "nv12":
            self.sink.setVideoFrame(_nv12_frame(self.frames[i].size(), *self._planes[i]))
        else:
            self.sink.setVideoFrame(mm.QVideoFrame(self.frames[i]))

    def fail(self, message: str) -> None:
        """Stop as a camera that failed would (tests)."""
        self._timer.stop()
        self.errorOccurred.emit(message)

    def _tick(self) -> None:
        self.push_frame()
        self._due += 1
        # deadline-based, so the average rate stays at fps even when one tick is late
        wait = self._t0 + self._due / self.fps - time.perf_counter()
        self._timer.start(max(0, int(wait * 1000)))


def _nv12_planes(image: QImage) -> tuple[Any, Any]:
    """An RGB32 image as NV12 planes (BT.601, video range): Y (h x w) and CbCr (h/2 x w, interleaved)."""
    import numpy as np

    w, h = image.width(), image.height()
    bgrx = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())[:, : w * 4]
    rgb = bgrx.reshape(h, w, 4)[:, :, 2::-1].astype(np.float32) / 255
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    half = [c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) for c in (cb, cr)]
    uv = np.stack(half, axis=-1).reshape(h // 2, w)
    return (np.clip(np.rint(y), 0, 255).astype(np.uint8), np.clip(np.rint(uv), 0, 255).astype(np.uint8))


def _nv12_frame(size: Any, y: Any, uv: Any) -> Any:
    """A new NV12 ``QVideoFrame`` (its own buffer, as a camera's) filled with the given planes."""
    import numpy as np

    mm = multimedia()
    fmt = mm.QVideoFrameFormat(size, mm.QVideoFrameFormat.PixelFormat.Format_NV12)
    fmt.setColorSpace(mm.QVideoFrameFormat.ColorSpace.ColorSpace_BT601)
    fmt.setColorRange(mm.QVideoFrameFormat.ColorRange.ColorRange_Video)
    frame = mm.QVideoFrame(fmt)
    frame.map(mm.QVideoFrame.MapMode.WriteOnly)
    try:
        for plane, data in ((0, y), (1, uv)):
            rows = data.shape[0]
            out = np.frombuffer(frame.bits(plane), np.uint8)[: rows * frame.bytesPerLine(plane)]
            out.reshape(rows, frame.bytesPerLine(plane))[:, : data.shape[1]] = data
    finally:
        frame.unmap()
    return frame


def _pattern(size: tuple[int, int], i: int, n: int) -> QImage:
    w, h = size
    image = QImage(w, h, QImage.Format.Format_RGB32)
    p = QPainter(image)
    grad = QLinearGradient(0, 0, w, h)
    grad.setColorAt(0, QColor(40, 90, 160))
    grad.setColorAt(1, QColor(230, 170, 60))
    p.fillRect(image.rect(), grad)
    x = int((w - w // 6) * i / max(1, n - 1))
    p.fillRect(QRect(x, h // 4, w // 6, h // 2), QColor(250, 250, 250))
    if h >= 64:
        font = QFont()
        font.setPixelSize(max(10, h // 12))
        p.setFont(font)
        p.setPen(QColor(20, 20, 20))
        p.drawText(QPoint(w // 20, h - h // 12), "SqueezeLens synthetic camera")
    p.end()
    return image
