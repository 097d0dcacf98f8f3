"""ONNX export: a failed or disagreeing export falls back to torch; a background export serves torch
first, switches between batches, and its thread can be joined."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from squeezelens.core import onnx_export
from squeezelens.core.engine import Classifier
from squeezelens.core.errors import ExportError, UsageError

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



@pytest.fixture
def export_gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Holds every ONNX export until the returned event is set (30 s at most), so a test can act mid-export."""
    release = threading.Event()
    real = onnx_export.export_graph

    def gated_export(*a, **k):
        assert release.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(onnx_export, "export_graph", gated_export)
    return release


def test_background_export_serves_torch_then_switches(tiny_dir: Path, photo_dir: Path,
                                                      export_gate: threading.Event, all_probs) -> None:
    release = export_gate
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


def test_close_joins_the_export_thread(tiny_dir: Path, photo_dir: Path, export_gate: threading.Event,
                                       graphs) -> None:
    """What the app does at quit: close() waits for the export thread itself (not a flag it sets
    near its end), so no thread of the classifier is left and the process can exit normally."""
    release = export_gate
    before = set(threading.enumerate())
    clf = Classifier.load(str(tiny_dir), device="cpu")  # auto, export="background"
    started = [t for t in threading.enumerate() if t not in before]
    assert [t.name for t in started] == ["squeezelens-onnx-export"] and not started[0].daemon
    try:
        assert clf.wait_for_export(0.05) is False and clf.export_pending  # the timeout passes, the export runs on
    finally:
        release.set()
    assert clf.close(60) is True
    assert not started[0].is_alive() and not clf.export_pending
    assert len(graphs()) == 1  # the export was let finish: its graph is cached
    assert clf.backend == "torch"  # a closed classifier does not switch over any more ...
    with pytest.raises(UsageError, match="closed"):
        clf.classify([photo_dir / "camera.jpg"])
    assert clf.close(1) is True  # closing twice is harmless
    again = Classifier.load(str(tiny_dir), device="cpu")  # ... the next start uses the graph
    assert again.backend_note.endswith("(cached graph)")
