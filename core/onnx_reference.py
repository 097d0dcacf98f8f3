"""Classifying with an exported SqueezeLens ONNX file using only onnxruntime, numpy and Pillow.

This module is the reference implementation of the file's metadata (docs/EXPORT.md): it imports
nothing of SqueezeLens, torch or timm, so ``squeezelens export --check`` can prove that what the
file carries is enough to get the app's answers, and it can run as a script::

    python onnx_reference.py model.onnx photo.jpg [more.jpg ...]

Preprocessing, as the ``squeezelens_preprocessing`` metadata states it (timm's eval transform for a
``center`` crop: ``timm.data.create_transform(is_training=False)``): open the image, apply its EXIF
orientation, convert an embedded ICC colour profile to sRGB (LittleCMS through Pillow's ImageCms,
perceptual intent: the metadata's ``colour_space`` is ``sRGB``), put transparent pixels on white,
convert to 8-bit RGB; resize (Pillow, the stated
``interpolation``) so the shorter side is ``resize_shorter_side`` (the longer side scaled and
truncated, as torchvision's ``Resize(int)``); take the centre ``crop_size`` (offsets rounded half to
even, as torchvision's ``CenterCrop``); scale to 0..1 (``/ 255``), subtract ``mean``, divide by
``std``; CHW float32, a batch axis in front. The output is logits; softmax gives probabilities.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps

#: The metadata keys (``ModelProto.metadata_props``) that every SqueezeLens export carries, JSON-encoded.
CLASS_NAMES_KEY = "squeezelens_class_names"
PREPROCESSING_KEY = "squeezelens_preprocessing"
UNKNOWN_KEY = "squeezelens_unknown"


def read_metadata(session: Any) -> dict[str, Any]:
    """The file's SqueezeLens metadata: every ``squeezelens_*`` key, JSON values decoded.

    Args:
        session: an ``onnxruntime.InferenceSession`` of the exported file.

    Raises:
        KeyError: the file lacks the class names or the preprocessing (not a SqueezeLens export).
    """
    props = session.get_modelmeta().custom_metadata_map
    meta: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith("squeezelens_"):
            try:
                meta[key] = json.loads(value)
            except ValueError:
                meta[key] = value
    for key in (CLASS_NAMES_KEY, PREPROCESSING_KEY):
        if key not in meta:
            raise KeyError(f"not a SqueezeLens export: metadata key {key!r} is missing")
    return meta


#: Pillow modes an ICC profile converts from directly, and the profile colour space (ICC header) each needs.
_ICC_SPACES = {"RGB": "RGB", "L": "GRAY", "CMYK": "CMYK"}


def to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """``img`` converted from its embedded ICC profile ``icc`` to sRGB (perceptual intent; LittleCMS
    uses relative colorimetric for matrix-shaper profiles without a perceptual table: Display P3,
    Adobe RGB, ProPhoto); alpha is kept. ``img`` unchanged when there is no profile, the mode has no
    colour to manage, or the profile is unreadable or for another colour space (the app ignores
    those too, with a warning)."""
    if not icc:
        return img
    base = img.mode[:-1] if img.mode in ("RGBA", "LA") else img.mode
    if base not in _ICC_SPACES:
        return img
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(bytes(icc)))
        if src.profile.xcolor_space.strip() != _ICC_SPACES[base]:
            return img
        transform = ImageCms.buildTransform(src, ImageCms.createProfile("sRGB"), base, "RGB",
                                            renderingIntent=ImageCms.Intent.PERCEPTUAL)
    except (OSError, ImageCms.PyCMSError, ValueError, TypeError):
        return img
    out = transform.apply(img.convert(base) if base != img.mode else img)
    if base != img.mode:
        out.putalpha(img.getchannel("A"))
    return out


def tiff_sample_range(tags: Any) -> tuple[int, bool] | None:
    """(largest value, signed) of a high-bit-depth file's samples, from its TIFF tags (Pillow's
    ``tag_v2``); None if unknown. The app's loader (core/images.py) uses this very function.

    A 12-bit camera TIFF stores values 0..4095 in 16-bit samples (BitsPerSample 12, or 16 with
    MaxSampleValue 4095); SampleFormat 2 marks signed integers (TIFF 6.0, tags 258, 281, 339).
    """
    if tags is None:
        return None
    try:
        bits = tags.get(258)
        bits = int(bits[0] if isinstance(bits, tuple) else bits) if bits else None
        fmt = tags.get(339)
        signed = int(fmt[0] if isinstance(fmt, tuple) else fmt) == 2 if fmt else False
        maxv = tags.get(281)
        maxv = int(maxv[0] if isinstance(maxv, tuple) else maxv) if maxv else None
    except (TypeError, ValueError, IndexError):
        return None
    if bits is None or bits <= 8:
        return None
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if maxv and 0 < maxv < top:
        top = maxv
    return top, signed


def high_depth_to_8bit(img: Image.Image, sample_range: tuple[int, bool] | None) -> Image.Image:
    """16/32-bit integer and float images scaled to 0..255 (``L``, or ``RGB`` for several channels)
    instead of clipped as Pillow's ``convert`` does. The app's loader (core/images.py) uses this very
    function, so the reference and the app read such files alike.

    Integers are divided by their range's top (``sample_range``, the file's bit depth when known, see
    :func:`tiff_sample_range`; else 32767 for signed 16-bit modes, 65535 for 16-bit ones and for 32-bit
    ones holding values over 255, else 255); negative values of signed samples become black. Floats in
    0..1 are scaled by 255, larger ones taken as 0..255, NaN and infinities as 0.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        finite = np.isfinite(arr)
        arr = np.where(finite, arr, 0.0)
        scale = 255.0 if finite.any() and arr[finite].max() <= 1.0 else 1.0
        arr8 = np.clip(arr * scale, 0, 255).round().astype(np.uint8)
    else:
        arr = arr.astype(np.int64)
        if sample_range is not None:
            top = sample_range[0]
        elif img.mode.startswith("I;16") and img.mode.endswith("S"):
            top = 32767
        elif img.mode.startswith("I;16") or (arr.size and arr.max() > 255):
            top = 65535
        else:
            top = 255
        arr8 = np.clip(arr * 255 // top, 0, 255).astype(np.uint8)
    if arr8.ndim == 3:  # multi-channel 16-bit (rare in Pillow); keep the first three
        return Image.fromarray(np.ascontiguousarray(arr8[..., :3]), "RGB")
    return Image.fromarray(arr8, "L")


def load_rgb(path: str) -> Image.Image:
    """The picture in ``path`` upright (EXIF orientation applied), in sRGB (an embedded ICC profile
    converted), transparency on white, 8-bit RGB."""
    with Image.open(path) as im:
        im.seek(0)  # first frame / page
        im.load()
        icc = im.info.get("icc_profile")
        tags = getattr(im, "tag_v2", None)  # before EXIF rotation, which drops them
        img = ImageOps.exif_transpose(im)
    if img.mode in ("RGBa", "La"):  # premultiplied alpha
        img = img.convert("RGBA" if img.mode == "RGBa" else "LA")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode.startswith("I") or img.mode == "F":  # 16/32-bit and float: scaled, not clipped
        img = high_depth_to_8bit(img, tiff_sample_range(tags))
    if img.mode in ("RGB", "L") and "transparency" in img.info:  # colour-key transparency (PNG tRNS)
        img = img.convert("RGBA" if img.mode == "RGB" else "LA")
    img = to_srgb(img, icc)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert("RGB")


def preprocess(img: Image.Image, prep: dict[str, Any]) -> np.ndarray:
    """An RGB image to the model's (3, H, W) float32 input, as ``prep`` (the preprocessing metadata) says."""
    if prep.get("crop_mode", "center") != "center":
        raise ValueError(f"crop_mode {prep.get('crop_mode')!r} is not described by this reference")
    scale = int(prep["resize_shorter_side"])
    ch, cw = (int(v) for v in prep["crop_size"])
    iw, ih = img.size
    nw, nh = (scale, int(scale * ih / iw)) if iw <= ih else (int(scale * iw / ih), scale)
    if (nw, nh) != (iw, ih):
        img = img.resize((nw, nh), getattr(Image.Resampling, str(prep["interpolation"]).upper()))
    top, left = int(round((nh - ch) / 2.0)), int(round((nw - cw) / 2.0))
    img = img.crop((left, top, left + cw, top + ch))
    arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255
    mean = np.asarray(prep["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(prep["std"], dtype=np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray((arr - mean) / std)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64 for stability, returned as float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(session: Any, meta: dict[str, Any], paths: list[str]) -> np.ndarray:
    """(N, classes) probabilities of the images in ``paths``, one image per run."""
    name = session.get_inputs()[0].name
    rows = []
    for path in paths:
        x = preprocess(load_rgb(path), meta[PREPROCESSING_KEY])[None]
        rows.append(softmax(session.run(None, {name: x})[0])[0])
    return np.stack(rows) if rows else np.zeros((0, len(meta[CLASS_NAMES_KEY])))


def open_session(path: str) -> Any:
    """An ONNX Runtime CPU session of the exported file."""
    import onnxruntime as ort  # type: ignore[import-untyped]  # no py.typed

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def main(argv: list[str]) -> int:
    """``onnx_reference.py MODEL.onnx IMAGE...``: print each image's top 5 classes as JSON lines."""
    if len(argv) < 2:
        print("usage: onnx_reference.py MODEL.onnx IMAGE...", file=sys.stderr)
        return 2
    session = open_session(argv[0])
    meta = read_metadata(session)
    names = meta[CLASS_NAMES_KEY]
    for path, p in zip(argv[1:], probabilities(session, meta, argv[1:])):
        top = np.argsort(-p, kind="stable")[: min(5, len(names))]
        print(json.dumps({"path": path, "top": [{"index": int(i), "label": names[i], "prob": float(p[i])}
                                                for i in top]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
