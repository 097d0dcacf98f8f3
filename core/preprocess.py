"""The model's own eval transform, from its pretrained_cfg, via timm."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .numpy_transform import DEFAULT_CROP_PCT

if TYPE_CHECKING:
    import torch
    from PIL import Image

#: The JPEG fast path decodes so the shorter side stays at least this multiple of the resize size.
FAST_DECODE_OVERSAMPLE = 1.0


def data_config(model: torch.nn.Module) -> dict[str, Any]:
    """timm's resolved eval data config for ``model`` (input size, crop, interpolation, mean/std)."""
    from timm.data import resolve_model_data_config

    return resolve_model_data_config(model)


def eval_transform(config: Mapping[str, Any]) -> Callable[[Image.Image], torch.Tensor]:
    """timm's ``create_transform`` for evaluation; exactly what the model card's snippet uses.

    The returned function takes an RGB PIL image and gives a normalised float32 (3, H, W) tensor.
    """
    from timm.data import create_transform

    return create_transform(**config, is_training=False)


def resize_side(config: Mapping[str, Any]) -> int:
    """The shorter-side size the eval transform resizes to before cropping."""
    size = config["input_size"][-2:]
    crop_pct = config.get("crop_pct") or DEFAULT_CROP_PCT
    return math.floor(max(size) / crop_pct)


def fast_decode_min_side(config: Mapping[str, Any]) -> int:
    """Smallest shorter side a reduced-scale JPEG decode may have for this model."""
    return math.ceil(resize_side(config) * FAST_DECODE_OVERSAMPLE)
