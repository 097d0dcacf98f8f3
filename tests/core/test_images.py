"""Tests for squeezelens.core.images: reading image files into proper RGB pictures."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from PIL import Image

from squeezelens.core import images
from squeezelens.core.errors import ImageLoadError, SqueezeLensError
from squeezelens.core.images import (
    MAX_PIXELS,
    MAX_SIDE,
    _draft_size,
    expand_inputs,
    image_extensions,
    iter_image_files,
    open_image,
    to_rgb,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# --------------------------------------------------------------------------------------------- helpers


def px(img: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    return tuple(int(v) for v in img.getpixel(xy))


def assert_close(actual, expected, tol: int) -> None:
    assert len(actual) == len(expected)
    assert all(abs(int(a) - int(e)) <= tol for a, e in zip(actual, expected, strict=True)), (actual, expected)


def two_colour(size=(16, 12), left=RED, right=BLUE) -> Image.Image:
    """Left half one colour, right half another: catches flips and channel swaps."""
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = left
    arr[:, w // 2 :] = right
    return Image.fromarray(arr, "RGB")


def noise(size=(64, 64), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny but well-formed PNG header (correct CRCs) that claims width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3)  # one filtered pixel; never decoded
    head = b"\x89PNG\r\n\x1a\n"
    return head + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def load_error(path) -> str:
    with pytest.raises(ImageLoadError) as info:
        open_image(path)
    return str(info.value)


# --------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("ext", "fmt", "save_kw", "tol"),
    [
        (".jpg", "JPEG", {"quality": 95}, 12),
        (".png", "PNG", {}, 0),
        (".webp", "WEBP", {"lossless": True}, 0),
        (".bmp", "BMP", {}, 0),
        (".gif", "GIF", {}, 0),
        (".tif", "TIFF", {}, 0),
    ],
)
def test_formats_load_as_rgb(tmp_path, ext, fmt, save_kw, tol):
    path = tmp_path / f"pic{ext}"
    two_colour().save(path, fmt, **save_kw)
    img = open_image(path)
    assert img.mode == "RGB"
    assert img.size == (16, 12)
    assert_close(px(img, (2, 6)), RED, tol)
    assert_close(px(img, (13, 6)), BLUE, tol)


def test_lossy_webp_loads(tmp_path):
    path = tmp_path / "pic.webp"
    two_colour().save(path, "WEBP", quality=90)
    img = open_image(path)
    assert (img.mode, img.size) == ("RGB", (16, 12))
    assert_close(px(img, (2, 6)), RED, 40)


def test_animated_gif_gives_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    first = Image.new("RGB", (10, 8), RED)
    second = Image.new("RGB", (10, 8), BLUE)
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 2  # really animated
    img = open_image(path)
    assert (img.mode, img.size) == ("RGB", (10, 8))
    assert px(img, (5, 4)) == RED


def test_multipage_tiff_gives_first_page(tmp_path):
    path = tmp_path / "pages.tif"
    first = Image.new("RGB", (10, 8), GREEN)
    second = Image.new("RGB", (12, 6), BLUE)
    first.save(path, save_all=True, append_images=[second])
    with Image.open(path) as check:
        assert check.n_frames == 2
    img = open_image(path)
    assert (img.mode, img.size) == ("RGB", (10, 8))
    assert px(img, (5, 4)) == GREEN


def test_image_extensions_cover_common_formats():
    exts = image_extensions()
    for ext in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"):
        assert ext in exts
    assert ".txt" not in exts
    assert all(e == e.lower() and e.startswith(".") for e in exts)


# --------------------------------------------------------------------------------------------- EXIF


def exif_jpeg(path: Path, orientation: int) -> None:
    """A 40x20 JPEG, blue with a red 10x10 block in the stored top-left corner."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:] = BLUE
    arr[:10, :10] = RED
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr, "RGB").save(path, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize(
    ("orientation", "size", "red_at", "blue_at"),
    [
        (1, (40, 20), (4, 4), (35, 15)),
        (3, (40, 20), (35, 15), (4, 4)),  # rotated 180: red block bottom right
        (6, (20, 40), (15, 4), (4, 35)),  # rotated 90 clockwise: red block top right
        (8, (20, 40), (4, 35), (15, 4)),  # rotated 90 anticlockwise: red block bottom left
    ],
)
def test_exif_orientation_applied(tmp_path, orientation, size, red_at, blue_at):
    path = tmp_path / "rot.jpg"
    exif_jpeg(path, orientation)
    img = open_image(path)
    assert img.mode == "RGB"
    assert img.size == size
    assert_close(px(img, red_at), RED, 30)
    assert_close(px(img, blue_at), BLUE, 30)


def test_exif_orientation_applied_with_fast_decode(tmp_path):
    path = tmp_path / "rot.jpg"
    exif_jpeg(path, 6)
    img = open_image(path, fast_min_side=8)  # small enough that a reduced scale could apply
    assert img.mode == "RGB"
    w, h = img.size
    assert h > w and min(w, h) >= 8
    assert_close(px(img, (w - 2, 1)), RED, 40)


# --------------------------------------------------------------------------------------------- modes


def test_rgb_is_returned_unchanged():
    img = Image.new("RGB", (3, 2), (1, 2, 3))
    assert to_rgb(img) is img


def test_mode_L():
    img = Image.fromarray(np.array([[0, 77, 255]], np.uint8), "L")
    out = to_rgb(img)
    assert out.mode == "RGB"
    assert [px(out, (i, 0)) for i in range(3)] == [(0, 0, 0), (77, 77, 77), WHITE]


def test_mode_L_with_transparency_from_png(tmp_path):
    path = tmp_path / "gray_trns.png"
    img = Image.fromarray(np.array([[5, 7]], np.uint8), "L")
    img.save(path, transparency=7)
    out = open_image(path)
    assert out.mode == "RGB"
    assert px(out, (0, 0)) == (5, 5, 5)
    assert px(out, (1, 0)) == WHITE


def test_mode_LA():
    arr = np.array([[[100, 0], [100, 255], [0, 128]]], np.uint8)
    out = to_rgb(Image.fromarray(arr, "LA"))
    assert out.mode == "RGB"
    assert px(out, (0, 0)) == WHITE  # fully transparent
    assert px(out, (1, 0)) == (100, 100, 100)  # opaque
    assert_close(px(out, (2, 0)), (127, 127, 127), 1)  # black at half alpha over white


def test_mode_P_with_transparency(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.putpixel((2, 0), 2)
    img.info["transparency"] = 1  # green is the transparent index

    out = to_rgb(img)
    assert out.mode == "RGB"
    assert [px(out, (i, 0)) for i in range(3)] == [RED, WHITE, BLUE]

    path = tmp_path / "pal.png"
    img.save(path, transparency=1)
    with Image.open(path) as check:
        assert check.mode == "P"
    out = open_image(path)
    assert out.mode == "RGB"
    assert [px(out, (i, 0)) for i in range(3)] == [RED, WHITE, BLUE]


def test_mode_P_without_transparency():
    img = Image.new("P", (2, 1))
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6))
    img.putpixel((1, 0), 1)
    out = to_rgb(img)
    assert out.mode == "RGB"
    assert [px(out, (0, 0)), px(out, (1, 0))] == [(10, 20, 30), (200, 100, 50)]


