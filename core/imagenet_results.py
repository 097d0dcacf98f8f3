"""timm's published ImageNet-1k validation results for the SE-ResNeXt variants, shipped as data.

Source: ``results/results-imagenet.csv`` in the timm repository
(https://github.com/huggingface/pytorch-image-models/blob/main/results/results-imagenet.csv, the
version at commit 0173a139a2c66db3a41ebfe1d8ac4fb02483642e), copied 2026-11-29. Columns kept: ``top1`` (%),
``param_count`` (millions) and ``img_size`` (the side, in pixels, the row was evaluated at). Variants the
file does not list (seresnext26ts.ch_in1k, the sw_in12k pretrain-only tags, seresnextaa201d) have no entry.

Speed: ``results/benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.csv`` (:data:`SPEED_SOURCE_URL`, the
version at commit 7479d451a6dfd8af27f941b8e82a7402461fae80, copied 2026-11-30): timm's own CPU inference
benchmark, fp32, batch 1, on an Intel Core i7-12700H laptop. Columns kept: ``infer_samples_per_sec``,
``infer_step_time`` (ms) and ``infer_gmacs`` (multiply-adds per image, 10**9; hardware-independent), per
architecture and input side.
"""

from __future__ import annotations

from typing import NamedTuple

SOURCE_URL = "https://github.com/huggingface/pytorch-image-models/blob/main/results/results-imagenet.csv"
SOURCE_DATE = "2026-11-29"
SPEED_SOURCE_URL = ("https://github.com/huggingface/pytorch-image-models/blob/main/results/"
                    "benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.csv")
#: The machine timm's CPU benchmark ran on (what :class:`CpuSpeed` figures mean).
SPEED_MACHINE = "an Intel Core i7-12700H laptop CPU (fp32, batch 1)"
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


class CpuSpeed(NamedTuple):
    images_per_s: float  # images a second at batch 1, fp32, on SPEED_MACHINE
    ms_per_image: float  # one forward pass, milliseconds, on SPEED_MACHINE
    gmacs: float  # multiply-adds per image, 10**9 (independent of the machine)


#: ``(architecture, input side in pixels)`` -> its row in timm's CPU benchmark.
CPU_SPEED: dict[tuple[str, int], CpuSpeed] = {
    ("seresnext26d_32x4d", 224): CpuSpeed(44.67, 22.357, 2.73),
    ("seresnext26d_32x4d", 288): CpuSpeed(28.24, 35.385, 4.51),
    ("seresnext26t_32x4d", 224): CpuSpeed(45.82, 21.799, 2.70),
    ("seresnext26t_32x4d", 288): CpuSpeed(30.14, 33.149, 4.46),
    ("seresnext26ts", 256): CpuSpeed(44.62, 22.387, 2.43),
    ("seresnext26ts", 288): CpuSpeed(37.55, 26.602, 3.07),
    ("seresnext50_32x4d", 224): CpuSpeed(28.70, 34.812, 4.26),
    ("seresnext50_32x4d", 288): CpuSpeed(18.17, 55.012, 7.04),
    ("seresnext101_32x4d", 224): CpuSpeed(15.61, 64.046, 8.02),
    ("seresnext101_32x4d", 288): CpuSpeed(10.23, 97.701, 13.25),
    ("seresnext101_64x4d", 224): CpuSpeed(8.97, 111.422, 15.53),
    ("seresnext101_32x8d", 224): CpuSpeed(8.62, 116.043, 16.48),
    ("seresnext101_32x8d", 288): CpuSpeed(5.75, 173.901, 27.24),
    ("seresnext101d_32x8d", 224): CpuSpeed(8.51, 117.483, 16.72),
    ("seresnext101d_32x8d", 288): CpuSpeed(5.60, 178.577, 27.64),
    ("seresnextaa101d_32x8d", 224): CpuSpeed(8.35, 119.799, 17.25),
    ("seresnextaa101d_32x8d", 288): CpuSpeed(5.58, 179.137, 28.51),
    ("seresnextaa101d_32x8d", 320): CpuSpeed(4.48, 222.957, 35.19),
    ("seresnextaa201d_32x8d", 320): CpuSpeed(2.28, 437.688, 70.22),
    ("seresnextaa201d_32x8d", 384): CpuSpeed(1.59, 626.967, 101.11),
}


def cpu_speed(architecture: str, side: int) -> CpuSpeed | None:
    """timm's published CPU speed of ``architecture`` at ``side`` x ``side`` pixels (the input size the app
    runs it at), or None when the benchmark has no row for that size."""
    return CPU_SPEED.get((architecture, side))


def imagenet_result(name: str) -> ImageNetResult | None:
    """The published result for ``arch.tag`` (timm's full pretrained name), or None when timm lists none."""
    return RESULTS.get(name)


def download_mb(result: ImageNetResult) -> float:
    """Approximate size of the float32 weights download, in MB (10**6 bytes): parameters x 4 bytes."""
    return result.params_m * BYTES_PER_PARAM


__all__ = ["BYTES_PER_PARAM", "CPU_SPEED", "RESULTS", "SOURCE_DATE", "SOURCE_URL", "SPEED_MACHINE",
           "SPEED_SOURCE_URL", "CpuSpeed", "ImageNetResult", "cpu_speed", "download_mb", "imagenet_result"]
