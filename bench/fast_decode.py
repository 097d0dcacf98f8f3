"""Decode + preprocess time of a 12-megapixel JPEG: the seed's transform against SqueezeLens' fast path.

The seed (the model card's snippet) opens the file with ``Image.open(f).convert("RGB")`` and runs
``timm.data.create_transform(**resolve_data_config({}, model=model))`` on the full-size picture.
SqueezeLens with fast decode on asks libjpeg for a reduced DCT scale whose shorter side is still at
least the transform's resize size (``open_image(path, fast_decode_min_side(cfg))``), then runs the
same transform. The target from the issue is a speed-up of at least 5x.

The test picture is a real photo from ``skimage.data`` upscaled to 4000x3000 with Lanczos, with mild
Gaussian noise so it compresses like a camera file rather than a smooth upscale, saved at quality 92.

Run:  python bench/fast_decode.py [--runs 15] [--threads 1] [--oversample X] [--check]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from squeezelens.core import preprocess
from squeezelens.core.images import open_image

ARCH = "seresnext26d_32x4d"
SIZE = (4000, 3000)  # 12 megapixels, 4:3 like most phone and compact cameras
TARGET = 5.0


def make_photo(path: Path, source: str = "coffee", noise: float = 3.0, quality: int = 92) -> None:
    """A 4000x3000 JPEG from a real skimage photo: cropped to 4:3, Lanczos upscale, mild noise."""
    from skimage import data

    arr = getattr(data, source)()
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    arr = arr[..., :3]
    h, w = arr.shape[:2]
    tw, th = SIZE
    if w * th > h * tw:  # too wide: crop the sides
        cw = round(h * tw / th)
        arr = arr[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    else:  # too tall: crop top and bottom
        ch = round(w * th / tw)
        arr = arr[(h - ch) // 2 : (h - ch) // 2 + ch]
    big = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize(SIZE, Image.LANCZOS), dtype=np.float32)
    rng = np.random.default_rng(0)
    big += rng.normal(0.0, noise, big.shape).astype(np.float32)
    Image.fromarray(np.clip(big + 0.5, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=quality)


def time_paths(paths: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per call of each function; the paths take turns so drift hits them alike."""
    for fn in paths.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(runs):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="timed runs per path (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs per path first")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: the transform's tensor ops are tiny, and waking idle "
        "worker threads only adds jitter, which on small VMs can be tens of ms per op; 0 = torch default)",
    )
    ap.add_argument("--source", default="coffee", help="skimage.data photo to upscale (default coffee)")
    ap.add_argument(
        "--oversample",
        type=float,
        default=None,
        help="what-if: override FAST_DECODE_OVERSAMPLE (default: the value in squeezelens.core.preprocess)",
    )
    ap.add_argument("--check", action="store_true", help=f"exit 1 when the speed-up is below {TARGET:g}x")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.oversample is not None:
        preprocess.FAST_DECODE_OVERSAMPLE = args.oversample

    print(
        f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"pillow {PIL.__version__}, timm {timm.__version__}"
    )
    model = timm.create_model(ARCH, pretrained=False)  # only its data config is used
    config = resolve_data_config({}, model=model)
    transform = create_transform(**config)  # the seed's transform; both paths run exactly this
    min_side = preprocess.fast_decode_min_side(config)

    with tempfile.TemporaryDirectory(prefix="squeezelens-bench-") as tmp:
        path = Path(tmp) / "photo-12mp.jpg"
        make_photo(path, args.source)
        with Image.open(path) as im:
            full = im.size
        fast_size = open_image(path, min_side).size
        print(
            f"photo: {full[0]}x{full[1]} JPEG q92 from skimage.data.{args.source}, {path.stat().st_size / 1e6:.2f} MB"
        )
        print(
            f"transform: resize {preprocess.resize_side(config)}, crop {config['input_size'][-1]}, "
            f"{config['interpolation']}; fast decode min side {min_side} "
            f"(FAST_DECODE_OVERSAMPLE={preprocess.FAST_DECODE_OVERSAMPLE:g}) -> decoded at "
            f"{fast_size[0]}x{fast_size[1]} (1/{full[0] // fast_size[0]} scale)"
        )

        def seed() -> object:
            return transform(Image.open(path).convert("RGB"))

        def exact() -> object:
            return transform(open_image(path, None))

        def fast() -> object:
            return transform(open_image(path, min_side))

        t0 = time.perf_counter()
        times = time_paths({"seed": seed, "exact": exact, "fast": fast}, args.runs, args.warmup)
        elapsed = time.perf_counter() - t0

    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"timed {args.runs} runs per path after {args.warmup} warm-up runs ({elapsed:.1f} s); median (min-max):")
    labels = {
        "seed": "seed   Image.open().convert('RGB') + transform",
        "exact": "exact  open_image(path, None) + transform",
        "fast": f"fast   open_image(path, {min_side}) + transform",
    }
    for name, label in labels.items():
        ts = times[name]
        print(f"  {label:<48} {med[name]:8.1f} ms  ({min(ts):.1f}-{max(ts):.1f})")
    ratio = med["seed"] / med["fast"]
    print(f"exact path vs fast path: {med['exact'] / med['fast']:.1f}x")
    print(f"speed-up: {ratio:.1f}x (target >= {TARGET:g}x)")
    if args.check and ratio < TARGET:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