def test_mode_RGB_with_transparent_colour_key(tmp_path):
    # an RGB PNG with a tRNS chunk: pixels of the key colour are transparent
    path = tmp_path / "rgb_trns.png"
    img = Image.new("RGB", (2, 1), (10, 20, 30))
    img.putpixel((1, 0), (1, 2, 3))
    img.save(path, transparency=(1, 2, 3))
    out = open_image(path)
    assert out.mode == "RGB"
    assert px(out, (0, 0)) == (10, 20, 30)
    assert px(out, (1, 0)) == WHITE


def test_mode_RGBA(tmp_path):
    arr = np.array([[[255, 0, 0, 255], [0, 255, 0, 0], [255, 0, 0, 128], [0, 0, 0, 128]]], np.uint8)
    img = Image.fromarray(arr, "RGBA")
    for out in (to_rgb(img), open_image(_saved(img, tmp_path / "rgba.png"))):
        assert out.mode == "RGB"
        assert px(out, (0, 0)) == RED
        assert px(out, (1, 0)) == WHITE  # alpha 0: colour underneath ignored
        assert_close(px(out, (2, 0)), (255, 127, 127), 1)  # half red over white
        assert_close(px(out, (3, 0)), (127, 127, 127), 1)  # half black over white


def _saved(img: Image.Image, path: Path) -> Path:
    img.save(path)
    return path


