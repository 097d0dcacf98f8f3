"""The ONNX export (issue 17): one self-contained file whose metadata is enough to get the app's answers.

The parity check runs the file through core/onnx_reference.py (onnxruntime + numpy + Pillow) and
compares it with the app's torch predictions; the example script in docs/ is run in a process that
must not have torch, timm or squeezelens imported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from squeezelens.core import onnx_reference
from squeezelens.core.errors import ExportError, UsageError
from squeezelens.core.model_export import (
    PARITY_ATOL,
    calibration_paths,
    check_export,
    export_model,
    format_check,
    read_export_metadata,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "classify_onnx.py"
REFERENCE = REPO / "core" / "onnx_reference.py"
UNKNOWN = {"score": "max_softmax", "threshold": 0.42, "rule": "unknown when the score is below the threshold"}


@pytest.fixture(scope="module")
def tricky_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half-transparent RGBA, grey with alpha, an EXIF-rotated JPEG and a tiny 2x3 image."""
    rng = np.random.default_rng(5)
    d = tmp_path_factory.mktemp("tricky")
    rgba = rng.integers(0, 256, (120, 90, 4), dtype=np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 90, dtype=np.uint8)[None, :]
    Image.fromarray(rgba, "RGBA").save(d / "half_transparent.png")
    Image.fromarray(rng.integers(0, 256, (70, 50, 2), dtype=np.uint8), "LA").save(d / "grey_alpha.png")
    img = Image.fromarray(rng.integers(0, 256, (60, 200, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(d / "exif_rotated.jpg", exif=exif, quality=95)
    Image.fromarray(rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)).save(d / "two_by_three.png")
    return d


@pytest.fixture(scope="module")
def icc_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photos whose colours are in their embedded ICC profile's space, not sRGB: a Display P3 JPEG (an
    iPhone's), an Adobe RGB PNG with alpha, and a CMYK JPEG with a CMYK profile."""
    import squeezelens_tests_photo_files as pf
    d = tmp_path_factory.mktemp("icc")
    pf.photo((160, 120), seed=1).save(d / "display_p3.jpg", quality=95, icc_profile=pf.profile_bytes("display_p3"))
    rgba = pf.photo((90, 130), seed=2).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.linspace(80, 255, 90, dtype=np.uint8)[None, :].repeat(130, 0)))
    rgba.save(d / "adobe_rgb_alpha.png", icc_profile=pf.profile_bytes("adobe_rgb"))
    pf.cmyk_photo((120, 100)).save(d / "cmyk_profile.jpg", quality=95, icc_profile=pf.cmyk_profile())
    return d


def _images(*folders: Path) -> list[Path]:
    return sorted(p for f in folders for p in f.iterdir())


