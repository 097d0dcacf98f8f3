"""timm's eval transform written with Pillow and numpy, so the ONNX Runtime path needs no torch.

timm's ``create_transform(is_training=False)`` for a square input in ``center`` crop mode is
``Resize(shorter side -> floor(size / crop_pct))`` (torchvision on a PIL image: Pillow's own
``resize``), ``CenterCrop(size)``, ``ToTensor`` (``/ 255`` in float32) and ``Normalize(mean, std)``.
The same Pillow calls and the same float32 arithmetic give the same numbers; the parity tests
check it against timm's transform. Configurations outside that case return ``None`` and the
caller uses timm's transform instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}
DEFAULT_CROP_PCT = 0.875  # timm.data.DEFAULT_CROP_PCT


def numpy_eval_transform(config: Mapping[str, Any]) -> Callable[[Image.Image], np.ndarray] | None:
    """A torch-free twin of timm's eval transform for ``config``, or ``None`` when it has no twin here.

    The returned function takes an RGB PIL image and gives a float32 CHW array.
    """
    _, h, w = config["input_size"]
    crop_pct = config.get("crop_pct") or DEFAULT_CROP_PCT
    resample = _RESAMPLE.get(str(config.get("interpolation", "bilinear")))
    if (h != w or resample is None or config.get("crop_mode") not in (None, "center")
            or config.get("crop_border_pixels") or crop_pct > 1.0):
        return None
    size = int(h)
    scale = math.floor(size / crop_pct)
    mean = np.asarray(config["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(config["std"], dtype=np.float32).reshape(3, 1, 1)

    def transform(img: Image.Image) -> np.ndarray:
        if img.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {img.mode}")
        iw, ih = img.size
        # torchvision's Resize(int): the shorter side becomes `scale`, the longer one is truncated
        if iw <= ih:
            nw, nh = scale, int(scale * ih / iw)
        else:
            nw, nh = int(scale * iw / ih), scale
        if (nw, nh) != (iw, ih):
            img = img.resize((nw, nh), resample)
        # torchvision's CenterCrop: offsets rounded half to even, as Python's round() does
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
        arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255
        return np.ascontiguousarray((arr - mean) / std)

    return transform
