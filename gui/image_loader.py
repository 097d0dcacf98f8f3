"""Decoding images for display off the GUI thread (a 12 MP JPEG takes longer than a frame)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage

#: Longest side decoded for display: sharp on a 4K screen, and JPEGs decode at reduced scale.
DISPLAY_MAX_SIDE = 2560
#: Thumbnail side in device pixels: the history strip's 72-pixel icons stay sharp at 2x scale.
THUMB_SIDE = 144


def read_for_display(path: str, max_side: int = DISPLAY_MAX_SIDE) -> QImage:
    """The image at ``path`` as core reads it for classification (EXIF orientation, colour profile to
    sRGB, HEIC, every mode, non-UTF-8 names), no larger than ``max_side``; raises OSError with core's
    plain reason."""
    from squeezelens.core.errors import ImageLoadError
    from squeezelens.core.images import open_image

    try:
        img = open_image(path, fast_min_side=max_side // 2)  # JPEGs decode at reduced scale when large
    except ImageLoadError as e:
        raise OSError(e.reason) from e
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side))
    data = img.tobytes()
    return QImage(data, img.width, img.height, img.width * 3, QImage.Format.Format_RGB888).copy()


def thumbnail(image: QImage, side: int = THUMB_SIDE) -> QImage:
    return image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def placeholder_thumbnail(side: int = THUMB_SIDE) -> QImage:
    """A neutral square for images Qt cannot preview (core may still classify them)."""
    image = QImage(side, side, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor(128, 128, 128, 90))
    return image


class ImageLoader(QObject):
    """Loads display images and thumbnails in a small private thread pool; answers by token."""

    loaded = Signal(int, QImage, QImage)  # token, display image, thumbnail
    failed = Signal(int, str)  # token, message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)

    def load(self, token: int, path: str) -> None:
        def task() -> None:
            try:
                image = read_for_display(path)
                self.loaded.emit(token, image, thumbnail(image))
            except OSError as e:
                self.failed.emit(token, str(e))

        self._pool.start(task)

    def load_image(self, token: int, image: QImage) -> None:
        """Image data (paste, drop): scaled to display size and thumbnailed off the GUI thread."""

        def task() -> None:
            side = max(image.width(), image.height())
            shown = image if side <= DISPLAY_MAX_SIDE else image.scaled(
                DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
            self.loaded.emit(token, shown, thumbnail(shown))

        self._pool.start(task)

    def wait(self, msecs: int = 2000) -> bool:
        """Wait for running decodes (at shutdown)."""
        self._pool.clear()
        return self._pool.waitForDone(msecs)