def _run_clean(script: Path, *args: str) -> list[dict]:
    """Run ``script`` in a fresh interpreter, then assert it imported neither torch, timm nor squeezelens."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = {[str(script), *args]!r}\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'squeezelens', 'torchvision'))\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=script.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.fixture(scope="module")
def stock_export(tmp_path_factory: pytest.TempPathFactory, confident_weights: Path) -> Path:
    out = tmp_path_factory.mktemp("export") / "stock.onnx"
    export_model("seresnext26d_32x4d", out, confident_weights, allow_download=False)
    return out


@pytest.fixture(scope="module")
def stock_report(stock_export: Path, confident_weights: Path, photo_dir: Path, odd_images: Path,
                 tricky_images: Path, icc_photos: Path):
    """The parity check of the stock export on every test image (run once; two tests read it)."""
    return check_export(stock_export, [photo_dir, odd_images, tricky_images, icc_photos], "seresnext26d_32x4d",
                        confident_weights, allow_download=False)


def test_stock_export_matches_the_app(stock_report, photo_dir: Path, odd_images: Path, tricky_images: Path,
                                      icc_photos: Path) -> None:
    report = stock_report
    assert len(report.rows) == len(_images(photo_dir, odd_images, tricky_images, icc_photos))
    assert [r.error for r in report.rows] == [None] * len(report.rows)
    assert report.passed, format_check(report)
    assert report.max_diff <= PARITY_ATOL
    assert not report.quantized
    text = format_check(report)
    assert "fp32 parity PASS" in text


def test_file_is_self_contained_and_metadata_round_trips(stock_export: Path, confident_weights: Path) -> None:
    from squeezelens.core.engine import Classifier

    files = sorted(p.name for p in stock_export.parent.iterdir())
    assert files == ["stock.onnx"]  # no external-data files beside it, no temp file left
    proto = onnx.load(str(stock_export), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    meta = read_export_metadata(stock_export)
    with Classifier.load("seresnext26d_32x4d", confident_weights, backend="torch", allow_download=False) as clf:
        cfg = clf.data_config
        assert meta["squeezelens_class_names"] == clf.labels
    prep = meta["squeezelens_preprocessing"]
    assert prep["input_size"] == list(cfg["input_size"])
    assert prep["crop_size"] == list(cfg["input_size"][1:])
    assert prep["crop_pct"] == pytest.approx(cfg["crop_pct"])
    assert prep["resize_shorter_side"] == int(cfg["input_size"][1] / cfg["crop_pct"])  # 224 / 0.875 = 256
    assert prep["interpolation"] == cfg["interpolation"] == "bicubic"
    assert prep["mean"] == pytest.approx(list(cfg["mean"])) and prep["std"] == pytest.approx(list(cfg["std"]))
    assert (prep["colour"], prep["colour_space"], prep["crop_mode"]) == ("RGB", "sRGB", "center")
    assert meta["squeezelens_format"] == 1
    assert meta["squeezelens_quantization"] == {"type": "none"}
    assert meta["squeezelens_model"]["source"] == "seresnext26d_32x4d"
    assert "squeezelens_unknown" not in meta  # a catalogue model has no unknown rule
    # the same metadata as plain onnx reads it (what Netron shows)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["squeezelens_class_names"]) == meta["squeezelens_class_names"]


def test_check_defaults_to_the_model_recorded_in_the_file(stock_export: Path, icc_photos: Path,
                                                           stock_report) -> None:
    """Without a model, the check loads the source and weights file the export recorded: the same answers."""
    one = icc_photos / "display_p3.jpg"
    ours = check_export(stock_export, [one], allow_download=False)  # model and weights: as recorded in the file
    assert ours.passed and ours.model == stock_report.model
    app = {r.path: r.app_top for r in stock_report.rows}
    for row in ours.rows:  # the same model and weights (the app batches differently: float noise only)
        assert [i for i, _ in row.app_top] == [i for i, _ in app[row.path]]
        assert [p for _, p in row.app_top] == pytest.approx([p for _, p in app[row.path]], abs=1e-6)


def test_example_script_classifies_without_torch_timm_or_squeezelens(stock_export: Path, photo_dir: Path,
                                                                      tricky_images: Path, icc_photos: Path,
                                                                      stock_report) -> None:
    images = [str(p) for p in _images(photo_dir, tricky_images, icc_photos)]
    by_path = {r.path: r for r in stock_report.rows}
    checks = [by_path[p] for p in images]
    for script in (EXAMPLE, REFERENCE):
        rows = _run_clean(script, str(stock_export), *images)
        assert [r["path"] for r in rows] == images
        for row, check in zip(rows, checks):
            assert [t["index"] for t in row["top"]] == [i for i, _ in check.file_top], script.name
            assert [t["prob"] for t in row["top"]] == pytest.approx([p for i, p in check.app_top], abs=PARITY_ATOL)


@pytest.fixture()
def small_finetuned(tmp_path: Path) -> Path:
    """A finetuned-style model folder (3 classes, 96 px input) of timm's test_resnet: what is tested is
    the folder (labels, input size, unknown rule), not the architecture, so a small network will do."""
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    torch.manual_seed(3)
    net = timm.create_model("test_resnet", num_classes=3, pretrained_cfg_overlay={"input_size": (3, 96, 96)})
    with torch.no_grad():
        net.get_classifier().weight.mul_(30)
    return save_model(net, tmp_path / "saved", ["robin", "wren", "owl"])


def test_finetuned_export_carries_unknown_rule_and_matches(tmp_path: Path, small_finetuned: Path, photo_dir: Path,
                                                           odd_images: Path, icc_photos: Path) -> None:
    model = tmp_path / "birds"
    shutil.copytree(small_finetuned, model)
    config = json.loads((model / "config.json").read_text())
    config["squeezelens_unknown"] = UNKNOWN
    (model / "config.json").write_text(json.dumps(config))
    out = tmp_path / "birds.onnx"
    summary = export_model(str(model), out)
    assert summary.num_classes == 3 and summary.quantize is None
    meta = read_export_metadata(out)
    assert meta["squeezelens_unknown"] == UNKNOWN
    assert meta["squeezelens_class_names"] == ["robin", "wren", "owl"]
    assert meta["squeezelens_preprocessing"]["input_size"] == [3, 96, 96]
    assert meta["squeezelens_model"]["source"] == str(model.resolve())
    report = check_export(out, [photo_dir, odd_images, icc_photos], allow_download=False)
    assert report.passed and len(report.compared) == len(report.rows), format_check(report)


def test_int8_export_reports_agreement(tmp_path: Path, tiny_dir: Path, photo_dir: Path, odd_images: Path) -> None:
    out = tmp_path / "tiny-int8.onnx"
    summary = export_model(str(tiny_dir), out, quantize="int8", calibration=[photo_dir])
    assert summary.quantize == "int8" and summary.calibration_images == len(_images(photo_dir))
    meta = read_export_metadata(out)
    assert meta["squeezelens_quantization"]["type"] == "int8"
    assert meta["squeezelens_quantization"]["calibration_images"] == len(_images(photo_dir))
    proto = onnx.load(str(out))
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    report = check_export(out, [photo_dir, odd_images], allow_download=False)
    assert report.quantized and report.passed
    assert report.top1_agreement >= 0.5
    assert 0 < report.max_diff < 0.2
    text = format_check(report)
    assert "top-1 agreement" in text and "largest probability difference" in text


def test_calibration_defaults_to_the_finetune_dataset(tmp_path: Path, shapes_module) -> None:
    data = shapes_module.make_dataset(tmp_path / "data", per_class=20, size=32)
    config = {"squeezelens_finetune": {"data_dir": str(data)}}
    found = calibration_paths(None, config)
    assert len(found) == 64
    assert {p.parent.name for p in found} == set(shapes_module.CLASSES)  # spread over every class
    with pytest.raises(UsageError, match="calibration"):
        calibration_paths(None, {})
    with pytest.raises(UsageError, match="calibration"):
        calibration_paths(None, {"squeezelens_finetune": {"data_dir": str(tmp_path / "gone")}})


def test_quantize_without_calibration_images_is_refused_before_exporting(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.onnx"
    with pytest.raises(UsageError, match="--calibration"):
        export_model(str(tiny_dir), out, quantize="int8")
    with pytest.raises(UsageError, match="quantization"):
        export_model(str(tiny_dir), out, quantize="int4")
    assert not out.exists()


def test_a_foreign_onnx_file_is_refused(tmp_path: Path, tiny_dir: Path) -> None:
    export_model(str(tiny_dir), tmp_path / "tiny.onnx")
    proto = onnx.load(str(tmp_path / "tiny.onnx"))
    del proto.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save(proto, str(foreign))
    with pytest.raises(ExportError, match="not a SqueezeLens export"):
        read_export_metadata(foreign)
    with pytest.raises(ExportError, match="cannot open"):
        read_export_metadata(tmp_path / "missing.onnx")


def test_reference_reads_colour_profiles_as_the_app_does(icc_photos: Path) -> None:
    """The file's metadata says sRGB: the reference converts an embedded ICC profile exactly as the app's
    loader (core/colour.py) does, and those pixels are not the unconverted ones (so the check can fail)."""
    from squeezelens.core.images import open_image

    for path in _images(icc_photos):
        ref = np.asarray(onnx_reference.load_rgb(str(path)))
        assert np.array_equal(ref, np.asarray(open_image(path, colour_manage=True))), path.name
        assert np.abs(ref.astype(int) - np.asarray(open_image(path, colour_manage=False), int)).mean() > 2, path.name


def test_reference_reads_high_bit_depth_images_as_the_app_does(tmp_path: Path) -> None:
    """16-bit PNGs, a 12-bit TIFF (MaxSampleValue 4095 in 16-bit samples) and float TIFFs: the reference
    scales them to 8 bits exactly as the app's loader does; Pillow's own convert("RGB") clips them."""
    from squeezelens.core.images import open_image

    ramp = np.linspace(0, 1, 48 * 40).reshape(40, 48)
    files = {
        "deep16.png": (Image.fromarray((ramp * 65535).astype(np.uint16)), {}),
        "camera12.tiff": (Image.fromarray((ramp * 4095).astype(np.uint16)), {"tiffinfo": {281: 4095}}),
        "unit_float.tiff": (Image.fromarray(ramp.astype(np.float32), "F"), {}),
        "wide_float.tiff": (Image.fromarray((ramp * 300 - 20).astype(np.float32), "F"), {}),
    }
    for name, (img, kwargs) in files.items():
        path = tmp_path / name
        img.save(path, **kwargs)
        ref = np.asarray(onnx_reference.load_rgb(str(path)))
        assert np.array_equal(ref, np.asarray(open_image(path))), name
        assert ref.max() - ref.min() > 200, name  # the ramp spans the range, not clipped to white or black


def test_reference_refuses_what_it_cannot_reproduce() -> None:
    img = Image.new("RGB", (10, 10))
    with pytest.raises(ValueError, match="crop_mode"):
        onnx_reference.preprocess(img, {"crop_mode": "squash"})


def test_export_reuses_the_graph_the_app_verified(tiny_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from squeezelens.core import onnx_export
    from squeezelens.core.engine import Classifier

    Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime").close()  # the app's graph, cached

    def no_export(*a, **k):
        raise AssertionError("exported a second graph of the same model")

    monkeypatch.setattr(onnx_export, "export_onnx", no_export)
    summary = export_model(str(tiny_dir), tmp_path / "tiny.onnx")
    assert summary.path.is_file() and summary.num_classes == 4
