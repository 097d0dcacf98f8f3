"""The ONNX graph cache under faults: it never answers with stale labels or preprocessing, another
folder's name, or a damaged graph's NaN; damaged entries are misses that are really replaced."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from squeezelens.core import graph_cache, runners
from squeezelens.core.engine import Classifier
from squeezelens.core.paths import cache_dir
from squeezelens.core.saved_model import save_model


def graph_dirs() -> list[Path]:
    root = cache_dir("onnx")
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name != "requests" and not p.name.startswith("."))


def ort(folder: Path) -> Classifier:
    return Classifier.load(str(folder), device="cpu", backend="onnxruntime")


def probs(clf: Classifier, photos: list[Path]) -> np.ndarray:
    out = np.zeros((len(photos), len(clf.labels)))
    for row, p in enumerate(clf.classify(photos, top_k=len(clf.labels))):
        assert p.ok, p.error
        for t in p.top:
            out[row, t.index] = t.prob
    return out


@pytest.fixture
def photos(photo_dir: Path) -> list[Path]:
    return [photo_dir / "chelsea.jpg", photo_dir / "rocket.png"]


def test_renamed_classes_with_identical_weights_show_the_new_names(tmp_path: Path, tiny_net, labels,
                                                                   photos) -> None:
    folder = save_model(tiny_net(1), tmp_path / "m", labels)
    assert ort(folder).classify(photos[:1])[0].top[0].label in labels
    renamed = ["ant", "bee", "cow", "deer"]
    save_model(tiny_net(1), folder, renamed)  # retrained with the same seed: identical weights
    for _ in range(2):  # the full load, then the torch-free start from what it recorded
        clf = ort(folder)
        assert clf.labels == renamed
        assert {t.label for t in clf.classify(photos[:1], top_k=4)[0].top} == set(renamed)


def test_edited_mean_and_std_are_used(tmp_path: Path, tiny_net, labels, photos) -> None:
    folder = save_model(tiny_net(1), tmp_path / "m", labels)
    ort(folder).classify(photos)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["pretrained_cfg"]["mean"], cfg["pretrained_cfg"]["std"] = [0.2, 0.3, 0.4], [0.1, 0.2, 0.3]
    (folder / "config.json").write_text(json.dumps(cfg))
    reference = probs(Classifier.load(str(folder), device="cpu", backend="torch"), photos)
    for _ in range(2):
        clf = ort(folder)
        assert clf.data_config["std"] == pytest.approx((0.1, 0.2, 0.3))
        assert np.abs(probs(clf, photos) - reference).max() < 1e-4


def test_two_folders_with_the_same_weights_keep_their_own_names(tmp_path: Path, tiny_net, labels, photos) -> None:
    a = save_model(tiny_net(1), tmp_path / "a", labels)
    b = save_model(tiny_net(1), tmp_path / "b", labels)
    for folder in (a, b, a, b):
        assert ort(folder).classify(photos[:1])[0].model == str(folder)


def _flip_bits(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) - 64, 997):  # inside the weights, not the graph's header
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_graph_is_replaced_and_never_gives_nan(tmp_path: Path, tiny_net, labels, photos) -> None:
    folder = save_model(tiny_net(1), tmp_path / "m", labels)
    reference = probs(Classifier.load(str(folder), device="cpu", backend="torch"), photos)
    ort(folder)
    [graph] = graph_dirs()
    _flip_bits(graph / "model.onnx")
    for _ in range(2):  # the torch-free start sees the damage; the next start uses the new export
        clf = ort(folder)
        assert clf.backend == "onnxruntime"
        assert np.abs(probs(clf, photos) - reference).max() < 1e-4
    assert graph_cache.find_graph(graph.name) is not None  # exported again, intact


def test_nan_scores_from_a_graph_are_never_shown(tmp_path: Path, tiny_net, labels, photos,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph that passes every check yet computes NaN (hardware, a runtime bug): torch answers instead."""
    folder = save_model(tiny_net(1), tmp_path / "m", labels)
    reference = probs(Classifier.load(str(folder), device="cpu", backend="torch"), photos)
    clf = ort(folder)
    monkeypatch.setattr(runners.OrtRunner, "logits", lambda self, batch: np.full((len(batch), 4), np.nan, np.float32))
    got = probs(clf, photos)
    assert np.isfinite(got).all() and np.abs(got - reference).max() < 1e-4
    assert clf.backend == "torch" and graph_dirs() == []


