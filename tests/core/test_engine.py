"""The Python API: Classifier.load / classify, per-input errors, untrained flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from squeezelens import Classifier, Prediction


@pytest.fixture(scope="module")
def clf(confident_weights: Path) -> Classifier:
    return Classifier.load("seresnext26d_32x4d", weights=confident_weights, device="cpu", backend="torch")


def test_classify_mixed_inputs_keeps_order_and_errors(clf: Classifier, photo_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    pil = Image.open(photo_dir / "coffee.png")
    seen: list[int] = []
    inputs = [photo_dir / "chelsea.jpg", broken, pil, str(photo_dir / "astronaut.jpg")]
    results = clf.classify(inputs, top_k=3, batch_size=2, on_result=lambda i, p: seen.append(i))

    assert sorted(seen) == [0, 1, 2, 3]
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[0].source.endswith("chelsea.jpg") and results[3].source.endswith("astronaut.jpg")
    assert "broken.png" in results[1].error
    for r in (results[0], results[2], results[3]):
        assert isinstance(r, Prediction)
        assert len(r.top) == 3
        assert r.untrained is False
        assert r.top[0].label == clf.labels[r.top[0].index]
        assert r.infer_ms > 0 and r.load_ms > 0
    # a PIL image and the same file give the same answer
    again = clf.classify([photo_dir / "coffee.png"], top_k=3)[0]
    assert [t.index for t in again.top] == [t.index for t in results[2].top]
    assert [t.prob for t in again.top] == pytest.approx([t.prob for t in results[2].top], abs=1e-6)


def test_batching_does_not_change_results(clf: Classifier, photo_dir: Path) -> None:
    files = sorted(photo_dir.iterdir())
    one = clf.classify(files, batch_size=1)
    many = clf.classify(files, batch_size=5)
    for a, b in zip(one, many):
        assert [t.index for t in a.top] == [t.index for t in b.top]
        assert [t.prob for t in a.top] == pytest.approx([t.prob for t in b.top], abs=1e-5)


def test_top_k_capped_and_imagenet_labels(clf: Classifier, photo_dir: Path) -> None:
    assert len(clf.labels) == 1000
    assert clf.labels[258] == "Samoyed"
    r = clf.classify([photo_dir / "rocket.png"], top_k=5000)[0]
    assert len(r.top) == 1000
    assert sum(t.prob for t in r.top) == pytest.approx(1.0, abs=1e-4)


def test_untrained_flag(photo_dir: Path) -> None:
    clf = Classifier.load("seresnext26d_32x4d", allow_download=False, backend="torch")
    assert clf.untrained
    assert clf.loaded.untrained_reason
    r = clf.classify([photo_dir / "chelsea.jpg"])[0]
    assert r.untrained is True and r.to_dict()["untrained"] is True


def test_fast_decode_toggle(confident_weights: Path, tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    big = tmp_path / "big.jpg"
    Image.fromarray(rng.integers(0, 256, (2000, 3000, 3), dtype=np.uint8)).save(big, quality=90)
    fast = Classifier.load("seresnext26d_32x4d", weights=confident_weights, device="cpu", backend="torch")
    exact = Classifier.load("seresnext26d_32x4d", weights=confident_weights, device="cpu", fast_decode=False,
                            backend="torch")
    a, b = fast.preprocess(big), exact.preprocess(big)
    assert a.shape == b.shape == (3, 224, 224)
    assert float((a - b).abs().max()) > 1e-3  # the fast path really decoded something else (1/4 scale)
    small = tmp_path / "small.png"  # not a JPEG: both paths are the same pipeline
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(small)
    assert float((fast.preprocess(small) - exact.preprocess(small)).abs().max()) == 0.0


def test_batch_size_must_be_positive(clf: Classifier, photo_dir: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        clf.classify([photo_dir / "coffee.png"], batch_size=0)


def test_error_entries_carry_model_and_untrained(photo_dir: Path, tmp_path: Path) -> None:
    clf = Classifier.load(allow_download=False, backend="torch")
    assert clf.name == "seresnext26d_32x4d"
    r = clf.classify([tmp_path / "missing.png"])[0]
    assert r.to_dict() == {"path": str(tmp_path / "missing.png"), "model": "seresnext26d_32x4d",
                           "untrained": True, "error": f"{tmp_path / 'missing.png'}: file not found"}
