"""The console script as a user runs it: bad input gives one line on stderr, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def squeezelens(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squeezelens", *args], capture_output=True, text=True,
                          timeout=300, **kw)


def assert_clean_failure(proc: subprocess.CompletedProcess, code: int, message: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_unknown_tag_lists_the_tags(photo_dir: Path) -> None:
    proc = squeezelens("classify", str(photo_dir / "coffee.png"), "--model", "seresnext26d_32x4d.bogus")
    assert_clean_failure(proc, 2, "has no pretrained tag 'bogus'; its tags: bt_in1k")


def test_malformed_saved_model_config(tmp_path: Path, photo_dir: Path) -> None:
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text("[1, 2]")
    proc = squeezelens("classify", str(photo_dir / "coffee.png"), "--model", str(bad))
    assert_clean_failure(proc, 2, "cannot load this model folder")


def test_output_checked_before_any_work(tmp_path: Path, photo_dir: Path) -> None:
    proc = squeezelens("classify", str(photo_dir / "coffee.png"), "-o", str(tmp_path / "nowhere" / "r.csv"))
    assert_clean_failure(proc, 2, "does not exist")
    assert "warning" not in proc.stderr  # the model was never loaded
    proc = squeezelens("classify", str(photo_dir / "coffee.png"), "-o", str(tmp_path))
    assert_clean_failure(proc, 2, "is a folder")
    assert list(tmp_path.iterdir()) == []


def test_broken_pipe_is_quiet(photo_dir: Path, confident_weights: Path) -> None:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before we write
    with os.fdopen(w, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "squeezelens", "classify", str(photo_dir),
                               "--weights", str(confident_weights)], stdout=out, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    assert proc.returncode == 141
    assert "Traceback" not in proc.stderr


def test_weights_folder_conflicting_with_model(tmp_path: Path, photo_dir: Path) -> None:
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    torch.manual_seed(0)
    save_model(timm.create_model("seresnext26t_32x4d", num_classes=2), tmp_path / "m", ["a", "b"])
    proc = squeezelens("classify", str(photo_dir / "coffee.png"), "--weights", str(tmp_path / "m"),
                       "--model", "seresnext50_32x4d")
    assert_clean_failure(proc, 2, "holds a seresnext26t_32x4d, not a seresnext50_32x4d")
    proc = squeezelens("classify", str(photo_dir / "coffee.png"), "--weights", str(tmp_path / "m"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["top"][0]["label"] in ("a", "b")


@pytest.mark.parametrize("args", [["--help"], ["classify", "--help"], ["--version"]])
def test_help_and_version_do_not_import_torch(args: list[str]) -> None:
    code = ("import sys; from squeezelens.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'heavy import'\n")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "squeezelens" in proc.stdout


@pytest.mark.parametrize("args", [["--help"], ["classify", "--help"], ["finetune", "--help"], ["models", "--help"],
                                  ["--version"], ["classify"]])
def test_entry_point_help_imports_nothing_heavy(args: list[str]) -> None:
    """``squeezelens --help`` (the console script's own entry point) loads no torch, timm, ONNX Runtime or Qt."""
    code = ("import sys; from squeezelens.__main__ import main\n"
            "sys.argv = ['squeezelens', *sys.argv[1:]]\nmain()\n"
            "heavy = ('torch', 'timm', 'torchvision', 'onnxruntime', 'PySide6', 'shiboken6', 'superqt')\n"
            "print('heavy:', sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "squeezelens" in proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("heavy: []")
