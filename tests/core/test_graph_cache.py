"""The graph cache: a cached graph is found again without torch, new weights replace the graph,
interrupted exports' scratch folders go."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from squeezelens.core import graph_cache, onnx_export
from squeezelens.core.engine import Classifier


def test_cache_is_reused_without_torch(tiny_dir: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                      graphs) -> None:
    first = Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    assert first.backend == "onnxruntime" and len(graphs()) == 1
    expected = first.classify([photo_dir / "chelsea.jpg"], top_k=4)[0]

    def no_export(*a, **k):
        raise AssertionError("exported again although the graph is cached")

    monkeypatch.setattr(onnx_export, "export_onnx", no_export)
    again = Classifier.load(str(tiny_dir), device="cpu")  # backend auto: ONNX Runtime on the CPU
    assert again.backend == "onnxruntime" and again.backend_note.endswith("(cached graph)")
    assert again.loaded._model is None  # the torch module was never built ...
    assert again.loaded.weights.kind == "dir" and again.labels == ["ant", "bee", "cow", "doe"]
    pred = again.classify([photo_dir / "chelsea.jpg"], top_k=4)[0]
    assert [t.index for t in pred.top] == [t.index for t in expected.top]
    assert again.model is not None  # ... but is there when asked for
    assert len(graphs()) == 1

    # a new process: the CLI on the cached graph never imports torch (`-X importtime` lists every import)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "squeezelens", "classify", str(photo_dir / "chelsea.jpg"),
         "--model", str(tiny_dir), "--format", "json", "--top-k", "4"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert "onnxruntime" in imported and "torch" not in imported and "timm" not in imported
    result = json.loads(proc.stdout)[0]
    assert [t["index"] for t in result["top"]] == [t.index for t in expected.top]
    assert [t["prob"] for t in result["top"]] == pytest.approx([t.prob for t in expected.top], abs=1e-6)


def test_new_weights_give_a_new_graph(tiny_dir: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                      graphs, save_tiny, check_parity) -> None:
    exports: list[Path] = []
    real_export = onnx_export.export_onnx

    def counting_export(model, input_size, path, **kwargs):
        exports.append(path)
        return real_export(model, input_size, path, **kwargs)

    monkeypatch.setattr(onnx_export, "export_onnx", counting_export)
    Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    old = graphs()
    assert len(exports) == 1 and len(old) == 1

    save_tiny(tiny_dir, seed=2)  # retrained: same folder, new weights
    clf = Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    assert len(exports) == 2 and clf.backend == "onnxruntime"
    assert len(graphs()) == 1 and graphs() != old  # the stale graph was replaced, not kept
    torch_clf = Classifier.load(str(tiny_dir), device="cpu", backend="torch")
    check_parity(torch_clf, clf, [photo_dir / "rocket.png", photo_dir / "coffee.png"])


def test_scratch_of_an_interrupted_export_is_removed_later(tmp_path: Path) -> None:
    import os
    import time

    old, fresh, graph = tmp_path / ".key.old", tmp_path / ".key.new", tmp_path / "key"
    for d in (old, fresh, graph):
        d.mkdir()
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))
    os.utime(graph, (past, past))
    graph_cache.remove_stale_scratch(tmp_path)
    assert not old.exists()
    assert fresh.exists()  # maybe another process exporting right now
    assert graph.exists()  # finished graphs are not scratch

