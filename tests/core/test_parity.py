"""`squeezelens classify --no-fast-decode --no-colour-management --backend torch` against the model
card's own snippet (the seed-parity contract: timm's pixels exactly)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

ARCH = "seresnext26d_32x4d"


def seed_snippet_top5(weights: Path, paths: list[Path]) -> list[tuple[list[int], list[float]]]:
    """The seed model card's code, with the pretrained file given explicitly."""
    import timm
    from timm.data import resolve_data_config
    from timm.data.transforms_factory import create_transform

    model = timm.create_model(ARCH, pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
    model.eval()
    config = resolve_data_config({}, model=model)
    transform = create_transform(**config)
    out = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        tensor = transform(img).unsqueeze(0)
        with torch.no_grad():
            logits = model(tensor)
        probabilities = torch.nn.functional.softmax(logits[0], dim=0)
        top5_prob, top5_catid = torch.topk(probabilities, 5)
        out.append((top5_catid.tolist(), top5_prob.tolist()))
    return out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squeezelens", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_matches_seed_snippet(confident_weights: Path, photo_dir: Path, odd_images: Path) -> None:
    proc = run_cli("classify", str(photo_dir), str(odd_images), "--weights", str(confident_weights),
                   "--no-fast-decode", "--no-colour-management", "--backend", "torch", "--device", "cpu",
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    paths = [Path(r["path"]) for r in results]
    assert len(paths) == 12  # 5 photos + 7 odd images, folders walked in sorted order
    assert paths[:5] == sorted(photo_dir.iterdir())
    assert paths[5:] == sorted(odd_images.iterdir())

    expected = seed_snippet_top5(confident_weights, paths)
    for r, (idx, probs) in zip(results, expected):
        assert r["untrained"] is False
        assert [t["index"] for t in r["top"]] == idx, r["path"]
        assert [t["prob"] for t in r["top"]] == pytest.approx(probs, abs=1e-5), r["path"]
    # the weights are confident enough for the comparison to mean something
    assert max(p[0] for _, p in expected) > 0.05
