"""QImage <-> PIL conversion for image data that arrives without a file (drops, paste, camera)."""

from __future__ import annotations

import sys

from PIL import Image
from PySide6.QtGui import QImage

from squeezelens.core.images import to_rgb


def qimage_to_pil(image: QImage) -> Image.Image:
    """An RGB PIL image with the same pixels (alpha composited over white, as core does for files)."""
    if image.isNull():
        raise ValueError("the image data is empty")
    if image.format() == QImage.Format.Format_RGB32 and sys.byteorder == "little":
        # what cameras (QVideoFrame.toImage) and most pastes give: unpacked straight from the buffer in
        # Pillow's BGRX raw mode, one copy (about 0.1 ms at 640x480 against 2 ms via convertToFormat)
        size = (image.width(), image.height())
        return Image.frombuffer("RGB", size, image.constBits(), "raw", "BGRX", image.bytesPerLine(), 1)
    has_alpha = image.hasAlphaChannel()
    fmt = QImage.Format.Format_RGBA8888 if has_alpha else QImage.Format.Format_RGB888
    img = image.convertToFormat(fmt)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    mode = "RGBA" if has_alpha else "RGB"
    # copy: the PIL image must not point into the QImage's buffer once that is freed
    data = bytes(img.constBits())[: stride * h]
    return to_rgb(Image.frombuffer(mode, (w, h), data, "raw", mode, stride, 1).copy())