@pytest.mark.parametrize("damage", ["list", "labels-dict", "labels-short", "folder", "not-json", "no-graph"])
def test_a_damaged_graph_record_is_a_miss_that_is_replaced(tmp_path: Path, tiny_net, labels, photos,
                                                           damage: str, caplog) -> None:
    folder = save_model(tiny_net(1), tmp_path / "m", labels)
    reference = probs(ort(folder), photos)
    [graph] = graph_dirs()
    meta_path = graph / "meta.json"
    meta = json.loads(meta_path.read_text())
    if damage == "list":
        meta_path.write_text("[1, 2, 3]")
    elif damage == "labels-dict":
        meta_path.write_text(json.dumps({**meta, "labels": {"a": 1}}))
    elif damage == "labels-short":
        meta_path.write_text(json.dumps({**meta, "labels": ["ant", "bee"]}))
    elif damage == "folder":  # a folder where a file should be
        meta_path.unlink()
        meta_path.mkdir()
    elif damage == "not-json":
        meta_path.write_bytes(b"\x00" * 20)
    else:
        (graph / "model.onnx").unlink()
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        clf = ort(folder)
        assert clf.backend == "onnxruntime" and clf.labels == labels
        assert np.abs(probs(clf, photos) - reference).max() < 1e-6
    assert graph_cache.find_graph(graph.name) is not None  # really replaced


@pytest.mark.parametrize("record", ['{"source": [1, 2], "graph": 5}', "[]", "folder"])
def test_a_damaged_request_record_is_a_miss(tmp_path: Path, tiny_net, labels, photos, record: str) -> None:
    folder = save_model(tiny_net(1), tmp_path / "m", labels)
    reference = probs(ort(folder), photos)
    [path] = list(cache_dir("onnx", "requests").glob("*.json"))
    if record == "folder":
        path.unlink()
        path.mkdir()
    else:
        path.write_text(json.dumps({**graph_cache.cache_versions(), **json.loads(record)})
                        if record.startswith("{") else record)
    for _ in range(2):  # the miss, then the record it rewrote
        clf = ort(folder)
        assert np.abs(probs(clf, photos) - reference).max() < 1e-6
    assert path.is_file()


def test_a_cache_folder_that_cannot_be_written_means_no_cache(tmp_path: Path, tiny_net, labels, photos,
                                                              monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    folder = save_model(tiny_net(1), tmp_path / "m", labels)
    reference = probs(Classifier.load(str(folder), device="cpu", backend="torch"), photos)
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SQUEEZELENS_CACHE_DIR", str(blocker))
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        clf = Classifier.load(str(folder), device="cpu", export="wait")
        assert np.abs(probs(clf, photos) - reference).max() < 1e-4
    assert blocker.read_text() == "not a folder"
    assert any("cache" in r.getMessage() for r in caplog.records)


def test_an_unchanged_graph_is_hashed_once(tmp_path: Path, tiny_net, labels, photos,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest is recomputed only when the file was written since it last matched (its ctime)."""
    folder = save_model(tiny_net(1), tmp_path / "m", labels)
    ort(folder)
    ort(folder)  # the first find after publishing hashed it and left the stamp
    hashed: list[Path] = []
    real = graph_cache.file_digest
    monkeypatch.setattr(graph_cache, "file_digest", lambda p: hashed.append(p) or real(p))
    ort(folder)
    assert hashed == []
    [graph] = graph_dirs()
    (graph / "model.onnx").write_bytes((graph / "model.onnx").read_bytes())  # same bytes, written again
    ort(folder)
    assert len(hashed) == 1
