"""``classify --unknown-threshold``: the model's calibrated threshold, a user's number, ``off``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch

from squeezelens import cli
from squeezelens.core.saved_model import save_model
from squeezelens.core.unknown import CONFIG_KEY, UnknownCalibration


@pytest.fixture()
def calibrated_dir(tmp_path: Path) -> Path:
    """A tiny timm model whose saved calibration flags everything (threshold 1.0: no top-1 prob is above it)."""
    import timm

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=3)
    extra = {CONFIG_KEY: UnknownCalibration(1.0, val_correct=10, val_total=10).to_config()}
    return save_model(net, tmp_path / "m", ["ant", "bee", "cow"], extra_config=extra)


def _json(capsys, *args: str) -> tuple[int, list[dict], str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip().startswith("[") else []), err + out


def test_calibrated_threshold_applies_and_can_be_overridden(capsys, calibrated_dir: Path, photo_dir: Path) -> None:
    img = str(photo_dir / "coffee.png")
    base = ["classify", img, "--model", str(calibrated_dir), "--backend", "torch", "--device", "cpu", "--offline"]
    code, rows, _ = _json(capsys, *base, "--format", "json")
    assert code == 0 and rows[0]["unknown"] is True
    code, rows, _ = _json(capsys, *base, "--format", "json", "--unknown-threshold", "0")
    assert rows[0]["unknown"] is False
    code, rows, _ = _json(capsys, *base, "--format", "json", "--unknown-threshold", "off")
    assert "unknown" not in rows[0]
    assert cli.main([*base, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["unknown"] for r in table} == {"true"}
    assert cli.main(base) == 0
    assert "Unknown \u2014 none of your classes (closest: " in capsys.readouterr().out


def test_bad_threshold_is_usage_error(capsys, calibrated_dir: Path, photo_dir: Path) -> None:
    code = cli.main(["classify", str(photo_dir / "coffee.png"), "--model", str(calibrated_dir),
                     "--unknown-threshold", "lots"])
    assert code == 2
    assert "unknown threshold must be a number" in capsys.readouterr().err