def test_mode_CMYK(tmp_path):
    arr = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [0, 255, 255, 0]]], np.uint8)
    img = Image.fromarray(arr, "CMYK")
    expected = [WHITE, (0, 255, 255), (0, 0, 0), RED]
    for out in (to_rgb(img), open_image(_saved(img, tmp_path / "cmyk.tif"))):
        assert out.mode == "RGB"
        assert [px(out, (i, 0)) for i in range(4)] == expected


def test_mode_CMYK_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    out = open_image(path)
    assert out.mode == "RGB"
    assert_close(px(out, (4, 4)), RED, 12)


def test_mode_I16_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 257, 32896, 65535]], np.uint16)
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    path = _saved(img, tmp_path / "deep.png")
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    for out in (to_rgb(img), open_image(path)):
        assert out.mode == "RGB"
        values = [px(out, (i, 0)) for i in range(4)]
        assert values[0] == (0, 0, 0)
        assert values[1] == (1, 1, 1)
        assert_close(values[2], (128, 128, 128), 1)
        assert values[3] == WHITE


def test_mode_I16_dark_image_still_scaled():
    # every value fits in 8 bits, but I;16 means 16-bit range: stays dark instead of looking bright
    img = Image.fromarray(np.array([[0, 200, 255]], np.uint16))
    out = to_rgb(img)
    assert [px(out, (i, 0))[0] for i in range(3)] == [0, 0, 0]


def test_mode_I32():
    small = Image.fromarray(np.array([[0, 100, 255]], np.int32))
    assert small.mode == "I"
    out = to_rgb(small)
    assert out.mode == "RGB"
    assert [px(out, (i, 0)) for i in range(3)] == [(0, 0, 0), (100, 100, 100), WHITE]

    wide = Image.fromarray(np.array([[0, 32896, 65535, -5]], np.int32))
    out = to_rgb(wide)
    assert out.mode == "RGB"
    assert [px(out, (i, 0))[0] for i in range(4)] == [0, 128, 255, 0]


def test_mode_F_unit_range_scaled():
    img = Image.fromarray(np.array([[0.0, 0.25, 0.5, 1.0]], np.float32))
    assert img.mode == "F"
    out = to_rgb(img)
    assert out.mode == "RGB"
    assert [px(out, (i, 0))[0] for i in range(4)] == [0, 64, 128, 255]
    assert px(out, (2, 0)) == (128, 128, 128)


def test_mode_F_wide_range_and_non_finite():
    img = Image.fromarray(np.array([[0.0, 100.0, 300.0, np.nan, -np.inf]], np.float32))
    out = to_rgb(img)
    assert out.mode == "RGB"
    assert [px(out, (i, 0))[0] for i in range(5)] == [0, 100, 255, 0, 0]


def test_mode_1_bilevel(tmp_path):
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    for out in (to_rgb(img), open_image(_saved(img, tmp_path / "bits.png"))):
        assert out.mode == "RGB"
        assert px(out, (0, 0)) == (0, 0, 0)
        assert px(out, (1, 0)) == WHITE


def test_mode_YCbCr():
    img = Image.new("RGB", (2, 2), RED).convert("YCbCr")
    out = to_rgb(img)
    assert out.mode == "RGB"
    assert_close(px(out, (0, 0)), RED, 3)


# --------------------------------------------------------------------------------------------- bad inputs


