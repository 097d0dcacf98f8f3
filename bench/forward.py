"""Model forward pass at batch 1, per backend, against the fp32 floor of this machine.

The floor is the model's work divided by the best fp32 rate this machine reaches: GFLOP per image
from ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add), over the GFLOP/s of a
large square matrix product (torch's ``mm`` or numpy's BLAS, whichever is faster; the best case
for convolutions, which lower to GEMM-like loops). The backends take turns run by run so drift
hits them alike (with a pause between calls, so one backend's idle threads do not slow the
next); medians are printed with their ratio to the floor. Target from issue 6: ONNX
Runtime within 1.2x of the floor.

Run:  python bench/forward.py [--model seresnext26d_32x4d] [--runs 30] [--gemm 2048]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch

TARGET = 1.2
#: Pause before each timed call: torch's OpenMP workers spin-wait for a while after a parallel
#: region, and on 2 cores that spinning would be charged to whichever backend runs next.
PAUSE_S = 0.2


def gemm_gflops(n: int, runs: int = 10) -> float:
    """Best-of-runs fp32 GFLOP/s of an n x n x n matrix product: torch's ``mm`` or numpy's BLAS, the faster."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    an, bn = a.numpy(), b.numpy()
    best = float("inf")
    for mm in (lambda: torch.mm(a, b), lambda: an @ bn):
        mm()
        for _ in range(runs):
            t0 = time.perf_counter()
            mm()
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def model_gflop(model: torch.nn.Module, input_size: tuple[int, ...]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *input_size))
    return counter.get_total_flops() / 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="seresnext26d_32x4d")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per backend (median reported)")
    ap.add_argument("--gemm", type=int, default=2048, help="size of the square GEMM that sets the peak rate")
    args = ap.parse_args(argv)

    from squeezelens.core.onnx_export import export_onnx
    from squeezelens.core.preprocess import data_config
    from squeezelens.core.runners import OrtRunner

    torch.manual_seed(0)
    model = timm.create_model(args.model).eval()  # random weights: the speed is the same
    input_size = tuple(data_config(model)["input_size"])
    gflop = model_gflop(model, input_size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        t0 = time.perf_counter()
        exporter = export_onnx(model, input_size, path)
        export_s = time.perf_counter() - t0
        ort = OrtRunner(path)
        x = np.random.default_rng(0).standard_normal((1, *input_size), dtype=np.float32)
        xt = torch.from_numpy(x)

        def run_torch() -> None:
            with torch.inference_mode():
                model(xt)

        def run_ort() -> None:
            ort.logits(x)

        paths = {"torch (eager, fp32)": run_torch, "onnxruntime (fp32)": run_ort}
        for fn in paths.values():
            for _ in range(3):
                fn()
        times: dict[str, list[float]] = {k: [] for k in paths}
        rates = []
        for i in range(args.runs):
            if i % 10 == 0:
                rates.append(gemm_gflops(args.gemm, runs=3))
            for name, fn in paths.items():
                time.sleep(PAUSE_S)
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1000)
        rates.append(gemm_gflops(args.gemm, runs=3))

    peak = max(rates)
    floor_ms = gflop / peak * 1000
    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
          f"torch threads={torch.get_num_threads()} torch {torch.__version__} timm {timm.__version__}")
    print(f"model: {args.model} {input_size}, {gflop:.2f} GFLOP/image (FlopCounterMode)")
    print(f"fp32 GEMM {args.gemm}^3: {peak:.0f} GFLOP/s (best in the run) -> floor {floor_ms:.1f} ms/image")
    print(f"ONNX export ({exporter}): {export_s:.2f} s")
    print(f"{'backend':<22} {'median ms':>10} {'p10':>8} {'p90':>8} {'x floor':>8}")
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=10)
        print(f"{name:<22} {statistics.median(ts):10.1f} {q[0]:8.1f} {q[-1]:8.1f} "
              f"{statistics.median(ts) / floor_ms:8.2f}")
    ratio = statistics.median(times["onnxruntime (fp32)"]) / floor_ms
    print(f"onnxruntime / floor = {ratio:.2f}x (target <= {TARGET}x): {'MET' if ratio <= TARGET else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
