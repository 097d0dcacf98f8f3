"""Issue 18's numbers: memory of a streamed ``classify --resume`` run over many images, and Ray throughput
with 1 and 2 workers. Everything is measured side by side in one run and reported as ratios, because
this machine is shared (2 cores, other jobs): absolute times are noise, ratios less so.

    python bench/scale.py [--small 2000] [--large 20000] [--ray-images 200] [--skip-ray]

- memory: peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of the ``squeezelens classify`` child)
  of a ``--resume`` run to CSV over ``--small`` and over ``--large`` 16x16 PNGs, with a tiny timm
  model (test_resnet, 4 classes) so the run is about the pipeline, not the network. Flat memory means
  the large run's peak is within 10% of the small one's.
- Ray: images per second of ``--engine ray --workers 1`` and ``--workers 2`` on a local cluster of
  2 CPUs (``ray.init(num_cpus=2)``), after a warm-up run (actors start, model loads, excluded).

DDP step time (1 vs 2 processes) is not measured here: the distributed deep finetune was not built
in this round (docs/SCALING.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for i in range(n):
        arr = base.copy()
        arr[0, 0, 0] = i % 256
        Image.fromarray(arr).save(folder / f"{i:06d}.png", compress_level=1)


def make_model(folder: Path) -> Path:
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    torch.manual_seed(0)
    return save_model(timm.create_model("test_resnet", num_classes=4), folder / "tiny", ["a", "b", "c", "d"])


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) and wall time (s) of one child process (run alone, so RUSAGE_CHILDREN is its own)."""
    code = ("import resource,subprocess,sys,time;t=time.perf_counter();"
            "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter()-t, r.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True).stdout
    kb, wall, rc = out.split()
    if rc not in ("0", "1"):
        raise SystemExit(f"{cmd} failed with {rc}")
    return int(kb) / 1024, float(wall)


def bench_memory(tmp: Path, model: Path, small: int, large: int) -> None:
    print(f"memory: classify --resume to CSV, 16x16 PNGs, test_resnet; {small} vs {large} images")
    results = {}
    for n in (small, large):
        folder = tmp / f"img{n}"
        make_images(folder, n)
        out = tmp / f"out{n}.csv"
        cmd = [sys.executable, "-m", "squeezelens", "classify", str(folder), "--model", str(model),
               "--backend", "torch", "--top-k", "1", "--batch-size", "64", "-o", str(out), "--resume"]
        rss, wall = peak_rss_mb(cmd)
        lines = sum(1 for _ in out.open()) - 1
        assert lines == n, (lines, n)
        results[n] = rss
        print(f"  {n:>6} images: peak RSS {rss:7.1f} MB, {wall:6.1f} s ({n / wall:6.0f} images/s), rows {lines}")
    ratio = results[large] / results[small]
    print(f"  peak RSS ratio large/small: {ratio:.3f} ({'flat: within 10%' if ratio <= 1.10 else 'NOT within 10%'})")


def bench_ray(tmp: Path, model: Path, n: int) -> None:
    import ray

    from squeezelens.core.ray_engine import RayClassify

    folder = tmp / "ray"
    make_images(folder, n)
    inputs = sorted(folder.iterdir())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        import threading

        rates = {}
        for workers in (1, 2):
            eng = RayClassify.start(str(model), None, workers=workers, backend="torch", allow_download=False)
            got: list = []
            eng.classify(inputs[:32], 1, 16, threading.Event(), got.append)  # warm-up: actors, model load
            got.clear()
            t = time.perf_counter()
            eng.classify(inputs, 1, 16, threading.Event(), got.append)
            wall = time.perf_counter() - t
            assert len(got) == n
            rates[workers] = n / wall
            print(f"  ray, {workers} worker(s): {n} images in {wall:.1f} s = {rates[workers]:.1f} images/s")
        print(f"  ray throughput ratio 2 workers / 1 worker: {rates[2] / rates[1]:.2f} (2 CPUs, shared machine)")
    finally:
        ray.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", type=int, default=2000)
    p.add_argument("--large", type=int, default=20000)
    p.add_argument("--ray-images", type=int, default=200)
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f} (a shared machine: ratios only)")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model = make_model(tmp)
        if not args.skip_memory:
            bench_memory(tmp, model, args.small, args.large)
        if not args.skip_ray:
            bench_ray(tmp, model, args.ray_images)


if __name__ == "__main__":
    main()
