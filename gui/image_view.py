"""The large image on the left: scaled to fit with its aspect ratio kept, sharp on high-DPI screens."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from .contrast import secondary_text


class ImageView(QWidget):
    """Draws one QImage, or a hint text when there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._scaled: QPixmap | None = None
        self._overlay: QImage | None = None  # e.g. the "Why?" heatmap, drawn over the image
        self._hint = "Drop images or a folder here\n\nCtrl+O open    Ctrl+V paste"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 200)
        self.setAccessibleName("Image")

    @property
    def image(self) -> QImage:
        return self._image

    def set_image(self, image: QImage) -> None:
        self._image = image
        self._scaled = None
        self.update()

    def set_overlay(self, overlay: QImage | None) -> None:
        """A translucent layer stretched over the image (``None`` removes it)."""
        self._overlay = overlay
        self.update()

    def set_hint(self, text: str) -> None:
        self._hint = text
        if self._image.isNull():
            self.update()

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def target_rect(self) -> QRect:
        """Where the image lands: centred, fitted to the view with its aspect ratio kept."""
        if self._image.isNull():
            return QRect()
        size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRect((self.width() - size.width()) // 2, (self.height() - size.height()) // 2,
                     size.width(), size.height())

    def resizeEvent(self, event: object) -> None:  # noqa: ARG002
        self._scaled = None

    def paintEvent(self, event: object) -> None:  # noqa: ARG002
        p = QPainter(self)
        if self._image.isNull():
            p.setPen(secondary_text(self.palette()))  # readable: at least 4.5:1 on the window colour
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._hint)
            return
        rect = self.target_rect()
        dpr = self.devicePixelRatioF()
        want = QSize(round(rect.width() * dpr), round(rect.height() * dpr))
        if self._scaled is None or self._scaled.size() != want:
            # scaled once per size, not once per paint
            self._scaled = QPixmap.fromImage(self._image.scaled(
                want, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation))
            self._scaled.setDevicePixelRatio(dpr)
        p.drawPixmap(rect.topLeft(), self._scaled)
        if self._overlay is not None and not self._overlay.isNull():
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(rect, self._overlay)
