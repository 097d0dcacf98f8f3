"""The two runners through a Classifier: ONNX Runtime gives torch's probabilities, in input order,
with per-input errors and cancellation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from squeezelens.core.engine import CANCELLED, Classifier

ARCH = "seresnext26d_32x4d"


def test_stock_model_parity_and_order(confident_weights: Path, photo_dir: Path, odd_images: Path,
                                      broken_file: Path,
                                      check_parity) -> None:
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


def test_finetuned_model_parity(finetuned_dir: Path, photo_dir: Path, odd_images: Path, check_parity) -> None:
    torch_clf = Classifier.load(str(finetuned_dir), device="cpu", backend="torch")
    ort_clf = Classifier.load(str(finetuned_dir), device="cpu", backend="onnxruntime")
    assert ort_clf.backend == "onnxruntime" and ort_clf.labels == ["robin", "wren", "owl"]
    assert ort_clf.data_config["input_size"] == (3, 96, 96)
    out = check_parity(torch_clf, ort_clf, sorted(photo_dir.iterdir()) + sorted(odd_images.iterdir()))
    assert {p.top[0].label for p in out} <= {"robin", "wren", "owl"}


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
