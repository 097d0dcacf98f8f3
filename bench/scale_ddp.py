"""DDP step time of deep finetuning: 1 process against 2 (gloo, CPU), side by side in one run.

Each configuration is started by ``python -m torch.distributed.run`` on a free 127.0.0.1 port and runs
the real deep mode (``squeezelens.core.finetune.finetune``) on generated images with a tiny timm model
(``test_resnet``, or ``--arch``). Rank 0 times every update from the BatchEvents (the first epoch is
warm-up and not counted); the median seconds per update is reported, and the ratios against 1 process
with the same global batch. On a shared 2-core machine the numbers are noisy: repeat with ``--repeat``.

Run:  python bench/scale_ddp.py [--images 64] [--batch 8] [--size 64] [--arch test_resnet] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def worker(data: str, base: str, out: str, batch: int, size: int, report: str) -> None:
    """One torchrun process: a 2-epoch deep finetune; rank 0 writes its update times to ``report``."""
    import time

    import torch

    from squeezelens.core.finetune import BatchEvent, FinetuneConfig, finetune

    torch.set_num_threads(1)
    stamps: list[tuple[int, float]] = []

    def on_event(e: object) -> None:
        if isinstance(e, BatchEvent) and e.stage == "train":
            stamps.append((e.epoch, time.perf_counter()))

    finetune(FinetuneConfig(data, out, model=base, mode="deep", epochs=2, batch_size=batch, input_size=size,
                            device="cpu", allow_download=False), on_event=on_event)
    if os.environ.get("RANK") == "0":
        times = [b - a for (ea, a), (eb, b) in zip(stamps, stamps[1:]) if ea == eb == 2]
        Path(report).write_text(json.dumps(times))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(nproc: int, batch: int, data: Path, base: Path, root: Path, size: int, tag: str) -> float:
    out, report = root / f"out-{tag}", root / f"{tag}.json"
    env = {**os.environ, "SQUEEZELENS_CACHE_DIR": str(root / f"cache-{tag}"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
           "127.0.0.1", "--master-port", str(free_port()), __file__, "--worker", str(data), str(base), str(out),
           str(batch), str(size), str(report)]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return statistics.median(json.loads(report.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64, help="images per class, 4 classes")
    ap.add_argument("--batch", type=int, default=8, help="per-process batch of the 2-process run")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--arch", default="test_resnet")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()

    import numpy as np
    import timm
    import torch
    from PIL import Image

    from squeezelens.core.saved_model import save_model

    root = Path(tempfile.mkdtemp(prefix="scale-ddp-"))
    rng = np.random.default_rng(0)
    for c in range(4):
        (root / "data" / f"c{c}").mkdir(parents=True)
        for i in range(a.images):
            arr = (rng.random((a.size, a.size, 3)) * 80 + c * 40).astype(np.uint8)
            Image.fromarray(arr).save(root / "data" / f"c{c}" / f"{i:04d}.png")
    torch.manual_seed(0)
    base = save_model(timm.create_model(a.arch, num_classes=4), root / "base", ["a", "b", "c", "d"])
    print(f"{a.arch} {a.size}px, {4 * a.images} images, gloo on CPU, machine shared; median s/update of epoch 2")
    for r in range(a.repeat):
        one = run(1, 2 * a.batch, root / "data", base, root, a.size, f"1x{2 * a.batch}-{r}")
        two = run(2, a.batch, root / "data", base, root, a.size, f"2x{a.batch}-{r}")
        print(f"[{r}] 1 proc x {2 * a.batch}: {one:.3f} s  2 procs x {a.batch}: {two:.3f} s  "
              f"(same global batch; 2-proc/1-proc step time ratio {two / one:.2f}, speed-up {one / two:.2f}x)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        d, b, o, bs, sz, rep = sys.argv[2:8]
        worker(d, b, o, int(bs), int(sz), rep)
    else:
        main()
