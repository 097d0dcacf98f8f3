"""Reading any image file Pillow understands into a proper RGB picture.

One input, one result: a file that cannot be used raises :class:`ImageLoadError` with a reason for
a person. Every file goes through one header check, :func:`open_checked` (format allow-list, size
limits, decompression-bomb guard, one error reason per failure), which both the loader
(:func:`open_image`) and the finetune dataset scan (:func:`check_image_header`) use. Nothing here
knows about models except the size the model will shrink to, which the JPEG fast path uses to
decode at a reduced scale.
"""

from __future__ import annotations

import errno
import os
import struct
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, UnidentifiedImageError

from .errors import ImageLoadError

#: Largest picture accepted, in pixels (about 16k x 12k). Far above any camera, far below a bomb.
MAX_PIXELS = 200_000_000
#: Largest side accepted, in pixels: under 65,536, the most a JPEG header (16-bit fields) can state.
MAX_SIDE = 65_500
#: Longest side over shortest side. The eval transform scales the *shorter* side up or down to
#: ~256 px, so a 16000x1 strip would become a 4-gigapixel resize; 500:1 keeps it under 130k px.
MAX_ASPECT = 500
#: Raster photo formats we open; Pillow also registers video, HDF5, GRIB, EPS (Ghostscript) and
#: vector metafiles, which are not photos and must not be handed to outside programs.
#: (Multi-picture JPEGs from phones open through the JPEG entry as MPO.)
RASTER_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "GIF", "TIFF", "PPM", "TGA", "ICO",
                  "JPEG2000", "QOI", "AVIF", "HEIF", "SGI", "PCX")

# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; the same limit as ours means it
# never prints a DecompressionBomb warning for what our guard lets through (open_checked makes the
# warning an error for what it does not).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _raster_formats() -> tuple[str, ...]:
    """RASTER_FORMATS that this Pillow build can open (optional plugins may be missing)."""
    Image.init()
    return tuple(f for f in RASTER_FORMATS if f in Image.OPEN)


def image_extensions() -> frozenset[str]:
    """File endings of the raster formats Pillow can open here (lower case, with the dot)."""
    exts = {ext for ext, fmt in Image.registered_extensions().items()
            if fmt in RASTER_FORMATS and fmt in Image.OPEN}
    return frozenset(exts)


def check_size(w: int, h: int, name: str) -> None:
    """Refuse pictures too large to decode or too elongated to resize safely.

    Args:
        w: width in pixels (from the header: nothing need be decoded).
        h: height in pixels.
        name: the file (or image) the size is of, for the error's ``path``.

    Raises:
        ImageLoadError: no pixels; more than :data:`MAX_PIXELS` pixels or a side over
            :data:`MAX_SIDE`; or longer than :data:`MAX_ASPECT` times its shorter side.
    """
    if w <= 0 or h <= 0:
        raise ImageLoadError(f"image has no pixels ({w}x{h})", name)
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise ImageLoadError(
            f"image too large ({w}x{h} pixels; the limit is "
            f"{MAX_PIXELS // 1_000_000} megapixels and {MAX_SIDE} pixels a side)", name,
        )
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise ImageLoadError(f"image too elongated to classify ({w}x{h}; at most {MAX_ASPECT}:1)", name)


