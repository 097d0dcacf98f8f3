"""Quick-mode finetuning against (a) extracting the same features once and (b) a plain timm head loop.

For N images (default 200: 4 classes x 50 coloured shapes/textures, 256x256 PNG, from
``tests/core/shapes_dataset.py``) with seresnext26d_32x4d at its own input size (224):

- **extract once**: a bare loop that decodes, preprocesses (timm eval transform) and runs
  ``forward_features`` + pooling over every image once, in batches: the floor for any method that
  looks at each image at least once.
- **quick, cold cache**: ``squeezelens.core.finetune.finetune(mode="quick", epochs=E)`` into an empty
  feature cache, whole call (scan, model load, extraction, head training, evaluation, atomic save).
  Target: at most 20% over *extract once*.
- **quick, warm cache**: the same call again (every feature comes from the cache).
- **plain timm loop**: a frozen timm model with a new head, E epochs, each epoch a full forward pass
  over the training images (backward into the head only) and over the validation images.
  Target: quick mode at least 5x faster for E = 10.

Run:  python bench/finetune.py [--images 200] [--epochs 10] [--repeats 3] [--input-size N] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import PIL
import timm
import torch

ROOT = Path(__file__).resolve().parents[1]


def _shapes():
    spec = importlib.util.spec_from_file_location("shapes_dataset", ROOT / "tests" / "core" / "shapes_dataset.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extract_once(arch: str, scan, input_size: int | None, batch_size: int) -> float:
    """Seconds to decode, preprocess and run the backbone once over every image (model load excluded)."""
    from squeezelens.core.feature_cache import extract_features
    from squeezelens.core.finetune.run import pretrained_cfg_at_size
    from squeezelens.core.model_loader import load_model
    from squeezelens.core.preprocess import data_config, eval_transform, fast_decode_min_side

    model = load_model(arch, allow_download=False).model.eval()
    model.pretrained_cfg = pretrained_cfg_at_size(model, input_size)
    dcfg = data_config(model)
    tf = eval_transform(dcfg)
    paths = [s.path for s in scan.train + scan.val]
    t0 = time.perf_counter()
    feats = extract_features(model, paths, tf, None, batch_size=batch_size, decode_min_side=fast_decode_min_side(dcfg))
    dt = time.perf_counter() - t0
    assert len(feats.ok) == len(paths)
    return dt


def plain_timm_loop(arch: str, scan, input_size: int | None, batch_size: int, epochs: int) -> tuple[float, float]:
    """A frozen timm model with a new head, trained for ``epochs`` with full forward passes.

    Returns (seconds, final validation accuracy).
    """
    from PIL import Image

    torch.manual_seed(0)
    model = timm.create_model(arch, num_classes=scan.num_classes)
    dcfg = timm.data.resolve_data_config({"input_size": (3, input_size, input_size)} if input_size else {},
                                         model=model)
    tf = timm.data.create_transform(**dcfg)

    class Files(torch.utils.data.Dataset):
        def __init__(self, samples):
            self.samples = samples

        def __len__(self):
            return len(self.samples)

        def __getitem__(self, i):
            s = self.samples[i]
            return tf(Image.open(s.path).convert("RGB")), s.label

    train = torch.utils.data.DataLoader(Files(scan.train), batch_size=batch_size, shuffle=True)
    val = torch.utils.data.DataLoader(Files(scan.val), batch_size=batch_size)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.get_classifier().parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(model.get_classifier().parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    acc = 0.0
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for x, y in train:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = n = 0
        with torch.no_grad():
            for x, y in val:
                correct += int((model(x).argmax(1) == y).sum())
                n += len(y)
        acc = correct / n
    return time.perf_counter() - t0, acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200, help="images in all (4 classes)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--input-size", type=int, default=None, help="square input size (default: the model's, 224)")
    ap.add_argument("--image-size", type=int, default=256, help="side of the generated images")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--arch", default="seresnext26d_32x4d")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of extract-once and quick (cold)")
    ap.add_argument("--skip-plain", action="store_true", help="skip the (slow) plain timm loop")
    args = ap.parse_args()

    from squeezelens.core.dataset_scan import scan_dataset
    from squeezelens.core.finetune import FinetuneConfig, finetune

    print(f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), timm {timm.__version__}, Pillow {PIL.__version__}, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ["SQUEEZELENS_CACHE_DIR"] = str(base / "cache")
        per_class = args.images // 4
        data = _shapes().make_dataset(base / "data", per_class=per_class, size=args.image_size)
        scan = scan_dataset(data)
        n = len(scan.train) + len(scan.val)
        print(f"{n} images ({len(scan.train)} train, {len(scan.val)} val), {args.arch}, "
              f"input {args.input_size or 'model default'}, batch {args.batch_size}, {args.epochs} epochs\n")

        # warm-up: first model creation and first forward pass pay one-off costs
        extract_once(args.arch, scan_dataset(data, val_split=0.5), args.input_size, args.batch_size)

        # alternate the two so that drift in machine load hits both alike; medians reported
        once, colds, runs = [], [], []
        for i in range(args.repeats):
            once.append(extract_once(args.arch, scan, args.input_size, args.batch_size))
            cfg = FinetuneConfig(data, base / "model", model=args.arch, mode="quick", epochs=args.epochs,
                                 patience=args.epochs, input_size=args.input_size, batch_size=args.batch_size,
                                 device="cpu", allow_download=False, feature_cache_dir=base / f"features{i}")
            t0 = time.perf_counter()
            cold = finetune(cfg)
            colds.append(time.perf_counter() - t0)
            assert cold.cache_misses == n, cold.cache_misses
            runs.append(cold)
        t0 = time.perf_counter()
        warm = finetune(cfg)
        warm_s = time.perf_counter() - t0
        assert warm.cache_hits == n and warm.cache_misses == 0
        once_s, cold_s = statistics.median(once), statistics.median(colds)
        cold = runs[colds.index(sorted(colds)[len(colds) // 2])] if len(colds) % 2 else runs[-1]

        def fmt(xs: list[float]) -> str:
            return ", ".join(f"{x:.2f}" for x in xs)

        print("| run | seconds (median) | runs |")
        print("|---|---|---|")
        print(f"| extract features once (bare loop) | {once_s:.2f} | {fmt(once)} |")
        print(f"| quick mode, cold cache (whole call) | {cold_s:.2f} | {fmt(colds)} |")
        t = cold.timings
        print(f"| quick mode, warm cache (whole call) | {warm_s:.2f} | |")
        print(f"\none cold run: scan {t['scan']:.2f}, load {t['load']:.2f}, features {t['features']:.2f}, "
              f"head training {t['train']:.3f}, save {t['save']:.2f} s")
        print(f"quick (cold) over extract-once: {(cold_s / once_s - 1) * 100:+.1f}% (target < +20%)")
        print(f"quick val accuracy {cold.val_accuracy:.1%} after {len(cold.history)} epochs")
        if not args.skip_plain:
            plain_s, plain_acc = plain_timm_loop(args.arch, scan, args.input_size, args.batch_size, args.epochs)
            print(f"| plain timm loop, {args.epochs} epochs of full forward passes | {plain_s:.2f} |")
            print(f"\nplain loop / quick (cold): {plain_s / cold_s:.1f}x (target >= 5x); "
                  f"plain / quick (warm): {plain_s / warm_s:.0f}x; plain loop val accuracy {plain_acc:.1%}")


if __name__ == "__main__":
    sys.exit(main())
