"""Which score flags images of an unseen kind best: maximum softmax probability (MSP) or energy?

A quick-mode model is finetuned on 3 kinds of generated shapes/textures (``tests/core/shapes_dataset.py``,
seresnext26d_32x4d, random-init backbone with its head scaled as the tests do, or the cached
pretrained weights with ``--pretrained``). Each score is calibrated on the validation set with the
same rule (keep 95% of correct validation predictions, :mod:`squeezelens.core.unknown`), then
measured on held-out images of the 3 known kinds (should NOT be flagged) and of the fourth kind
(should be flagged). Also prints the AUROC of each score (known vs unseen), which does not depend
on the rule.

Run:  python bench/unknown_scores.py [--per-class 40] [--held-out 40] [--size 64] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image

from squeezelens.core.finetune import FinetuneConfig, finetune
from squeezelens.core.unknown import energy_score, msp_score, threshold_keeping

ROOT = Path(__file__).resolve().parents[1]
ARCH = "seresnext26d_32x4d"


def _shapes():
    spec = importlib.util.spec_from_file_location("shapes_dataset", ROOT / "tests" / "core" / "shapes_dataset.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _logits(model_dir: Path, files: list[Path]) -> np.ndarray:
    model = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()
    dcfg = timm.data.resolve_data_config({}, model=model)
    tf = timm.data.create_transform(**dcfg)
    with torch.no_grad():
        return model(torch.stack([tf(Image.open(f).convert("RGB")) for f in files])).numpy()


def _auroc(known: np.ndarray, unseen: np.ndarray) -> float:
    """P(score of a known image > score of an unseen one), ties count half."""
    k, u = known[:, None], unseen[None, :]
    return float(((k > u).sum() + 0.5 * (k == u).sum()) / (known.size * unseen.size))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--held-out", type=int, default=40)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--unseen", default="red_circles", help="the kind left out of training")
    args = ap.parse_args()
    shapes = _shapes()
    unseen_kind = args.unseen
    known_kinds = tuple(k for k in shapes.CLASSES if k != unseen_kind)
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            torch.manual_seed(seed)
            net = timm.create_model(ARCH)
            sd = net.state_dict()
            sd["fc.weight"] = sd["fc.weight"] * 100.0
            from safetensors.torch import save_file
            save_file({k: v.contiguous() for k, v in sd.items()}, str(t / "w.safetensors"))
            data = shapes.make_dataset(t / "data", args.per_class, args.size, seed=seed, classes=known_kinds)
            held = shapes.make_dataset(t / "held", args.held_out, args.size, seed=seed + 100,
                                       classes=(*known_kinds, unseen_kind))
            res = finetune(FinetuneConfig(data, t / "model", model=ARCH, weights=t / "w.safetensors",
                                          input_size=args.size, device="cpu", allow_download=False,
                                          feature_cache_dir=t / "cache"))
            val_files = [p.path for p in res.val_predictions]
            correct = np.array([p.correct for p in res.val_predictions])
            val = _logits(t / "model", val_files)
            known_files = sorted(f for k in known_kinds for f in (held / k).iterdir())
            unseen_files = sorted((held / unseen_kind).iterdir())
            kl, ul = _logits(t / "model", known_files), _logits(t / "model", unseen_files)
            print(f"seed {seed}: val accuracy {res.val_accuracy:.1%} ({correct.sum()}/{correct.size})")
            for name, fn in (("msp", msp_score), ("energy", energy_score)):
                thr = threshold_keeping(fn(val)[correct])
                ks, us = fn(kl), fn(ul)
                print(f"  {name:6s} threshold {thr:8.4f}  known kept {np.mean(ks >= thr):6.1%}  "
                      f"unseen flagged {np.mean(us < thr):6.1%}  AUROC {_auroc(ks, us):.3f}")


if __name__ == "__main__":
    main()