def iter_image_files(folder: Path) -> Iterator[Path]:
    """Image files below ``folder``, recursively, sorted by path; hidden entries skipped."""
    exts = image_extensions()
    found: list[tuple[tuple[str, ...], Path]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in exts:
                path = Path(root) / name
                found.append((path.relative_to(folder).parts, path))
    for _, path in sorted(found):
        yield path


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path | ImageLoadError]:
    """Folders become their image files; a folder with none becomes one error for that folder."""
    out: list[Path | ImageLoadError] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = list(iter_image_files(path))
            if found:
                out.extend(found)
            else:
                out.append(ImageLoadError("no images found in folder", str(path)))
        else:
            out.append(path)
    return out


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparent pixels land on white."""
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode == "RGB":  # colour-key transparency (PNG tRNS)
        return to_rgb(img.convert("RGBA"))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_rgb(img)
    if mode == "L" and "transparency" in img.info:
        return to_rgb(img.convert("LA"))
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float images scaled to 0..255 instead of clipped."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        finite = np.isfinite(arr)
        arr = np.where(finite, arr, 0.0)
        # floats in 0..1 are the common convention; anything larger is taken as 0..255
        scale = 255.0 if finite.any() and arr[finite].max() <= 1.0 else 1.0
        arr8 = np.clip(arr * scale, 0, 255).round().astype(np.uint8)
    else:
        arr = arr.astype(np.int64)
        if arr.size and (arr.max() > 255 or img.mode.startswith("I;16")):
            arr8 = np.clip(arr // 257, 0, 255).astype(np.uint8)  # 16-bit range
        else:
            arr8 = np.clip(arr, 0, 255).astype(np.uint8)
    if arr8.ndim == 3:  # multi-channel 16-bit (rare in Pillow); keep the first three
        arr8 = arr8[..., :3]
        return Image.fromarray(np.ascontiguousarray(arr8), "RGB")
    return Image.fromarray(arr8, "L").convert("RGB")


def _draft_size(size: tuple[int, int], min_side: int) -> tuple[int, int]:
    """Requested draft size whose shorter side is at least ``min_side`` (aspect kept)."""
    # Integer maths, shorter side exactly min_side, longer side rounded down: a request one pixel
    # too big (float error, or ceil) makes Pillow's draft fall back to the next larger DCT scale.
    w, h = size
    if w <= h:
        return min_side, max(min_side, h * min_side // w)
    return max(min_side, w * min_side // h), min_side


def open_image(source: str | os.PathLike[str] | Image.Image, fast_min_side: int | None = None) -> Image.Image:
    """Read one image as RGB with EXIF orientation applied.

    Args:
        source: a path, or an already opened PIL image.
        fast_min_side: when set, JPEGs are decoded at the smallest DCT scale whose shorter side is
            still at least this many pixels (Pillow's ``draft``); ``None`` decodes full size.

    Returns:
        An ``RGB`` image, upright, of the file's own size (or, with ``fast_min_side``, a JPEG scaled
        down by 1/2, 1/4 or 1/8).

    Raises:
        ImageLoadError: missing, unreadable, empty, truncated, not an image, or too large; ``path`` is
            the file (or a PIL image's ``filename``, else ``"image"``).
    """
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or "image"
        w, h = source.size
        check_size(w, h, name)
        try:
            return to_rgb(ImageOps.exif_transpose(source))
        except Exception as e:  # a lazily decoded PIL image can still fail here
            raise ImageLoadError(f"image could not be decoded ({e})", name) from e
    with open_checked(source) as im:
        im.seek(0)  # first frame of a GIF, first page of a TIFF
        if fast_min_side and isinstance(im, JpegImagePlugin.JpegImageFile):  # JPEG and MPO
            im.draft("RGB", _draft_size(im.size, fast_min_side))
        im.load()
        return to_rgb(ImageOps.exif_transpose(im))


@contextmanager
def open_checked(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    """Open an image file lazily, once its header shows a usable picture; the one check for all files.

    Before any pixel is decoded: not a folder, not empty, a format of :data:`RASTER_FORMATS`, and a
    size :func:`check_size` accepts (Pillow's decompression-bomb warning is an error too). Whatever
    the ``with`` block then does with the image (decode it, verify it) fails the same way: every
    error Pillow or the file system raises becomes one :class:`ImageLoadError` with a reason for a
    person, so the loader and the dataset scan give the same reason for the same file.

    Args:
        path: the image file.

    Yields:
        The opened, not yet decoded image (Pillow's lazy ``Image.open``), closed after the block.

    Raises:
        ImageLoadError: with ``path`` set to the file and ``reason`` one of: file not found, is a
            folder, empty file, permission denied, symbolic link loop, not an image (or a format
            outside :data:`RASTER_FORMATS`), image too large / too elongated, broken or truncated
            image, not enough memory.
    """
    name = str(Path(path))
    try:
        p = Path(path)
        if p.is_dir():
            raise ImageLoadError("is a folder, not an image", name)
        if p.stat().st_size == 0:
            raise ImageLoadError("empty file", name)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p, formats=_raster_formats()) as im:
                w, h = im.size
                check_size(w, h, name)
                yield im
    except ImageLoadError as e:
        e.path = name
        raise
    except FileNotFoundError as e:
        raise ImageLoadError("file not found", name) from e
    except PermissionError as e:
        raise ImageLoadError("permission denied", name) from e
    except UnidentifiedImageError as e:
        raise ImageLoadError("not an image, or a format this app cannot read", name) from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError("image too large (refused as a possible decompression bomb)", name) from e
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        if getattr(e, "errno", None) == errno.ELOOP:
            raise ImageLoadError("symbolic link loop", name) from e
        raise ImageLoadError(f"broken or truncated image ({e})", name) from e
    except MemoryError as e:
        raise ImageLoadError("not enough memory to decode this image", name) from e


def check_image_header(path: str | os.PathLike[str]) -> None:
    """Refuse a file that is not a usable image, from its header alone (no pixel is decoded).

    :func:`open_checked`'s checks, plus a PNG's chunk checksums (``Image.verify``), which catch most
    damaged PNGs without decoding. A file that passes can still fail to decode later (a JPEG cut off
    after its header); :func:`open_image` reports that.

    Raises:
        ImageLoadError: as :func:`open_checked`; ``reason`` says why without the path.
    """
    with open_checked(path) as im:
        if im.format == "PNG":
            im.verify()