def test_error_is_a_squeezelens_error():
    assert issubclass(ImageLoadError, SqueezeLensError)


def test_missing_file(tmp_path):
    msg = load_error(tmp_path / "nope.jpg")
    assert "not found" in msg
    assert "nope.jpg" in msg


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    msg = load_error(path)
    assert "empty" in msg
    assert "empty.png" in msg


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is a shopping list, not a photo\n" * 10)
    msg = load_error(path)
    assert "not an image" in msg
    assert "notes.jpg" in msg


@pytest.mark.parametrize(("ext", "fmt"), [(".jpg", "JPEG"), (".png", "PNG")])
def test_truncated_file(tmp_path, ext, fmt):
    whole = tmp_path / f"whole{ext}"
    noise(seed=1).save(whole, fmt)
    data = whole.read_bytes()
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) // 2])
    msg = load_error(path)
    assert "damaged or truncated" in msg
    assert f"cut{ext}" in msg


def test_directory(tmp_path):
    folder = tmp_path / "holiday.jpg"
    folder.mkdir()
    msg = load_error(folder)
    assert "folder" in msg


def test_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    two_colour().save(path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(PIL.Image, "open", refuse)
    msg = load_error(path)
    assert "permission denied" in msg
    assert "locked.png" in msg


def test_absurd_size_png_refused(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(100_000, 100_000))
    msg = load_error(path)
    assert "too large" in msg


def test_just_above_max_pixels_refused(tmp_path):
    w, h = 20_000, MAX_PIXELS // 20_000 + 1  # a little over the limit, under twice it
    assert MAX_PIXELS < w * h < 2 * MAX_PIXELS and max(w, h) <= MAX_SIDE
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(w, h))
    msg = load_error(path)
    assert "too large" in msg


def test_too_long_a_side_refused(tmp_path):
    path = tmp_path / "strip.png"
    path.write_bytes(png_claiming(MAX_SIDE + 1, 1))
    msg = load_error(path)
    assert "too large" in msg
    assert str(MAX_SIDE) in msg


def test_crafted_png_header_is_valid(tmp_path):
    # the size tests above must be refused for their size, not for a bad header
    path = tmp_path / "ok.png"
    path.write_bytes(png_claiming(1, 1))
    img = open_image(path)
    assert (img.mode, img.size) == ("RGB", (1, 1))
    assert px(img, (0, 0)) == (0, 0, 0)


