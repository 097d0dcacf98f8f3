"""Reading any image file Pillow understands into a proper RGB picture, in sRGB.

One input, one result: a file that cannot be used raises :class:`ImageLoadError` with a reason for
a person, whatever Pillow, a plugin or the file system raised (one photo never ends a run). Every
file goes through one header check, :func:`open_checked` (format allow-list in Pillow's detection
order, size limits, one reason per kind of failure), which both the loader (:func:`open_image`) and
the finetune dataset scan (:func:`check_image_header`) use. Nothing here knows about models except
the size the model will shrink to, which the JPEG fast path uses to decode at a reduced scale.

Reasons, by kind (the library's own text is added only with ``SQUEEZELENS_DEBUG=1``):

- ``not an image, or a format this app cannot read``;
- ``FORMAT images cannot be read by this installation; WHAT TO DO`` (a HEIC without pillow-heif),
  or ``FORMAT variant this installation cannot read`` (a TIFF compression Pillow lacks);
- ``damaged or truncated image``;
- ``image too large ...`` / ``image too elongated ...``;
- unreadable on disk: ``file not found``, ``permission denied``, ``file name too long``, ...

Pillow's process-wide settings (``Image.MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES``)
are left as the host program set them: the size limits are applied to each call here. Warnings a
file raises while it is read are caught for that file and logged (``squeezelens`` logger) as one
line, ``FILE: warning``, instead of reaching stderr with a library's path in them.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from .colour import colour_management_default, to_srgb
from .errors import ImageLoadError
from .image_formats import RASTER_FORMATS, ensure_plugins, missing_format_hint, readable_formats
from .onnx_reference import high_depth_to_8bit, tiff_sample_range

log = logging.getLogger(__name__)

#: Largest picture accepted, in pixels (about 15k x 12k): Pillow's own default refusal limit (twice
#: its ``MAX_IMAGE_PIXELS``), far above any camera, far below a bomb.
MAX_PIXELS = 178_956_970
#: Largest side accepted, in pixels: under 65,536, the most a JPEG header (16-bit fields) can state.
MAX_SIDE = 65_500
#: Longest side over shortest side. The eval transform scales the *shorter* side up or down to
#: ~256 px, so a 16000x1 strip would become a 4-gigapixel resize; 500:1 keeps it under 130k px.
MAX_ASPECT = 500

#: EXIF orientation (tag 0x0112) -> the transpose that makes the picture upright (as ImageOps does).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def debug_enabled() -> bool:
    """``SQUEEZELENS_DEBUG=1``: error reasons carry the library's own text too."""
    return os.environ.get("SQUEEZELENS_DEBUG", "") not in ("", "0")


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as text that can be printed anywhere: bytes that are not UTF-8 (kept in ``str`` paths
    as surrogates, Python's ``surrogateescape``) shown as ``\\xe9``; other paths unchanged."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# -- per-file warnings --------------------------------------------------------------------------
_tls = threading.local()
_hook_lock = threading.Lock()


def _showwarning(message: Any, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    sink = getattr(_tls, "sink", None)
    if sink is not None:
        sink.append(str(message))
        return
    _showwarning.previous(message, category, filename, lineno, file, line)  # type: ignore[attr-defined]


def _install_warning_hook() -> None:
    """Route warnings raised on a thread that is reading a file to that file's list (others pass on)."""
    if warnings.showwarning is _showwarning:
        return
    with _hook_lock:
        if warnings.showwarning is not _showwarning:
            _showwarning.previous = warnings.showwarning  # type: ignore[attr-defined]
            warnings.showwarning = _showwarning


@contextmanager
def _warnings_of(name: str) -> Iterator[list[str]]:
    """Collect the warnings raised on this thread inside the block; log the first one for ``name``."""
    _install_warning_hook()
    outer = getattr(_tls, "sink", None)
    sink: list[str] = []
    _tls.sink = sink
    try:
        yield sink
    finally:
        _tls.sink = outer
        kept = [w for w in sink if "DecompressionBomb" not in w and "exceeds limit" not in w]
        if kept and outer is None:
            text = kept[0] if debug_enabled() else _plain_warning(kept[0])
            log.warning("%s: %s", display_path(name), text)
        elif outer is not None:
            outer.extend(sink)


def _plain_warning(text: str) -> str:
    low = text.lower()
    if "exif" in low or "metadata" in low or "tag" in low:
        return "some of its metadata (EXIF) is damaged and was ignored"
    if "colour profile" in low:
        return text
    if "truncat" in low or "corrupt" in low or "premature" in low:
        return "the file looks damaged; the picture may be incomplete"
    if "palette" in low or "transparency" in low:
        return "its transparency information is unusual and was simplified"
    return "the reader reported a problem with this file (SQUEEZELENS_DEBUG=1 shows it)"


def _warn(text: str) -> None:
    """A warning about the file being read on this thread (logged once by :func:`_warnings_of`)."""
    sink = getattr(_tls, "sink", None)
    if sink is not None:
        sink.append(text)
    else:
        log.warning("%s", text)


def image_extensions() -> frozenset[str]:
    """File endings of the raster formats Pillow can open here (lower case, with the dot)."""
    fmts = set(readable_formats())
    if "JPEG" in fmts:
        fmts.add("MPO")  # phone JPEGs with a second picture; they open through the JPEG entry
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in fmts)


def walk_extensions() -> frozenset[str]:
    """Endings a folder walk lists: readable ones, and photo-like ones that get an error line."""
    from .image_formats import PHOTO_EXTENSIONS

    return image_extensions() | frozenset(PHOTO_EXTENSIONS)


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


def iter_image_files(folder: Path, errors: list[ImageLoadError] | None = None) -> Iterator[Path]:
    """Image files below ``folder``, recursively, sorted by path; hidden entries skipped.

    Photo-like files this installation cannot read (HEIC without pillow-heif, camera raw) are listed
    too, so they get an error line instead of vanishing. Subfolders that cannot be read are added to
    ``errors`` (one :class:`ImageLoadError` each) when a list is given, else skipped.
    """
    exts = walk_extensions()
    found: list[tuple[tuple[str, ...], Path]] = []

    def onerror(e: OSError) -> None:
        if errors is not None and e.filename is not None and Path(e.filename) != folder:
            errors.append(ImageLoadError(_disk_reason(e, "folder"), str(e.filename)))

    for root, dirs, files in os.walk(folder, onerror=onerror):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in exts:
                path = Path(root) / name
                found.append((path.relative_to(folder).parts, path))
    for _, path in sorted(found):
        yield path


def _disk_reason(e: OSError, what: str = "file") -> str:
    """Plain words for a file-system error."""
    code = getattr(e, "errno", None)
    if isinstance(e, FileNotFoundError):
        return f"{what} not found"
    if isinstance(e, PermissionError):
        return "permission denied" if what == "file" else f"permission denied: the {what} cannot be read"
    if code == errno.ENAMETOOLONG:
        return "file name too long for this system"
    if code == errno.ELOOP:
        return "symbolic link loop"
    if code == errno.ENOTDIR:
        return f"{what} not found (a part of its path is a file)"
    if code == errno.EIO:
        return "the disk could not read it (input/output error)"
    reason = f"cannot be read from disk ({e.strerror})" if e.strerror else "cannot be read from disk"
    return reason


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path | ImageLoadError]:
    """Folders become their image files; each path that cannot be read becomes its own error.

    A folder with no image becomes one error for that folder; a folder that cannot be listed, a
    subfolder that cannot be read, or a path the system refuses (a name over 255 bytes) becomes an
    error line of its own, in place; files are passed on for the loader to report.
    """
    out: list[Path | ImageLoadError] = []
    for p in paths:
        path = Path(p)
        name = str(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            out.append(path)  # the loader says "file not found", with the path as given
            continue
        except (OSError, ValueError) as e:
            reason = _disk_reason(e) if isinstance(e, OSError) else "not a usable path (it holds a NUL byte)"
            out.append(ImageLoadError(reason, name))
            continue
        if not stat.S_ISDIR(st.st_mode):
            out.append(path)
            continue
        try:
            with os.scandir(path):
                pass
        except OSError as e:
            out.append(ImageLoadError(_disk_reason(e, "folder"), name))
            continue
        errors: list[ImageLoadError] = []
        found = list(iter_image_files(path, errors))
        if found or errors:
            out.extend(found)
            out.extend(errors)
        else:
            out.append(ImageLoadError("no images found in folder", name))
    return out


# -- pixels to RGB ------------------------------------------------------------------------------
def to_rgb(img: Image.Image, icc: bytes | None = None, sample_range: tuple[int, bool] | None = None) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparent pixels land on white.

    Args:
        img: decoded pixels of any mode (``1``, ``L``, ``LA``, ``La``, ``P``, ``PA``, ``RGB``,
            ``RGBA``, ``RGBa``, ``RGBX``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``I``, ``I;16*``, ``F``).
        icc: an ICC profile to convert from to sRGB (:func:`.colour.to_srgb`), or None for none.
        sample_range: (largest value, signed) of high-bit-depth samples (:func:`.onnx_reference.tiff_sample_range`);
            None: 16-bit modes span 0..65535, 32-bit integers too when a value exceeds 255.
    """
    mode = img.mode
    if mode in ("RGBa", "La"):  # premultiplied alpha
        img = img.convert("RGBA" if mode == "RGBa" else "LA")
    elif mode in ("PA", "P"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("RGBX", "YCbCr", "HSV"):
        img = img.convert("RGB")
    elif mode.startswith("I") or mode == "F":
        img = high_depth_to_8bit(img, sample_range)
    if img.mode in ("RGB", "L") and "transparency" in img.info:  # colour-key transparency (PNG tRNS)
        img = img.convert("RGBA" if img.mode == "RGB" else "LA")
    if icc:
        img, problem = to_srgb(img, icc)
        if problem:
            _warn(problem)
    if img.mode == "LAB":  # no profile given: CIELAB to sRGB with a built-in LAB profile
        img = _lab_to_rgb(img)
    if img.mode in ("RGBA", "LA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    return img.convert("RGB")  # L, CMYK (naive), anything left


def _lab_to_rgb(img: Image.Image) -> Image.Image:
    from PIL import ImageCms

    t = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return t.apply(img)


def _draft_size(size: tuple[int, int], min_side: int) -> tuple[int, int]:
    """Requested draft size whose shorter side is at least ``min_side`` (aspect kept)."""
    # Integer maths, shorter side exactly min_side, longer side rounded down: a request one pixel
    # too big (float error, or ceil) makes Pillow's draft fall back to the next larger DCT scale.
    w, h = size
    if w <= h:
        return min_side, max(min_side, h * min_side // w)
    return max(min_side, w * min_side // h), min_side


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag alone (1..8); 1 when absent or when the EXIF cannot be parsed.

    Only tag 0x0112 is read: fields of unexpected types elsewhere in the EXIF (a resolution or GPS
    time stored as text, as real cameras write) must not stop the picture.
    """
    try:
        value = img.getexif().get(0x0112)
        if isinstance(value, (tuple, list)):
            value = value[0] if value else None
        value = int(value) if value is not None else 1
    except Exception as e:  # garbage EXIF of any kind means "no rotation"
        _warn(f"EXIF metadata cannot be parsed ({type(e).__name__}: {e}); not rotated")
        return 1
    return value if value in _ORIENTATION else 1


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    method = _ORIENTATION.get(orientation)
    return img.transpose(method) if method is not None else img


def open_image_bytes(data: bytes, name: str, fast_min_side: int | None = None,
                     *, colour_manage: bool | None = None) -> Image.Image:
    """:func:`open_image` for an image file's bytes that came without a file (a ``data:`` URL, a
    download): the same checks, reasons and result; ``name`` is what errors call it.

    Raises:
        ImageLoadError: as :func:`open_image`, with ``path`` = ``name``.
    """
    manage = colour_management_default() if colour_manage is None else colour_manage
    with open_checked(name, data) as im:
        im.seek(0)
        if fast_min_side and isinstance(im, JpegImagePlugin.JpegImageFile):
            im.draft("RGB", _draft_size(im.size, fast_min_side))
        im.load()
        return _finish(im, manage)


def open_image(source: str | os.PathLike[str] | Image.Image, fast_min_side: int | None = None,
               *, colour_manage: bool | None = None) -> Image.Image:
    """Read one image as sRGB ``RGB`` with EXIF orientation applied.

    Args:
        source: a path, or an already opened PIL image.
        fast_min_side: when set, JPEGs are decoded at the smallest DCT scale whose shorter side is
            still at least this many pixels (Pillow's ``draft``); ``None`` decodes full size.
        colour_manage: convert an embedded ICC profile to sRGB (:mod:`.colour`); None follows
            ``SQUEEZELENS_COLOUR_MANAGEMENT`` (on by default). False gives timm's pixels exactly.

    Returns:
        An ``RGB`` image, upright, of the file's own size (or, with ``fast_min_side``, a JPEG scaled
        down by 1/2, 1/4 or 1/8).

    Raises:
        ImageLoadError: whatever goes wrong reading this one input (see the module docstring for the
            reasons); ``path`` is the file (or a PIL image's ``filename``, else ``"image"``).
    """
    manage = colour_management_default() if colour_manage is None else colour_manage
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or "image"
        w, h = source.size
        check_size(w, h, name)
        with _warnings_of(name), _errors_as_load_errors(name, getattr(source, "format", None)):
            return _finish(source, manage)
    with open_checked(source) as im:
        name = str(Path(source))
        im.seek(0)  # first frame of a GIF, first page of a TIFF
        if fast_min_side and isinstance(im, JpegImagePlugin.JpegImageFile):  # JPEG and MPO
            im.draft("RGB", _draft_size(im.size, fast_min_side))
        im.load()
        return _finish(im, manage)


def _finish(im: Image.Image, manage: bool) -> Image.Image:
    """Decoded pixels upright, in sRGB, as RGB."""
    im.load()  # a lazily opened PIL image decodes here, inside the caller's error handling
    orientation = _orientation(im)
    icc = im.info.get("icc_profile") if manage else None
    sample_range = tiff_sample_range(getattr(im, "tag_v2", None)) if im.mode.startswith("I") else None
    return _upright(to_rgb(im, icc, sample_range), orientation)


@contextmanager
def _errors_as_load_errors(name: str, fmt: str | None) -> Iterator[None]:
    """Every exception inside the block becomes one :class:`ImageLoadError` for ``name``, by kind."""
    try:
        yield
    except ImageLoadError as e:
        e.path = name
        raise
    except UnidentifiedImageError as e:
        hint = missing_format_hint(os.path.splitext(name)[1])
        raise ImageLoadError(_with_debug(hint or "not an image, or a format this app cannot read", e), name) from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(_with_debug("image too large (refused as a possible decompression bomb)", e), name) from e
    except MemoryError as e:
        raise ImageLoadError("image too large: not enough memory to decode it", name) from e
    except (NotImplementedError, KeyError) as e:  # an unsupported mode, compression or sub-format
        raise ImageLoadError(_with_debug(f"{fmt or 'this'} variant this installation cannot read", e), name) from e
    except OSError as e:
        if e.errno is not None and not isinstance(e, UnidentifiedImageError):
            raise ImageLoadError(_with_debug(_disk_reason(e), e), name) from e
        text = str(e).lower()
        if "not available" in text or "unsupported" in text or "not supported" in text or "unknown" in text:
            reason = f"{fmt or 'this'} variant this installation cannot read"
        else:
            reason = "damaged or truncated image"
        raise ImageLoadError(_with_debug(reason, e), name) from e
    except Exception as e:  # SyntaxError, ValueError, EOFError, struct.error, zlib.error, a plugin's own...
        raise ImageLoadError(_with_debug("damaged or truncated image", e), name) from e


def _with_debug(reason: str, e: BaseException) -> str:
    return f"{reason} ({type(e).__name__}: {e})" if debug_enabled() else reason


@contextmanager
def open_checked(path: str | os.PathLike[str], data: bytes | None = None) -> Iterator[Image.Image]:
    """Open an image file lazily, once its header shows a usable picture; the one check for all files.

    Before any pixel is decoded: not a folder, not empty, a format of :data:`RASTER_FORMATS` (tried
    in Pillow's own order), and a size :func:`check_size` accepts. Whatever the ``with`` block then
    does with the image (decode it, verify it, convert it) fails the same way: every exception
    becomes one :class:`ImageLoadError` with a reason for a person (module docstring), so the loader
    and the dataset scan give the same reason for the same file. Warnings go to this file's one line.

    Args:
        path: the image file (with ``data``: only the name errors give).
        data: the file's bytes, when they did not come from a file (a ``data:`` URL, a download).

    Yields:
        The opened, not yet decoded image (Pillow's lazy ``Image.open``), closed after the block.

    Raises:
        ImageLoadError: with ``path`` set to the file and a plain ``reason``.
    """
    name = str(Path(path))
    fmt: list[str | None] = [None]
    with _warnings_of(name), _errors_as_load_errors_dyn(name, fmt):
        p = Path(path)
        if data is not None:
            if not data:
                raise ImageLoadError("empty file", name)
            source: Any = io.BytesIO(data)
        else:
            if p.is_dir():
                raise ImageLoadError("is a folder, not an image", name)
            if p.stat().st_size == 0:
                raise ImageLoadError("empty file", name)
            source = p
        with Image.open(source, formats=readable_formats()) as im:
            fmt[0] = im.format
            w, h = im.size
            check_size(w, h, name)
            yield im


@contextmanager
def _errors_as_load_errors_dyn(name: str, fmt: list[str | None]) -> Iterator[None]:
    try:
        yield
    except BaseException as e:
        if not isinstance(e, Exception):  # KeyboardInterrupt, SystemExit, GeneratorExit
            raise
        with _errors_as_load_errors(name, fmt[0]):
            raise


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


__all__ = [
    "MAX_ASPECT", "MAX_PIXELS", "MAX_SIDE", "RASTER_FORMATS", "check_image_header", "check_size", "display_path",
    "ensure_plugins", "expand_inputs", "image_extensions", "iter_image_files", "open_checked", "open_image",
    "open_image_bytes", "to_rgb", "walk_extensions",
]
