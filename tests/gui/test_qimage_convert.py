"""qimage_to_pil: the same pixels as Pillow gives for the same picture, whatever the QImage format."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QColor, QImage

from squeezelens.core.images import to_rgb
from squeezelens.gui.qimage_convert import qimage_to_pil


def qimage_from_array(arr: np.ndarray, fmt: QImage.Format) -> QImage:
    """A QImage that owns a copy of ``arr`` (H x W x C uint8, or H x W for one channel)."""
    h, w = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    data = np.ascontiguousarray(arr).tobytes()
    return QImage(data, w, h, w * channels, fmt).copy()


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (13, 3), (64, 33)])  # odd widths: padded scan lines
def test_rgb_pixels_exact(size: tuple[int, int]) -> None:
    w, h = size
    arr = np.random.default_rng(w * 100 + h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    qimg = qimage_from_array(arr, QImage.Format.Format_RGB888)
    if (w * 3) % 4:
        assert qimg.bytesPerLine() > w * 3  # Qt pads each scan line to 4 bytes
    out = qimage_to_pil(qimg)
    assert out.mode == "RGB" and out.size == (w, h)
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_rgb32_format() -> None:
    arr = np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    qimg = qimage_from_array(arr, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)
    assert qimg.bytesPerLine() == 11 * 4
    out = qimage_to_pil(qimg)
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_rgba_composited_over_white_like_core() -> None:
    rng = np.random.default_rng(5)
    arr = rng.integers(0, 256, (17, 23, 4), dtype=np.uint8)
    arr[0, 0, 3] = 0  # fully transparent: white
    arr[0, 1, 3] = 255  # opaque: its own colour
    qimg = qimage_from_array(arr, QImage.Format.Format_RGBA8888)
    out = qimage_to_pil(qimg)
    expected = to_rgb(Image.fromarray(arr, "RGBA"))
    assert out.mode == "RGB" and out.size == (23, 17)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    assert np.asarray(out)[0, 0].tolist() == [255, 255, 255]
    assert np.asarray(out)[0, 1].tolist() == arr[0, 1, :3].tolist()


def test_argb32_is_read_as_straight_alpha() -> None:
    qimg = QImage(3, 2, QImage.Format.Format_ARGB32)
    qimg.fill(QColor(255, 0, 0, 128))  # half-transparent red
    out = np.asarray(qimage_to_pil(qimg))
    expected = np.asarray(to_rgb(Image.new("RGBA", (3, 2), (255, 0, 0, 128))))
    np.testing.assert_array_equal(out, expected)
    assert out[0, 0].tolist() == [255, 127, 127]


def test_premultiplied_alpha() -> None:
    qimg = QImage(4, 4, QImage.Format.Format_ARGB32_Premultiplied)
    qimg.fill(QColor(0, 0, 255, 0))  # invisible: white after compositing
    assert np.asarray(qimage_to_pil(qimg)).tolist() == [[[255, 255, 255]] * 4] * 4
    qimg.fill(QColor(0, 0, 255, 255))
    assert np.asarray(qimage_to_pil(qimg))[0, 0].tolist() == [0, 0, 255]


@pytest.mark.parametrize("width", [5, 8])
def test_grayscale(width: int) -> None:
    arr = np.random.default_rng(width).integers(0, 256, (6, width), dtype=np.uint8)
    qimg = qimage_from_array(arr, QImage.Format.Format_Grayscale8)
    out = qimage_to_pil(qimg)
    expected = Image.fromarray(arr, "L").convert("RGB")
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))


def test_indexed() -> None:
    colours = [QColor(255, 0, 0).rgb(), QColor(0, 128, 0).rgb(), QColor(10, 20, 30).rgb()]
    qimg = QImage(7, 3, QImage.Format.Format_Indexed8)
    qimg.setColorTable(colours)
    indices = np.random.default_rng(0).integers(0, 3, (3, 7))
    for y in range(3):
        for x in range(7):
            qimg.setPixel(x, y, int(indices[y, x]))
    out = np.asarray(qimage_to_pil(qimg))
    table = np.array([[255, 0, 0], [0, 128, 0], [10, 20, 30]], dtype=np.uint8)
    np.testing.assert_array_equal(out, table[indices])


def test_indexed_with_transparent_entry() -> None:
    qimg = QImage(3, 1, QImage.Format.Format_Indexed8)
    qimg.setColorTable([QColor(0, 0, 0, 0).rgba(), QColor(0, 0, 200).rgba()])
    qimg.setPixel(0, 0, 0)
    qimg.setPixel(1, 0, 1)
    qimg.setPixel(2, 0, 0)
    out = np.asarray(qimage_to_pil(qimg))
    assert out.tolist() == [[[255, 255, 255], [0, 0, 200], [255, 255, 255]]]


def test_result_outlives_the_qimage() -> None:
    qimg = QImage(9, 9, QImage.Format.Format_RGB888)
    qimg.fill(QColor(1, 2, 3))
    out = qimage_to_pil(qimg)
    qimg.fill(QColor(200, 200, 200))  # the PIL copy must not see this
    del qimg
    assert np.asarray(out)[4, 4].tolist() == [1, 2, 3]


def test_null_image_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        qimage_to_pil(QImage())
