"""CUDA check on a GPU machine: the torch runner on CUDA against the CPU, and a deep finetune on CUDA.

Run it where a GPU is (``python bench/gpu_check.py``); it needs torch with CUDA, timm, onnxruntime,
numpy, Pillow and scikit-image, not Qt. Random-weight models (no download), fixed seeds. Prints one
line per check and exits 1 if one fails. Reported in docs/PERFORMANCE.md when it was last run.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def shapes_module():
    spec = importlib.util.spec_from_file_location("shapes_dataset", ROOT / "tests" / "core" / "shapes_dataset.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    import torch
    from PIL import Image
    from skimage import data

    from squeezelens import Classifier, FinetuneConfig, finetune
    from squeezelens.core import cuda_path

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 1
    failures = 0
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, "
          f"autocast dtype {cuda_path.autocast_dtype(torch)}")
    photos = [Image.fromarray(getattr(data, n)()).convert("RGB") for n in ("astronaut", "coffee", "chelsea", "rocket")]

    gpu = Classifier.load(device="cuda", backend="torch", allow_download=False)
    cpu = Classifier.load(device="cpu", backend="torch", allow_download=False)
    t0 = time.perf_counter()
    pg = gpu.classify(photos * 8, top_k=5, batch_size=16)
    t_gpu = time.perf_counter() - t0
    pc = cpu.classify(photos, top_k=5)
    agree = sum(a.top[0].index == b.top[0].index for a, b in zip(pg, pc))
    diff = max(abs(a.top[0].prob - b.top[0].prob) for a, b in zip(pg, pc))
    ok = gpu.device == "cuda" and agree == len(pc) and diff < 0.02
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} torch on cuda vs cpu: top-1 agree {agree}/{len(pc)}, "
          f"largest top-1 prob diff {diff:.4f}, 32 images in {t_gpu:.2f} s (first call, warm-up included)")

    shapes = shapes_module()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = shapes.make_dataset(Path(tmp) / "shapes", per_class=24)
        for mode, epochs in (("quick", 20), ("deep", 2)):
            out = Path(tmp) / f"model-{mode}"
            t0 = time.perf_counter()
            result = finetune(FinetuneConfig(data_dir=data_dir, output_dir=out, mode=mode, epochs=epochs,
                                             device="cuda", allow_download=False, use_cache=False,
                                             batch_size=16, input_size=96))
            secs = time.perf_counter() - t0
            cfg = json.loads((out / "config.json").read_text())
            ok = result.device == "cuda" and (out / "model.safetensors").is_file() and cfg.get("num_classes") == 4
            ok = ok and all(np.isfinite(h.train_loss) for h in result.history)
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {mode} finetune on cuda: {len(result.history)} epochs in {secs:.1f} s, "
                  f"val accuracy {result.val_accuracy:.2f}, losses finite")
        # a GPU whose bf16 is only emulated: training must use float16 with a GradScaler, as inference does
        from squeezelens.core.finetune import last_stage

        native = torch.cuda.is_bf16_supported
        torch.cuda.is_bf16_supported = lambda including_emulation=True: including_emulation  # type: ignore[assignment]
        try:
            amp = last_stage.amp_settings("cuda")
            r16 = finetune(FinetuneConfig(data_dir=data_dir, output_dir=Path(tmp) / "model-fp16", mode="deep",
                                          epochs=1, device="cuda", allow_download=False, batch_size=16,
                                          input_size=96))
        finally:
            torch.cuda.is_bf16_supported = native  # type: ignore[assignment]
        ok = amp.dtype == torch.float16 and amp.use_scaler and all(np.isfinite(h.train_loss) for h in r16.history)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} emulated-bf16 GPU: deep finetune in {amp.dtype} with a GradScaler, "
              f"loss {r16.history[-1].train_loss:.3f}")
        reloaded = Classifier.load(str(Path(tmp) / "model-deep"), device="cuda", backend="torch", allow_download=False)
        preds = reloaded.classify(sorted((Path(data_dir)).rglob("*.png"))[:8])
        ok = all(p.ok for p in preds) and reloaded.labels == result.class_names
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} deep model reloads on cuda and classifies {len(preds)} images")
    print(f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
