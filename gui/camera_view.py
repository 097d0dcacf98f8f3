"""The video surface of camera mode: the newest frame, fitted and optionally mirrored, with an overlay
(video fps, inference fps, frame-to-result latency), or a message when there is no video."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget


class CameraView(QWidget):
    """Draws whatever frame it was last given; repaints are coalesced by Qt (one per event-loop pass)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cameraView")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.frame: Any = None  # QVideoFrame or QImage
        self.mirrored = False
        self.message = ""
        self.overlay = ""
        self.paused = False
        self.paints = 0
        self.paint_cpu_ms = 0.0  # the longest paint, in GUI-thread CPU ms (tests, benchmark)
        self.paint_wall_ms = 0.0

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def set_frame(self, frame: Any) -> None:
        self.frame = frame
        self.message = ""
        self.update()

    def set_message(self, text: str) -> None:
        """A message instead of the video (no camera, an error, starting...)."""
        self.message = text
        self.frame = None
        self.update()

    def set_overlay(self, text: str) -> None:
        if text != self.overlay:
            self.overlay = text
            self.update()

    def set_mirrored(self, mirrored: bool) -> None:
        self.mirrored = mirrored
        self.update()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        self._paint()
        self.paint_cpu_ms = max(self.paint_cpu_ms, (time.thread_time() - cpu0) * 1000)
        self.paint_wall_ms = max(self.paint_wall_ms, (time.perf_counter() - wall0) * 1000)

    def _paint(self) -> None:
        self.paints += 1
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(16, 16, 16))
        if self.frame is not None:
            self._draw_frame(p)
            lines = [self.overlay] if self.overlay else []
            if self.paused:
                lines.append("Paused")
            if lines:
                self._draw_overlay(p, "\n".join(lines))
        elif self.message:
            p.setPen(QColor(235, 235, 235))
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.15)
            p.setFont(font)
            box = self.rect().adjusted(40, 40, -40, -40)
            p.drawText(box, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
        p.end()

    def _draw_frame(self, p: QPainter) -> None:
        frame = self.frame
        size = frame.size()
        if size.isEmpty():
            return
        fitted = size.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRectF((self.width() - fitted.width()) / 2, (self.height() - fitted.height()) / 2,
                        fitted.width(), fitted.height())
        p.save()
        if self.mirrored:  # display only: captures and the model get the frame as the camera sent it
            p.translate(self.width(), 0)
            p.scale(-1, 1)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if isinstance(frame, QImage):
            p.drawImage(target, frame)
        else:
            from .camera_source import multimedia

            frame.paint(p, target, multimedia().QVideoFrame.PaintOptions())
        p.restore()

    def _draw_overlay(self, p: QPainter, text: str) -> None:
        font = QFont(self.font())
        font.setStyleHint(QFont.StyleHint.Monospace)
        p.setFont(font)
        metrics = p.fontMetrics()
        rect = metrics.boundingRect(0, 0, 1000, 1000, 0, text).adjusted(-8, -6, 8, 6)
        rect.moveTopLeft(QPoint(10, 10))
        p.fillRect(rect, QColor(0, 0, 0, 150))
        p.setPen(QColor(255, 255, 255))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
