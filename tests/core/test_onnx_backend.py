"""The ONNX Runtime backend: parity with torch, the export cache, fallbacks, the torch-free start."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezelens.core import onnx_backend
from squeezelens.core.engine import CANCELLED, Classifier
from squeezelens.core.onnx_backend import ExportError
from squeezelens.core.paths import cache_dir
from squeezelens.core.saved_model import save_model

ARCH = "seresnext26d_32x4d"
REAL_EXPORT = onnx_backend.export_onnx


def all_probs(preds, num_classes: int) -> np.ndarray:
    """Each prediction's full probability vector (classify with top_k = number of classes)."""
    out = np.zeros((len(preds), num_classes))
    for row, p in enumerate(preds):
        for t in p.top:
            out[row, t.index] = t.prob
    return out


def graphs() -> list[str]:
    root = cache_dir("onnx")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "requests" and not p.name.startswith("."))


def save_tiny(path: Path, seed: int) -> Path:
    """A small timm model (test_resnet, 4 classes) saved the SqueezeLens way: exports in a fraction of a second."""
    import timm

    torch.manual_seed(seed)
    net = timm.create_model("test_resnet", num_classes=4)
    with torch.no_grad():
        net.get_classifier().weight.mul_(20)
    return save_model(net, path, ["ant", "bee", "cow", "doe"])


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return save_tiny(tmp_path / "tiny", seed=1)


