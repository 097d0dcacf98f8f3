"""Embedded ICC colour profiles converted to sRGB with Pillow's ImageCms (LittleCMS).

A Display P3 photo (recent iPhones), an Adobe RGB or ProPhoto export, or a CMYK JPEG carries its
colours in its own space; the model was trained on sRGB pixels, so without a conversion it sees the
wrong colours (15-20 levels of 255 off on average for ProPhoto and CMYK files). The conversion uses
the perceptual intent (LittleCMS falls back to relative colorimetric for matrix-shaper profiles that
have no perceptual table, which is what P3, Adobe RGB and ProPhoto are).

Turning it off (``colour_manage=False`` on :func:`~squeezelens.core.images.open_image`, the
``Classifier`` attribute of the same name, ``classify --no-colour-management``, or the environment
variable ``SQUEEZELENS_COLOUR_MANAGEMENT=0``) gives exactly timm's ``Image.open(p).convert("RGB")``
pixels, the seed-parity contract. Files without a profile are unchanged either way.
"""

from __future__ import annotations

import functools
import io
import os

from PIL import Image, ImageCms

#: Modes a profile applies to directly, and the mode the converted pixels come out in.
_CMS_MODES = {"RGB": "RGB", "L": "RGB", "CMYK": "RGB", "LAB": "RGB"}
#: Profile colour spaces (ICC header) that fit each Pillow mode.
_SPACES = {"RGB": "RGB", "L": "GRAY", "CMYK": "CMYK", "LAB": "LAB"}


def colour_management_default() -> bool:
    """On unless ``SQUEEZELENS_COLOUR_MANAGEMENT`` is ``0``, ``off``, ``no`` or ``false``."""
    return os.environ.get("SQUEEZELENS_COLOUR_MANAGEMENT", "1").strip().lower() not in ("0", "off", "no", "false")


@functools.lru_cache(maxsize=32)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A cached transform from the profile ``icc`` to sRGB for pixels of ``mode``; None when the
    profile does not describe ``mode``'s colour space (a grey profile on RGB pixels) or is not sRGB-able."""
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    space = src.profile.xcolor_space.strip()
    if space != _SPACES[mode]:
        return None
    dst = ImageCms.createProfile("sRGB")
    return ImageCms.buildTransform(src, dst, mode, _CMS_MODES[mode],
                                   renderingIntent=ImageCms.Intent.PERCEPTUAL)


def to_srgb(img: Image.Image, icc: bytes | None) -> tuple[Image.Image, str | None]:
    """Convert ``img`` from the colour space of its ICC profile to sRGB.

    Args:
        img: pixels in mode ``RGB``, ``RGBA``, ``L``, ``LA``, ``CMYK`` or ``LAB`` (8 bits a channel);
            alpha is kept as it is.
        icc: the embedded profile's bytes (``img.info["icc_profile"]`` of the file), or None.

    Returns:
        ``(image, warning)``: the sRGB image (``RGB``/``RGBA``; ``img`` itself when there is no
        profile or the mode has no colour to manage) and None, or ``img`` unchanged and a warning
        for a person when the profile cannot be used (damaged, or for another colour space).
    """
    if not icc:
        return img, None
    alpha = None
    base = img
    if img.mode in ("RGBA", "LA"):
        alpha = img.getchannel("A")
        base = img.convert(img.mode[:-1])
    if base.mode not in _CMS_MODES:
        return img, None
    try:
        transform = _transform(bytes(icc), base.mode)
    except (OSError, ImageCms.PyCMSError, ValueError, TypeError) as e:
        return img, f"colour profile ignored: it cannot be read ({type(e).__name__})"
    if transform is None:
        return img, "colour profile ignored: it is for another colour space than the pixels"
    out = transform.apply(base)
    if alpha is not None:
        out.putalpha(alpha)
    return out, None


__all__ = ["colour_management_default", "to_srgb"]
