"""Model forward pass at batch 1, per backend and precision, against this machine's measured peak.

The peak is measured with a microbenchmark, not a GEMM library call: ``bench/peak_kernel.c``,
built here with ``gcc -O2 -march=native -fopenmp`` (so it uses exactly the vector units this CPU
has), runs 12 independent register-resident chains of vector multiply-adds per thread, one thread
per usable CPU: fp32 FMA (``vfmadd``), bf16 ``vdpbf16ps`` where the CPU has AVX512_BF16, and int8
(VNNI ``vpdpbusd`` where present, else AVX2's ``vpmaddubsw + vpmaddwd + vpaddd``, the sequence the
int8 kernels of ONNX Runtime and OpenVINO use). C, because numpy cannot keep a chain in registers
(each ufunc call goes through memory) and numba is not a dependency. Without gcc the peak columns
stay empty.

The model's work is counted by ``torch.utils.flop_counter.FlopCounterMode`` (multiply-adds =
FLOP / 2). Each backend's rate (multiply-adds per second at batch 1) is printed as a fraction of the
fp32 peak and of the peak of its own precision. The backends take turns run by run (with a pause
before each call, so one backend's spinning threads are not charged to the next), and the peaks
are measured between the turns; medians are reported. Issue 19's target: the fast mode at most
0.55x of ONNX Runtime fp32's batch-1 latency.

Run:  python bench/forward.py [--model seresnext26d_32x4d] [--runs 30]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import timm
import torch

TARGET = 0.55
#: Pause before each timed call (spinning worker threads of the previous backend calm down).
PAUSE_S = 0.1
KERNEL = Path(__file__).with_name("peak_kernel.c")


class Peak:
    """The C kernel, built and loaded; ``None`` rates where it could not be built."""

    def __init__(self, tmp: Path, threads: int) -> None:
        self.threads = threads
        self.lib: ctypes.CDLL | None = None
        self.note = ""
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            self.note = "no C compiler: peak not measured"
            return
        so = tmp / "peak.so"
        proc = subprocess.run([gcc, "-O2", "-march=native", "-fopenmp", "-shared", "-fPIC", "-o", str(so),
                               str(KERNEL)], capture_output=True, text=True)
        if proc.returncode != 0:
            self.note = f"kernel build failed: {proc.stderr[-300:]}"
            return
        lib = ctypes.CDLL(str(so))
        lib.fma_fp32.restype = lib.dot_bf16.restype = lib.dot_int8.restype = ctypes.c_double
        lib.fma_fp32.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_float]
        lib.dot_bf16.argtypes = lib.dot_int8.argtypes = [ctypes.c_long, ctypes.c_int]
        self.lib = lib
        self.best: dict[str, float] = {"fp32": 0.0, "bf16": 0.0, "int8": 0.0}
        self.int8_kind = {0: "none", 1: "AVX2 vpmaddubsw", 2: "AVX-VNNI", 3: "AVX512-VNNI"}[lib.int8_kind()]
        self.has_bf16 = bool(lib.has_bf16())

    def sample(self, iters: int = 3_000_000) -> None:
        """One measurement of each peak (multiply-adds per second, all threads); the best is kept."""
        if self.lib is None:
            return
        runs: dict[str, Callable[[], float]] = {
            "fp32": lambda: self.lib.fma_fp32(iters, self.threads, 1.0),  # type: ignore[union-attr]
            "int8": lambda: self.lib.dot_int8(iters, self.threads),  # type: ignore[union-attr]
        }
        if self.has_bf16:
            runs["bf16"] = lambda: self.lib.dot_bf16(iters, self.threads)  # type: ignore[union-attr]
        for name, fn in runs.items():
            t0 = time.perf_counter()
            n = fn()
            self.best[name] = max(self.best[name], n / (time.perf_counter() - t0))


def model_gmac(model: torch.nn.Module, input_size: tuple[int, ...]) -> float:
    """Multiply-adds per image, in G (FlopCounterMode's FLOP / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *input_size))
    return counter.get_total_flops() / 2e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="seresnext26d_32x4d")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per backend (median reported)")
    args = ap.parse_args(argv)

    from squeezelens.core import precision
    from squeezelens.core.device_info import usable_cpus
    from squeezelens.core.numpy_transform import numpy_eval_transform
    from squeezelens.core.onnx_export import export_onnx
    from squeezelens.core.preprocess import data_config
    from squeezelens.core.quantize import quantize_int8
    from squeezelens.core.runners import OrtRunner, OvRunner

    torch.manual_seed(0)
    model = timm.create_model(args.model).eval()  # random weights: the speed is the same
    cfg = data_config(model)
    input_size = tuple(cfg["input_size"])
    gmac = model_gmac(model, input_size)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        peak = Peak(tmp, usable_cpus())
        fp32_path, int8_path = tmp / "model.onnx", tmp / "model.int8.onnx"
        export_onnx(model, input_size, fp32_path)
        transform = numpy_eval_transform(cfg)
        assert transform is not None
        t0 = time.perf_counter()
        quantize_int8(fp32_path, int8_path, (x[None] for x in precision.photo_inputs(transform, views=False)))
        quant_s = time.perf_counter() - t0
        x = np.random.default_rng(0).standard_normal((1, *input_size), dtype=np.float32)
        xt = torch.from_numpy(x)

        def run_torch() -> None:
            with torch.inference_mode():
                model(xt)

        # (name, precision, fn)
        paths: list[tuple[str, str, Callable[[], object]]] = [
            ("torch eager", "fp32", run_torch),
            ("onnxruntime", "fp32", (lambda r: lambda: r.logits(x))(OrtRunner(fp32_path))),
            ("onnxruntime", "int8", (lambda r: lambda: r.logits(x))(OrtRunner(int8_path))),
        ]
        if precision.openvino_available():
            paths.append(("openvino", "fp32", (lambda r: lambda: r.logits(x))(OvRunner(fp32_path, "f32"))))
            paths.append(("openvino", "int8", (lambda r: lambda: r.logits(x))(OvRunner(int8_path))))
            if precision.native_bf16():
                paths.append(("openvino", "bf16", (lambda r: lambda: r.logits(x))(OvRunner(fp32_path, "bf16"))))
        for _, _, fn in paths:
            for _ in range(3):
                fn()
        times: dict[tuple[str, str], list[float]] = {(n, p): [] for n, p, _ in paths}
        for i in range(args.runs):
            if i % 5 == 0:
                peak.sample()
            for name, prec, fn in paths:
                time.sleep(PAUSE_S)
                t0 = time.perf_counter()
                fn()
                times[(name, prec)].append((time.perf_counter() - t0) * 1000)
        peak.sample()

    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} usable={usable_cpus()} "
          f"torch {torch.__version__} timm {timm.__version__}")
    flags = precision.cpu_flags()
    print("cpu: " + " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
                             if f in flags) + f"; native bf16: {precision.native_bf16()}")
    print(f"model: {args.model} {input_size}, {gmac:.2f} G multiply-adds/image (FlopCounterMode)")
    if peak.lib is not None:
        print(f"peak (bench/peak_kernel.c, {peak.threads} threads, best in the run): "
              f"fp32 {peak.best['fp32'] / 1e9:.1f} G mul-add/s; int8 ({peak.int8_kind}) {peak.best['int8'] / 1e9:.1f}; "
              f"bf16 {peak.best['bf16'] / 1e9:.1f}" + ("" if peak.has_bf16 else " (no native bf16)"))
    else:
        print(f"peak: {peak.note}")
    print(f"int8 quantization (ONNX Runtime static QDQ, 13 bundled photos): {quant_s:.1f} s")
    base = statistics.median(times[("onnxruntime", "fp32")])
    print(f"{'backend':<13} {'prec':<5} {'median ms':>9} {'p10':>7} {'p90':>7} {'x ort fp32':>10} "
          f"{'G mul-add/s':>11} {'of fp32 peak':>12} {'of own peak':>11}")
    for (name, prec), ts in times.items():
        med = statistics.median(ts)
        q = statistics.quantiles(ts, n=10)
        rate = gmac / (med / 1000)
        fp32_frac = own_frac = "-"
        if peak.lib is not None and peak.best["fp32"]:
            fp32_frac = f"{rate * 1e9 / peak.best['fp32']:.0%}"
            own = peak.best.get(prec, 0.0)
            own_frac = f"{rate * 1e9 / own:.0%}" if own else "-"
        print(f"{name:<13} {prec:<5} {med:9.1f} {q[0]:7.1f} {q[-1]:7.1f} {med / base:10.2f} {rate:11.1f} "
              f"{fp32_frac:>12} {own_frac:>11}")
    fast = min((statistics.median(ts), k) for k, ts in times.items() if k[1] != "fp32")
    ratio = fast[0] / base
    print(f"fastest reduced precision: {fast[1][0]} {fast[1][1]} at {ratio:.2f}x onnxruntime fp32 "
          f"(target <= {TARGET}x): {'MET' if ratio <= TARGET else 'NOT MET'}")
    print(f"camera inference rate, batch 1: {1000 / base:.1f} -> {1000 / fast[0]:.1f} frames/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