# --------------------------------------------------------------------------------------------- fast decode


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory) -> Path:
    w, h = 4000, 3000
    rng = np.random.default_rng(7)
    x = np.linspace(0, 255, w, dtype=np.float32)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    base = np.empty((h, w, 3), np.float32)
    base[..., 0] = x
    base[..., 1] = y
    base[..., 2] = (x + y) / 2
    base += rng.normal(0, 12, (h, w, 1)).astype(np.float32)
    arr = np.clip(base, 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("fast") / "big.jpg"
    Image.fromarray(arr, "RGB").save(path, "JPEG", quality=90)
    return path


def test_fast_decode_uses_reduced_scale(big_jpeg):
    fast = open_image(big_jpeg, fast_min_side=256)
    assert fast.mode == "RGB"
    w, h = fast.size
    assert 256 <= min(w, h) <= 3000 // 4
    assert (w, h) == (500, 375)  # 1/8 DCT scale
    assert abs(w / h - 4 / 3) < 0.01

    full = open_image(big_jpeg)
    assert full.size == (4000, 3000)
    assert full.mode == "RGB"

    # same picture: the reduced decode matches the full one shrunk to the same size
    shrunk = np.asarray(full.resize(fast.size, Image.BOX), np.float32)
    diff = np.abs(np.asarray(fast, np.float32) - shrunk)
    assert diff.mean() < 6


def test_fast_decode_none_and_zero_give_full_size(big_jpeg):
    assert open_image(big_jpeg, fast_min_side=None).size == (4000, 3000)
    assert open_image(big_jpeg, fast_min_side=0).size == (4000, 3000)


def test_fast_decode_keeps_min_side_for_larger_requests(big_jpeg):
    img = open_image(big_jpeg, fast_min_side=600)
    assert img.size == (1000, 750)  # 1/4 scale: 1/8 would give 375 < 600
    img = open_image(big_jpeg, fast_min_side=3000)
    assert img.size == (4000, 3000)


def test_fast_decode_ignored_for_png(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (1200, 900), (20, 40, 60)).save(path)
    img = open_image(path, fast_min_side=64)
    assert img.size == (1200, 900)
    assert px(img, (600, 450)) == (20, 40, 60)


def test_fast_decode_small_jpeg_stays_full_size(tmp_path):
    path = tmp_path / "small.jpg"
    two_colour((200, 100)).save(path, quality=95)
    assert open_image(path, fast_min_side=256).size == (200, 100)


def test_fast_decode_grayscale_jpeg(tmp_path):
    path = tmp_path / "gray.jpg"
    Image.new("L", (800, 640), 90).save(path, quality=95)
    img = open_image(path, fast_min_side=100)
    assert img.mode == "RGB"
    assert img.size == (200, 160)  # 1/4 scale: 1/8 would give 80 < 100
    assert_close(px(img, (10, 10)), (90, 90, 90), 3)


def test_fast_decode_picks_smallest_scale_at_exact_boundary(tmp_path):
    # shorter side exactly 8 x 224: the 1/8 scale gives exactly 224 and must be chosen
    path = tmp_path / "edge.jpg"
    Image.new("RGB", (2389, 1792), (200, 30, 30)).save(path, quality=80)
    img = open_image(path, fast_min_side=224)
    assert img.size == (299, 224)


@pytest.mark.parametrize(
    ("size", "min_side"),
    [
        ((4000, 3000), 256),
        ((3000, 4000), 256),
        ((4000, 3000), 224),
        ((2389, 1792), 224),
        ((2049, 2048), 256),
        ((1000, 1000), 300),
        ((333, 777), 224),
        ((100, 50), 256),  # smaller than asked: upscaled request, which draft ignores
        ((7, 3), 1),
    ],
)
def test_draft_size_keeps_aspect_and_min_side(size, min_side):
    w, h = size
    dw, dh = _draft_size(size, min_side)
    assert min(dw, dh) == min_side
    assert (dw >= dh) == (w >= h)
    assert abs(dw / dh - w / h) <= 1 / min(dw, dh) + 1e-9 * (w / h)


@pytest.mark.parametrize("min_side", [224, 256, 299])
@pytest.mark.parametrize("short", [447, 448, 449, 895, 896, 897, 1791, 1792, 1795, 2000])
@pytest.mark.parametrize("aspect", [1.0, 4 / 3, 16 / 9])
def test_draft_size_lets_pillow_pick_the_smallest_scale(min_side, short, aspect):
    # Pillow's JPEG draft picks scale = min(W // w, H // h) rounded down to 8, 4, 2 or 1; the
    # request must not be a pixel too big, or it loses a whole scale step
    size = (round(short * aspect), short)
    req = _draft_size(size, min_side)
    scale = min(size[0] // req[0], size[1] // req[1])
    best = short // min_side
    assert scale == best


# --------------------------------------------------------------------------------------------- open PIL image


def test_open_image_accepts_open_pil_image():
    arr = np.array([[[0, 0, 255, 255], [0, 0, 0, 0]]], np.uint8)
    src = Image.fromarray(arr, "RGBA")
    out = open_image(src)
    assert out.mode == "RGB"
    assert out.size == (2, 1)
    assert px(out, (0, 0)) == BLUE
    assert px(out, (1, 0)) == WHITE
    assert src.mode == "RGBA"  # the caller's image is left alone


def test_open_image_pil_image_gets_exif_transposed(tmp_path):
    path = tmp_path / "rot.jpg"
    exif_jpeg(path, 6)
    with Image.open(path) as src:
        out = open_image(src)
    assert out.mode == "RGB"
    assert out.size == (20, 40)


def test_open_image_pil_image_broken_decode(tmp_path):
    whole = tmp_path / "whole.jpg"
    noise(seed=2).save(whole, "JPEG")
    data = whole.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with Image.open(cut) as src, pytest.raises(ImageLoadError, match="damaged or truncated image"):
        open_image(src)


def test_open_image_accepts_str_path(tmp_path):
    path = tmp_path / "p.png"
    two_colour().save(path)
    assert open_image(str(path)).size == (16, 12)


# --------------------------------------------------------------------------------------------- folders


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_iter_image_files_walks_sorted_skipping_hidden_and_non_images(tmp_path):
    root = tmp_path / "photos"
    for rel in [
        "b.png",
        "a.JPG",
        "c.txt",
        "notes.md",
        ".hidden.jpg",
        "sub2/z.webp",
        "sub1/y.gif",
        "sub1/x.tif",
        "sub1/deeper/w.bmp",
        "sub1/deeper/readme",
        "aa/zz.png",
        ".secret/v.png",
        "sub1/.cache/u.png",
        "empty/",
    ]:
        if rel.endswith("/"):
            (root / rel).mkdir(parents=True)
        else:
            touch(root / rel)
    found = [p.relative_to(root).as_posix() for p in iter_image_files(root)]
    # sorted by path, folder by folder: a sub-folder sorts among the files by its name
    assert found == [
        "a.JPG",
        "aa/zz.png",
        "b.png",
        "sub1/deeper/w.bmp",
        "sub1/x.tif",
        "sub1/y.gif",
        "sub2/z.webp",
    ]
    assert all(isinstance(p, Path) for p in iter_image_files(root))


def test_expand_inputs_folders_and_files_in_order(tmp_path):
    folder = tmp_path / "album"
    touch(folder / "2.png")
    touch(folder / "1.jpg")
    touch(folder / "inner" / "3.gif")
    first = touch(tmp_path / "first.jpg")
    last = touch(tmp_path / "last.bmp")
    missing = tmp_path / "missing.png"

    out = expand_inputs([first, str(folder), missing, last])
    assert out == [first, folder / "1.jpg", folder / "2.png", folder / "inner" / "3.gif", missing, last]
    assert all(isinstance(p, Path) for p in out)


def test_expand_inputs_plain_files_pass_through_in_order(tmp_path):
    paths = [tmp_path / "c.jpg", tmp_path / "a.txt", tmp_path / "b.png"]
    assert expand_inputs(paths) == paths
    assert expand_inputs([str(p) for p in paths]) == paths
    assert expand_inputs([]) == []


def test_expand_inputs_empty_folder_gives_one_error(tmp_path):
    empty = tmp_path / "nothing here"
    empty.mkdir()
    touch(empty / "readme.txt")
    touch(empty / ".hidden.jpg")
    touch(empty / ".thumbs" / "a.jpg")
    other = touch(tmp_path / "x.jpg")

    out = expand_inputs([empty, other])
    assert len(out) == 2
    assert isinstance(out[0], ImageLoadError)
    assert "no images found" in str(out[0])
    assert "nothing here" in str(out[0])
    assert out[1] == other


def test_folder_to_pixels_end_to_end(tmp_path):
    two_colour().save(tmp_path / "a.png")
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "b.png")
    (tmp_path / "c.jpg").write_text("not really")
    results = []
    for item in expand_inputs([tmp_path]):
        try:
            results.append(px(open_image(item), (0, 0)))
        except ImageLoadError as e:
            results.append(str(e))
    assert results[0] == RED
    assert results[1] == WHITE
    assert "not an image" in results[2]


def test_module_limits_are_sane():
    assert images.MAX_PIXELS == MAX_PIXELS <= 2 * Image.MAX_IMAGE_PIXELS  # never above Pillow's own refusal
    assert MAX_SIDE < 65_536


def test_elongated_images_refused_before_decoding(tmp_path: Path) -> None:
    from squeezelens.core.images import MAX_ASPECT

    strip = tmp_path / "strip.png"
    Image.new("L", (16000, 1)).save(strip)
    with pytest.raises(ImageLoadError, match="too elongated"):
        open_image(strip)
    ok = tmp_path / "panorama.png"
    Image.new("L", (MAX_ASPECT * 2, 2)).save(ok)
    assert open_image(ok).size == (MAX_ASPECT * 2, 2)
    with pytest.raises(ImageLoadError, match="too elongated"):
        open_image(Image.new("RGB", (40000, 1)))  # PIL inputs (paste, camera) pass the same guard
    with pytest.raises(ImageLoadError, match="too large"):
        open_image(Image.new("1", (20000, 10001)))


def test_mpo_phone_jpegs_take_the_fast_path(tmp_path: Path) -> None:
    from PIL import MpoImagePlugin  # noqa: F401  registers MPO saving

    frames = [Image.new("RGB", (3000, 2000), (200, 30, 30)), Image.new("RGB", (3000, 2000), (30, 200, 30))]
    path = tmp_path / "phone.jpg"
    frames[0].save(path, format="MPO", save_all=True, append_images=frames[1:])
    with Image.open(path) as im:
        assert im.format == "MPO"
    img = open_image(path, fast_min_side=256)
    assert img.size == (750, 500)  # 1/4 scale: 1/8 would leave the short side under 256
    assert img.getpixel((10, 10))[0] > 150  # the first picture


def test_folder_walk_skips_non_photo_formats(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    for name in ("clip.mpg", "data.h5", "figure.eps", "drawing.wmf", "weather.grib"):
        (tmp_path / name).write_bytes(b"\0" * 16)
    assert [p.name for p in iter_image_files(tmp_path)] == ["a.png"]
    eps = tmp_path / "figure.eps"
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ImageLoadError, match="not an image"):
        open_image(eps)  # never handed to Ghostscript


def test_dataset_scan_and_loader_share_one_header_check(tmp_path: Path) -> None:
    """check_image_header (the finetune scan's) refuses what open_image refuses before decoding, for
    the same reason, and keeps the path out of the reason."""
    from squeezelens.core.images import check_image_header

    good = tmp_path / "good.png"
    two_colour().save(good)
    files = {
        "empty.png": b"",
        "fake.jpg": b"this is text, not a JPEG",
        "huge.png": png_claiming(MAX_SIDE + 1, 1),
        "bomb.png": png_claiming(20_000, MAX_PIXELS // 20_000 + 1),
        "figure.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    Image.new("L", (16000, 1)).save(tmp_path / "strip.png")
    (tmp_path / "folder.png").mkdir()
    check_image_header(good)
    reasons = {}
    for name in [*files, "strip.png", "folder.png", "missing.png"]:
        path = tmp_path / name
        with pytest.raises(ImageLoadError) as scanned:
            check_image_header(path)
        with pytest.raises(ImageLoadError) as loaded:
            open_image(path)
        assert scanned.value.reason == loaded.value.reason, name
        assert scanned.value.path == loaded.value.path == str(path)
        assert str(tmp_path) not in scanned.value.reason
        reasons[name] = scanned.value.reason
    assert reasons["empty.png"] == "empty file"
    assert reasons["missing.png"] == "file not found"
    assert reasons["folder.png"] == "is a folder, not an image"
    assert "not an image" in reasons["fake.jpg"] and "not an image" in reasons["figure.eps"]
    assert reasons["huge.png"].startswith("image too large") and "decompression bomb" in reasons["bomb.png"]
    assert "too elongated" in reasons["strip.png"]


def test_header_check_verifies_png_checksums_without_decoding(tmp_path: Path) -> None:
    """A PNG with a damaged chunk passes Image.open; the header check still refuses it, as a broken image."""
    from squeezelens.core.images import check_image_header

    data = bytearray(png_claiming(4, 4))
    data[-13] ^= 0xFF  # the IDAT chunk's checksum (IEND is the last 12 bytes)
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageLoadError, match="damaged or truncated image") as info:
        check_image_header(path)
    assert info.value.path == str(path)