@pytest.fixture(scope="module")
def finetuned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finetuned-style SE-ResNeXt: 3 classes, 96 px input (small, so the test is quick)."""
    import timm

    torch.manual_seed(3)
    net = timm.create_model(ARCH, num_classes=3, pretrained_cfg_overlay={"input_size": (3, 96, 96)})
    with torch.no_grad():
        net.fc.weight.mul_(30)
    return save_model(net, tmp_path_factory.mktemp("finetuned") / "birds", ["robin", "wren", "owl"])


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    p = tmp_path / "broken.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return p


def check_parity(torch_clf: Classifier, ort_clf: Classifier, inputs: list) -> list:
    n = len(torch_clf.labels)
    a = torch_clf.classify(inputs, top_k=n, batch_size=4)
    b = ort_clf.classify(inputs, top_k=n, batch_size=4)
    assert [p.ok for p in a] == [p.ok for p in b]
    ok = [i for i, p in enumerate(a) if p.ok]
    diff = np.abs(all_probs([a[i] for i in ok], n) - all_probs([b[i] for i in ok], n)).max()
    assert diff <= 1e-5, diff
    assert all(a[i].top[0].index == b[i].top[0].index for i in ok)
    return b


def test_stock_model_parity_and_order(confident_weights: Path, photo_dir: Path, odd_images: Path,
                                      broken_file: Path) -> None:
    torch_clf = Classifier.load(ARCH, weights=confident_weights, device="cpu", backend="torch")
    ort_clf = Classifier.load(ARCH, weights=confident_weights, device="cpu", backend="onnxruntime")
    assert (torch_clf.backend, ort_clf.backend) == ("torch", "onnxruntime")
    photos, odd = sorted(photo_dir.iterdir()), sorted(odd_images.iterdir())
    inputs = photos + [broken_file] + odd  # a broken file in the middle, batches of 4 around it
    out = check_parity(torch_clf, ort_clf, inputs)
    assert [Path(p.source) for p in out] == inputs
    assert not out[len(photos)].ok and "broken.jpg" in out[len(photos)].error
    assert sum(p.ok for p in out) == len(inputs) - 1
    assert max(p.top[0].prob for p in out if p.ok) > 0.05  # confident enough to mean something


def test_finetuned_model_parity(finetuned_dir: Path, photo_dir: Path, odd_images: Path) -> None:
    torch_clf = Classifier.load(str(finetuned_dir), device="cpu", backend="torch")
    ort_clf = Classifier.load(str(finetuned_dir), device="cpu", backend="onnxruntime")
    assert ort_clf.backend == "onnxruntime" and ort_clf.labels == ["robin", "wren", "owl"]
    assert ort_clf.data_config["input_size"] == (3, 96, 96)
    out = check_parity(torch_clf, ort_clf, sorted(photo_dir.iterdir()) + sorted(odd_images.iterdir()))
    assert {p.top[0].label for p in out} <= {"robin", "wren", "owl"}


def test_cache_is_reused_without_torch(tiny_dir: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    assert first.backend == "onnxruntime" and len(graphs()) == 1
    expected = first.classify([photo_dir / "chelsea.jpg"], top_k=4)[0]

    def no_export(*a, **k):
        raise AssertionError("exported again although the graph is cached")

    monkeypatch.setattr(onnx_backend, "export_onnx", no_export)
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


def test_new_weights_give_a_new_graph(tiny_dir: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exports: list[Path] = []
    real_export = onnx_backend.export_onnx

    def counting_export(model, input_size, path):
        exports.append(path)
        return real_export(model, input_size, path)

    monkeypatch.setattr(onnx_backend, "export_onnx", counting_export)
    Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    old = graphs()
    assert len(exports) == 1 and len(old) == 1

    save_tiny(tiny_dir, seed=2)  # retrained: same folder, new weights
    clf = Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    assert len(exports) == 2 and clf.backend == "onnxruntime"
    assert len(graphs()) == 1 and graphs() != old  # the stale graph was replaced, not kept
    torch_clf = Classifier.load(str(tiny_dir), device="cpu", backend="torch")
    check_parity(torch_clf, clf, [photo_dir / "rocket.png", photo_dir / "coffee.png"])


def test_export_failure_falls_back_to_torch(tiny_dir: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    def failing_export(*a, **k):
        raise ExportError("TorchScript exporter: RuntimeError: unsupported operator")

    monkeypatch.setattr(onnx_backend, "export_onnx", failing_export)
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        clf = Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    assert clf.backend == "torch"
    assert "unsupported operator" in caplog.text and "running on torch" in caplog.text
    assert "ONNX Runtime unavailable" in clf.backend_note
    assert clf.classify([photo_dir / "coffee.png"])[0].ok
    assert graphs() == []

    # a graph that exports but disagrees with torch is refused the same way
    monkeypatch.setattr(onnx_backend, "export_onnx", REAL_EXPORT)
    monkeypatch.setattr(onnx_backend, "VERIFY_ATOL", -1.0)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        clf = Classifier.load(str(tiny_dir), device="cpu", export="wait")
    assert clf.backend == "torch" and "disagrees with torch" in caplog.text
    assert graphs() == []


def test_background_export_serves_torch_then_switches(tiny_dir: Path, photo_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = onnx_backend.export_graph

    def gated_export(*a, **k):
        assert release.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(onnx_backend, "export_graph", gated_export)
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


def test_cancel_marks_the_rest(tiny_dir: Path, photo_dir: Path) -> None:
    clf = Classifier.load(str(tiny_dir), device="cpu", backend="onnxruntime")
    files = sorted(photo_dir.iterdir()) * 3  # 15 inputs, batches of 2
    cancel = threading.Event()
    seen: list[int] = []

    def on_result(i: int, pred) -> None:
        seen.append(i)
        if i == 2:
            cancel.set()

    out = clf.classify(files, batch_size=2, on_result=on_result, cancel=cancel)
    assert seen == [0, 1, 2, 3]  # the batch that was running finished; nothing else started
    assert all(p.ok for p in out[:4])
    assert [p.error for p in out[4:]] == [CANCELLED] * 11
    assert [Path(p.source) for p in out] == files


def test_bad_requests_have_clear_messages() -> None:
    from squeezelens.core.errors import SqueezeLensError

    with pytest.raises(SqueezeLensError, match="unknown backend 'tensorrt'"):
        Classifier.load(backend="tensorrt")
    with pytest.raises(SqueezeLensError, match="does not run on mps"):
        Classifier.load(device="mps", backend="onnxruntime")
    with pytest.raises(ValueError, match="export"):
        Classifier.load(export="later")  # type: ignore[arg-type]


def test_scratch_of_an_interrupted_export_is_removed_later(tmp_path: Path) -> None:
    import os
    import time

    old, fresh, graph = tmp_path / ".key.old", tmp_path / ".key.new", tmp_path / "key"
    for d in (old, fresh, graph):
        d.mkdir()
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))
    os.utime(graph, (past, past))
    onnx_backend._remove_stale_scratch(tmp_path)
    assert not old.exists()
    assert fresh.exists()  # maybe another process exporting right now
    assert graph.exists()  # finished graphs are not scratch
