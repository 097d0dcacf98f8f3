"""``squeezelens export`` and ``squeezelens explain`` (issue 17): files written, checks printed, exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from squeezelens import cli


@pytest.fixture()
def tiny_model(tmp_path: Path) -> Path:
    """timm's test_resnet (4 classes) saved the SqueezeLens way: exports and explains in a fraction of a second."""
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    torch.manual_seed(1)
    net = timm.create_model("test_resnet", num_classes=4)
    with torch.no_grad():
        net.get_classifier().weight.mul_(20)
    return save_model(net, tmp_path / "tiny", ["ant", "bee", "cow", "doe"])


@pytest.fixture()
def rotated_jpeg(tmp_path: Path) -> Path:
    """Stored 200 x 60, EXIF orientation 6: a viewer shows it 60 wide and 200 high."""
    rng = np.random.default_rng(3)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(rng.integers(0, 256, (60, 200, 3), dtype=np.uint8)).save(path, exif=exif)
    return path


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_then_check(capsys, tiny_model: Path, tmp_path: Path, photo_dir: Path, rotated_jpeg: Path) -> None:
    out_file = tmp_path / "tiny.onnx"
    code, out, err = run(capsys, "export", str(tiny_model), "--output", str(out_file), "--check", str(photo_dir),
                         str(rotated_jpeg))
    assert code == 0, err
    assert out_file.is_file() and f"wrote {out_file}" in err and "4 classes, float32" in err
    assert "fp32 parity PASS: 6/6 images with the same top-5" in out
    # check an existing file; the model comes from the file's metadata
    code, out, _ = run(capsys, "export", "--output", str(out_file), "--check-only", "--check", str(rotated_jpeg))
    assert code == 0 and "fp32 parity PASS: 1/1" in out
    # the spelling: the exported file in MODEL's place
    code, out, err = run(capsys, "export", str(out_file), "--check", str(rotated_jpeg))
    assert code == 0 and "fp32 parity PASS: 1/1" in out, err
    assert "wrote" not in err  # checked, not written again
    code, _, err = run(capsys, "export", str(out_file))
    assert code == 2 and "already an exported file: check it with --check" in err
    code, _, err = run(capsys, "export", str(out_file), "--output", str(tmp_path / "again.onnx"), "--check",
                       str(rotated_jpeg))
    assert code == 2 and "only checked" in err and not (tmp_path / "again.onnx").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--check-only"], "--check-only needs images"),
    (["--calibration", "x.jpg"], "--calibration is for --quantize"),
])
def test_export_usage_errors(capsys, tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = run(capsys, "export", "--output", str(tmp_path / "m.onnx"), *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_export_needs_an_output_unless_model_is_an_exported_file(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "export", str(tmp_path / "folder"))
    assert code == 2 and "--output FILE is required" in err and "Traceback" not in err


def test_explain_npy_and_png_have_the_upright_size(capsys, tiny_model: Path, tmp_path: Path,
                                                   rotated_jpeg: Path) -> None:
    npy = tmp_path / "heat.npy"
    code, _, err = run(capsys, "explain", str(rotated_jpeg), "--model", str(tiny_model), "--output", str(npy),
                       "--class", "cow")
    assert code == 0, err
    heat = np.load(npy)
    assert heat.shape == (200, 60) and heat.dtype == np.float32  # H x W as shown, EXIF applied
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    assert "cow (class 2" in err
    png = tmp_path / "heat.png"
    code, _, err = run(capsys, "explain", str(rotated_jpeg), "--model", str(tiny_model), "-o", str(png))
    assert code == 0, err
    with Image.open(png) as im:
        assert im.size == (60, 200) and im.mode == "RGB"


def test_explain_errors_are_one_line(capsys, tiny_model: Path, tmp_path: Path, rotated_jpeg: Path) -> None:
    code, _, err = run(capsys, "explain", str(rotated_jpeg), "--model", str(tiny_model), "-o",
                       str(tmp_path / "h.png"), "--class", "zebra")
    assert code == 2 and "no class named 'zebra'" in err
    code, _, err = run(capsys, "explain", str(tmp_path / "missing.jpg"), "--model", str(tiny_model), "-o",
                       str(tmp_path / "h.png"))
    assert code != 0 and "file not found" in err and "Traceback" not in err
    assert not (tmp_path / "h.png").exists()
