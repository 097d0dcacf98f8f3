"""Precision modes: a mode that disagrees with fp32 is refused and ``auto`` falls back to fp32; int8
is verified once per model and cached next to the graph, and a cached int8 start never imports
torch; bf16 is offered only where the CPU has it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from squeezelens.core import precision
from squeezelens.core.engine import Classifier
from squeezelens.core.errors import ExportError
from squeezelens.core.quantize import quantize_int8
from squeezelens.core.runners import OrtRunner


class PerturbingRunner(OrtRunner):
    """A deliberately broken reduced-precision mode: the fp32 graph with noise added to its logits."""

    def logits(self, batch: np.ndarray) -> np.ndarray:
        out = super().logits(batch)
        return out + np.random.default_rng(len(batch)).normal(0, 3.0, out.shape).astype(np.float32)


def broken_opener(graph_path: Path, mode: str, transform, extra_photos=()) -> tuple[OrtRunner, str]:
    return PerturbingRunner(graph_path), "broken"


def verdicts_of(clf: Classifier) -> dict:
    from squeezelens.core import graph_cache

    (key,) = [p for p in graph_cache.cache_dir("onnx").iterdir() if (p / "model.onnx").is_file()]
    return json.loads((key / precision.VERDICT_FILE).read_text())


def test_broken_mode_is_refused_and_auto_falls_back(tiny_dir: Path, photo_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    exact = Classifier.load(str(tiny_dir), device="cpu", precision="fp32", export="wait")
    expected = exact.classify(sorted(photo_dir.iterdir()), top_k=4)
    monkeypatch.setattr(precision, "native_int8", lambda: True)
    monkeypatch.setattr(precision, "open_mode", broken_opener)

    clf = Classifier.load(str(tiny_dir), device="cpu", precision="auto", export="wait")
    assert clf.precision == "fp32" and clf.backend == "onnxruntime"
    assert "int8 refused for this model" in clf.precision_note
    got = clf.classify(sorted(photo_dir.iterdir()), top_k=4)
    assert [[t.index for t in p.top] for p in got] == [[t.index for t in p.top] for p in expected]
    verdict = verdicts_of(clf)["int8/broken"]  # the verdict is cached with its numbers
    assert verdict["passed"] is False and verdict["images"] == 8 * len(precision.photo_paths())
    assert verdict["agreement"] < precision.MIN_AGREEMENT or verdict["max_prob_diff"] > precision.MAX_PROB_DIFF

    # asked for explicitly: still refused (results stay right), with the reason
    explicit = Classifier.load(str(tiny_dir), device="cpu", precision="int8", export="wait")
    assert explicit.precision == "fp32" and "refused" in explicit.precision_note


def test_int8_is_verified_cached_and_starts_without_torch(tiny_dir: Path, photo_dir: Path) -> None:
    fp32 = Classifier.load(str(tiny_dir), device="cpu", precision="fp32", export="wait")
    clf = Classifier.load(str(tiny_dir), device="cpu", precision="int8", export="wait")
    assert clf.precision == "int8", clf.precision_note
    assert clf.backend == precision.int8_engine() and clf.backend_note.endswith(", int8")
    graph_dir = Path(clf._runner.path).parent  # type: ignore[attr-defined]
    assert (graph_dir / precision.INT8_FILE).is_file()
    verdict = verdicts_of(clf)[f"int8/{precision.int8_engine()}"]
    assert verdict["passed"] and verdict["agreement"] >= 0.99 and verdict["max_prob_diff"] <= 0.02
    photos = sorted(photo_dir.iterdir())
    a, b = fp32.classify(photos, top_k=1), clf.classify(photos, top_k=1)
    assert [p.top[0].index for p in a] == [p.top[0].index for p in b]
    # JSON marks reduced-precision timings (issue 19), fp32 records keep their old fields only
    assert {p.precision for p in b} == {"int8"} and b[0].to_dict()["precision"] == "int8"
    assert {p.precision for p in a} == {None} and "precision" not in a[0].to_dict()

    # a new process: the cached int8 graph and verdict are used as they are, without torch
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "squeezelens", "classify", str(photos[0]),
         "--model", str(tiny_dir), "--top-k", "2", "--precision", "int8"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert "torch" not in imported and "timm" not in imported
    assert "onnxruntime.quantization" not in imported  # nothing was quantized again
    assert "(times in int8" in proc.stdout and "reduced precision" in proc.stdout  # the table marks its timings


def test_bf16_only_where_the_cpu_has_it(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))  # like this AMD VM
    assert "bf16" not in precision.candidates("auto")
    assert "native bf16" in (precision.not_native_reason("bf16") or "")
    clf = Classifier.load(str(tiny_dir), device="cpu", precision="bf16", export="wait")
    assert clf.precision == "fp32" and "no native bf16" in clf.precision_note

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16", "avx512_vnni"}))
    monkeypatch.setattr(precision, "openvino_available", lambda: True)
    assert precision.candidates("auto") == ["int8", "bf16"]
    monkeypatch.setattr(precision, "openvino_available", lambda: False)
    assert precision.candidates("auto") == ["int8"]  # bf16 needs OpenVINO
    assert precision.candidates("fp32") == []


def test_quantize_needs_calibration_images(tmp_path: Path, tiny_dir: Path) -> None:
    Classifier.load(str(tiny_dir), device="cpu", precision="fp32", export="wait")
    from squeezelens.core import graph_cache

    (graph,) = [p / "model.onnx" for p in graph_cache.cache_dir("onnx").iterdir() if (p / "model.onnx").is_file()]
    with pytest.raises(ExportError, match="calibration"):
        quantize_int8(graph, tmp_path / "int8.onnx", [])
    assert not (tmp_path / "int8.onnx").exists()


def test_a_finetuned_models_validation_images_join_the_fidelity_check(tiny_dir: Path, photo_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    own = sorted(photo_dir.iterdir())[:3]
    damaged = tiny_dir.parent / "damaged.jpg"
    damaged.write_bytes(b"\xff\xd8 not really a JPEG")
    cfg_path = tiny_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["squeezelens_finetune"] = {"data_dir": str(photo_dir), precision.MODEL_PHOTOS_KEY:
                                   [str(p) for p in own] + [str(damaged), str(tiny_dir / "gone.jpg")]}
    cfg_path.write_text(json.dumps(cfg))
    assert precision.model_photos(tiny_dir) == sorted([*own, damaged])  # a file that is gone is not listed
    monkeypatch.setattr(precision, "native_int8", lambda: True)
    monkeypatch.setattr(precision, "open_mode", broken_opener)

    clf = Classifier.load(str(tiny_dir), device="cpu", precision="auto", export="wait")
    assert clf.fidelity_photos == sorted([*own, damaged])
    # 13 bundled photos and the model's 3 readable ones, 8 views each; the damaged one left out, not fatal
    assert verdicts_of(clf)["int8/broken"]["images"] == 8 * (len(precision.photo_paths()) + 3)
    assert clf.precision == "fp32" and "int8 refused for this model" in clf.precision_note


def test_model_photos_of_a_model_finetuned_before_the_list(tmp_path: Path, photo_dir: Path) -> None:
    data = tmp_path / "data"
    (data / "val" / "cat").mkdir(parents=True)
    for i, p in enumerate(sorted(photo_dir.iterdir())):
        (data / "val" / "cat" / f"{i:02d}{p.suffix}").write_bytes(p.read_bytes())
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"squeezelens_finetune": {"data_dir": str(data)}}))
    got = precision.model_photos(model)
    assert got and all(p.parent == data / "val" / "cat" for p in got)
    assert len(got) == min(precision.MAX_MODEL_PHOTOS, len(list(photo_dir.iterdir())))
    assert precision.model_photos(tmp_path / "no-such-model") == [] and precision.model_photos(None) == []
    spread = precision.pick_spread([Path(f"{i:03d}") for i in range(100)], 4)
    assert spread == [Path(f"{i:03d}") for i in (0, 25, 50, 75)]


def test_int8_is_calibrated_on_the_models_own_validation_images_too(tiny_dir: Path, photo_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    own = sorted(photo_dir.iterdir())[:3]
    cfg_path = tiny_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["squeezelens_finetune"] = {precision.MODEL_PHOTOS_KEY: [str(p) for p in own]}
    cfg_path.write_text(json.dumps(cfg))
    seen: list[int] = []

    def recording_quantizer(src: Path, dst: Path, calibration) -> None:
        seen.append(len(list(calibration)))
        raise ExportError("stopped after calibration")  # no real quantization: only what it was given matters

    monkeypatch.setattr(precision, "native_int8", lambda: True)
    monkeypatch.setattr(precision, "quantize_int8_fn", lambda: recording_quantizer)
    clf = Classifier.load(str(tiny_dir), device="cpu", precision="int8", export="wait")
    assert seen == [len(precision.photo_paths()) + 3]  # one view of each bundled photo and each of the model's
    assert clf.precision == "fp32" and "stopped after calibration" in clf.precision_note
