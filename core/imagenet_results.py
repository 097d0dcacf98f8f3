"""timm's published ImageNet-1k validation results for the SE-ResNeXt variants, shipped as data.

Source: ``results/results-imagenet.csv`` in the timm repository
(https://github.com/huggingface/pytorch-image-models/blob/main/results/results-imagenet.csv, the
version at commit 0173a139a2c66db3a41ebfe1d8ac4fb02483642e), copied 2026-11-29. Columns kept: ``top1`` (%),
``param_count`` (millions) and ``img_size`` (the side, in pixels, the row was evaluated at). Variants the
file does not list (seresnext26ts.ch_in1k, the sw_in12k pretrain-only tags, seresnextaa201d) have no entry.
"""

from __future__ import annotations

from typing import NamedTuple

SOURCE_URL = "https://github.com/huggingface/pytorch-image-models/blob/main/results/results-imagenet.csv"
SOURCE_DATE = "2026-11-29"
#: float32 weights: 4 bytes a parameter (the safetensors file the Hub serves is about this size).
BYTES_PER_PARAM = 4


class ImageNetResult(NamedTuple):
    top1: float  # ImageNet-1k validation top-1 accuracy, percent
    params_m: float  # parameters, millions
    img_size: int  # evaluated at img_size x img_size pixels


#: ``arch.tag`` -> its row in timm's results-imagenet.csv.
RESULTS: dict[str, ImageNetResult] = {
    "seresnextaa101d_32x8d.sw_in12k_ft_in1k_288": ImageNetResult(86.724, 93.59, 320),
    "seresnextaa101d_32x8d.sw_in12k_ft_in1k": ImageNetResult(86.484, 93.59, 288),
    "seresnextaa101d_32x8d.ah_in1k": ImageNetResult(84.566, 93.59, 288),
    "seresnext101d_32x8d.ah_in1k": ImageNetResult(84.358, 93.59, 288),
    "seresnext101_32x8d.ah_in1k": ImageNetResult(84.186, 93.57, 288),
    "seresnext50_32x4d.racm_in1k": ImageNetResult(82.196, 27.56, 288),
    "seresnext101_64x4d.gluon_in1k": ImageNetResult(80.896, 88.23, 224),
    "seresnext101_32x4d.gluon_in1k": ImageNetResult(80.892, 48.96, 224),
    "seresnext50_32x4d.gluon_in1k": ImageNetResult(79.910, 27.56, 224),
    "seresnext26d_32x4d.bt_in1k": ImageNetResult(78.814, 16.81, 288),
    "seresnext26t_32x4d.bt_in1k": ImageNetResult(78.744, 16.81, 288),
}


def imagenet_result(name: str) -> ImageNetResult | None:
    """The published result for ``arch.tag`` (timm's full pretrained name), or None when timm lists none."""
    return RESULTS.get(name)


def download_mb(result: ImageNetResult) -> float:
    """Approximate size of the float32 weights download, in MB (10**6 bytes): parameters x 4 bytes."""
    return result.params_m * BYTES_PER_PARAM


__all__ = ["BYTES_PER_PARAM", "RESULTS", "SOURCE_DATE", "SOURCE_URL", "ImageNetResult", "download_mb",
           "imagenet_result"]
