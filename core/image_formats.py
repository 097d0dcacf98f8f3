"""Which picture formats this installation reads, and what to tell a person about one it does not.

Pillow reads the common raster formats itself (AVIF since Pillow 11.3, when built with libavif);
HEIC/HEIF (every iPhone photo since 2017) comes from the pillow-heif plugin, registered here on
first use rather than at import, so ``import squeezelens`` leaves Pillow as the host program set it.

:data:`PHOTO_EXTENSIONS` names endings that look like photos even when nothing here reads them: a
folder walk lists such a file, so it gets an error line that names the format and what to do
(:func:`missing_format_hint`), instead of vanishing from the run.
"""

from __future__ import annotations

import threading

from PIL import Image

#: Raster photo formats we open; Pillow also registers video, HDF5, GRIB, EPS (Ghostscript) and
#: vector metafiles, which are not photos and must not be handed to outside programs. Multi-picture
#: JPEGs from phones (MPO) open through the JPEG entry. HEIF is pillow-heif's format name.
RASTER_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "GIF", "TIFF", "PPM", "TGA", "ICO",
                  "JPEG2000", "QOI", "AVIF", "HEIF", "SGI", "PCX")

#: Photo-like endings -> (format name for a person, what to do when this installation cannot read it).
PHOTO_EXTENSIONS: dict[str, tuple[str, str]] = {
    **{ext: ("HEIC/HEIF", "install pillow-heif (pip install pillow-heif) or convert it to JPEG")
       for ext in (".heic", ".heif", ".hif", ".heics", ".heifs")},
    ".avif": ("AVIF", "upgrade Pillow to 11.3 or later (pip install -U pillow) or convert it to JPEG"),
    ".jxl": ("JPEG XL", "convert it to JPEG or PNG; this installation has no JPEG XL reader"),
    ".psd": ("Photoshop", "save a flattened JPEG or PNG copy"),
    **{ext: ("camera raw", "export it as JPEG or TIFF from your photo software")
       for ext in (".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw")},
}

_lock = threading.Lock()
_plugins_ready = False


def ensure_plugins() -> None:
    """Register the optional pillow-heif opener once (no-op when pillow-heif is not installed)."""
    global _plugins_ready
    if _plugins_ready:
        return
    with _lock:
        if _plugins_ready:
            return
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except Exception:  # not installed, or a broken native library: HEIC files get the hint
            pass
        Image.init()
        _plugins_ready = True


def readable_formats() -> tuple[str, ...]:
    """:data:`RASTER_FORMATS` this installation can open, in Pillow's own detection order.

    Pillow tries formats in the order of ``Image.ID``; a caller's order would override it, and a
    loose check early in the list (TGA has no signature) would then claim files of a later format
    (an ICO read as TGA).
    """
    ensure_plugins()
    allowed = set(RASTER_FORMATS)
    return tuple(f for f in Image.ID if f in allowed and f in Image.OPEN)


def format_support() -> dict[str, bool]:
    """Whether HEIC and AVIF files can be read here (for ``--self-test`` and the About box)."""
    fmts = readable_formats()
    return {"HEIC": "HEIF" in fmts, "AVIF": "AVIF" in fmts}


def missing_format_hint(suffix: str) -> str | None:
    """For a photo-like ending this installation cannot read: ``"FORMAT: what to do"``, else None."""
    entry = PHOTO_EXTENSIONS.get(suffix.lower())
    if entry is None:
        return None
    return f"{entry[0]} images cannot be read by this installation; {entry[1]}"


__all__ = ["PHOTO_EXTENSIONS", "RASTER_FORMATS", "ensure_plugins", "format_support", "missing_format_hint",
           "readable_formats"]
