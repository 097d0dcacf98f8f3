"""ONNX export: a failed or disagreeing export falls back to torch; a background export serves torch
first, switches between batches, and its thread can be joined."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from squeezelens.core import onnx_export
from squeezelens.core.engine import Classifier
from squeezelens.core.errors import ExportError

REAL_EXPORT = onnx_export.export_onnx


def test_export_failure_falls_back_to_torch(tiny_dir: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture, graphs) -> None:
    def failing_export(*a, **k):
        raise ExportError("TorchScript exporter: RuntimeError: unsupported operator")

    monkeypatch.setattr(onnx_export, "export_onnx", failing_export)
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        clf = Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    assert clf.backend == "torch"
    assert "unsupported operator" in caplog.text and "running on torch" in caplog.text
    assert "ONNX Runtime unavailable" in clf.backend_note
    assert clf.classify([photo_dir / "coffee.png"])[0].ok
    assert graphs() == []

    # a graph that exports but disagrees with torch is refused the same way
    monkeypatch.setattr(onnx_export, "export_onnx", REAL_EXPORT)
    monkeypatch.setattr(onnx_export, "VERIFY_ATOL", -1.0)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        clf = Classifier.load(str(tiny_dir), device="cpu", export="wait")
    assert clf.backend == "torch" and "disagrees with torch" in caplog.text
    assert graphs() == []


def test_background_export_serves_torch_then_switches(tiny_dir: Path, photo_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch, all_probs) -> None:
    release = threading.Event()
    real = onnx_export.export_graph

    def gated_export(*a, **k):
        assert release.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(onnx_export, "export_graph", gated_export)
    clf = Classifier.load(str(tiny_dir), device="cpu")  # auto, export="background"
    try:
        assert clf.backend == "torch" and clf.export_pending
        assert "being prepared" in clf.backend_note
        during = clf.classify([photo_dir / "astronaut.jpg", photo_dir / "camera.jpg"], top_k=4)
        assert all(p.ok for p in during)
    finally:
        release.set()
    assert clf.wait_for_export(60)
    assert clf.backend == "onnxruntime" and not clf.export_pending
    after = clf.classify([photo_dir / "astronaut.jpg", photo_dir / "camera.jpg"], top_k=4)
    assert all_probs(after, 4) == pytest.approx(all_probs(during, 4), abs=1e-5)
