"""Tools for tests, benchmarks and screenshots; the app itself does not use them, except one hook.

- :class:`SyntheticSource`: made-up camera frames (a moving bar over a gradient, or given images) at
  a steady rate, as RGB32 or NV12 ``QVideoFrame``s, for live mode without a camera: the GUI tests,
  ``bench/live_camera.py`` and ``scripts/camera_screenshot.py``.
- :class:`StartupProbe`: the hook. The app makes one from the environment (``gui/app.py``) and the
  main window marks ``window_shown`` and ``first_result`` on it; it writes nothing unless
  ``$SQUEEZELENS_STARTUP_PROBE`` names a file (``bench/gui_startup.py``, ``tests/gui/test_startup.py``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, QPoint, QRect, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter

from .camera_source import FrameSource, multimedia

# -- start-up timestamps -------------------------------------------------------------------------------
PROBE_ENV = "SQUEEZELENS_STARTUP_PROBE"
QUIT_ENV = "SQUEEZELENS_STARTUP_PROBE_QUIT"  # quit after this event (e.g. "first_result")


class StartupProbe:
    """Appends ``{"event", "t"}`` (wall-clock seconds) to a file, once per event name."""

    def __init__(self, path: str | None, quit_after: str | None = None, quit: Callable[[], None] | None = None):
        self.path = path
        self.quit_after = quit_after
        self.quit = quit
        self._seen: set[str] = set()

    @classmethod
    def from_env(cls, quit: Callable[[], None] | None = None) -> StartupProbe:
        return cls(os.environ.get(PROBE_ENV) or None, os.environ.get(QUIT_ENV) or None, quit)

    def mark(self, event: str) -> None:
        if not self.path or event in self._seen:
            return
        self._seen.add(event)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "t": time.time()}) + "\n")
        if event == self.quit_after and self.quit is not None:
            self.quit()


# -- synthetic camera frames -----------------------------------------------------------------------------
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
