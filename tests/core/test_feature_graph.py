"""The features graph (core/feature_graph.py): ONNX Runtime gives timm's pooled pre-logits features,
is cached beside (never instead of) the logits graph, and its vectors never share a feature-cache
file with another engine's or precision's."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from squeezelens.core import feature_graph, graph_cache, onnx_export
from squeezelens.core.errors import ExportError
from squeezelens.core.feature_cache import FeatureCache, extract_features, model_key
from squeezelens.core.feature_graph import (
    LazyFeatureRunner,
    OrtFeatureRunner,
    TorchFeatureRunner,
    features_graph_key,
    open_feature_runner,
)
from squeezelens.core.preprocess import data_config, eval_transform
from squeezelens.core.state_digest import state_digest


@pytest.fixture
def net() -> torch.nn.Module:
    """A random-weights timm test_resnet (seed 0) at 64 px: exports in about a second."""
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=5).eval()
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, 64, 64)}
    return model


def _torch_features(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.forward_head(model.forward_features(torch.from_numpy(x)), pre_logits=True).numpy()


def test_the_features_graph_gives_timms_pre_logits_features(net: torch.nn.Module) -> None:
    dcfg = data_config(net)
    runner = open_feature_runner(net, dcfg, "cpu")
    assert isinstance(runner, OrtFeatureRunner)
    assert runner.identity == {"engine": "onnxruntime", "device": "cpu", "precision": "fp32", "graph": "features"}

    x = np.random.default_rng(7).standard_normal((6, 3, 64, 64), dtype=np.float32)  # 6: two ORT runs of 4 and 2
    got, ref = runner.features(x), _torch_features(net, x)
    assert got.shape == (6, net.num_features) and got.dtype == np.float32
    # fp32 summation order (MLAS vs oneDNN) only: feature_graph.VERIFY_RTOL's source measured 1.8e-7 here
    assert np.abs(got - ref).max() <= feature_graph.VERIFY_RTOL * max(1.0, np.abs(ref).max())
    # and not the logits: the classifier head is not in the graph
    assert runner.graph.meta["graph"] == "features" and runner.graph.meta["num_features"] == net.num_features
    assert runner.graph.meta["verify_max_diff"] <= 1e-5


def test_features_and_logits_graphs_have_their_own_keys_and_both_stay_cached(net: torch.nn.Module,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    dcfg = data_config(net)
    ident = ("test_resnet", 5, dcfg["input_size"], state_digest(net))
    logits_key = graph_cache.graph_key(*ident, labels=list("abcde"), data_config=dcfg)
    # the logits key is what it was before graph kinds existed (graphs cached by older versions stay hits)
    assert graph_cache.graph_key(*ident, labels=list("abcde"), data_config=dcfg, graph="logits") == logits_key
    assert graph_cache.graph_key(*ident, labels=list("abcde"), data_config=dcfg, graph="features") != logits_key

    key = features_graph_key(net, dcfg)
    assert key != logits_key
    first = open_feature_runner(net, dcfg, "cpu")
    assert isinstance(first, OrtFeatureRunner) and first.graph.key == key

    # a retrained head shares the features graph (the backbone did not change); a new backbone does not
    net.reset_classifier(3)
    assert features_graph_key(net, dcfg) == key
    with torch.no_grad():
        next(iter(net.parameters())).add_(0.01)  # the stem's first convolution
    assert features_graph_key(net, dcfg) != key

    # the cached graph is reused: no second export
    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export_onnx", no_export)
    torch.manual_seed(0)
    again = timm.create_model("test_resnet", num_classes=5).eval()
    again.pretrained_cfg = net.pretrained_cfg
    reused = open_feature_runner(again, dcfg, "cpu")
    assert isinstance(reused, OrtFeatureRunner) and reused.graph.key == key
    assert graph_cache.find_graph(key) is not None


def test_a_failed_or_disagreeing_export_falls_back_to_torch_with_one_warning(
        net: torch.nn.Module, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    dcfg = data_config(net)
    monkeypatch.setattr(feature_graph, "VERIFY_RTOL", -1.0)  # every graph "disagrees"
    warnings: list[str] = []
    runner = open_feature_runner(net, dcfg, "cpu", on_warning=warnings.append)
    assert isinstance(runner, TorchFeatureRunner)
    assert len(warnings) == 1 and "disagrees with torch" in warnings[0] and "runs on torch" in warnings[0]
    assert graph_cache.find_graph(features_graph_key(net, dcfg)) is None  # a refused graph is not cached

    # a graph of the wrong output (the logits) is refused by its shape
    monkeypatch.setattr(feature_graph, "VERIFY_RTOL", 1e-4)
    monkeypatch.setattr(feature_graph, "pre_logits_module", lambda model: model)
    with pytest.raises(ExportError, match="shape"):
        feature_graph.export_features_graph(net, features_graph_key(net, dcfg), dcfg)

    # no ONNX Runtime, or another device: eager torch, and the identity says so
    monkeypatch.setattr(feature_graph, "onnxruntime_available", lambda: False)
    plain = open_feature_runner(net, dcfg, "cpu")
    assert isinstance(plain, TorchFeatureRunner) and plain.identity["engine"] == "torch"
    assert feature_graph.planned_identity("cuda")["engine"] == "torch"


def _photos(tmp_path: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        p = tmp_path / f"p{i}.png"
        Image.fromarray(rng.integers(0, 255, (80, 90, 3), dtype=np.uint8)).save(p)
        out.append(p)
    return out


def test_the_feature_cache_key_names_engine_and_precision(net: torch.nn.Module, tmp_path: Path) -> None:
    dcfg = data_config(net)
    ort = feature_graph.planned_identity("cpu")
    torch_id = {"engine": "torch", "device": "cpu", "precision": "fp32", "graph": "eager"}
    keys = {model_key(net, dcfg, None, ort), model_key(net, dcfg, None, torch_id),
            model_key(net, dcfg, None, {**ort, "precision": "int8"})}
    assert len(keys) == 3  # three extractors, three cache files: their vectors are never mixed
    assert model_key(net, dcfg, None) == model_key(net, dcfg, None, torch_id)  # the default is eager torch

    paths = _photos(tmp_path, 5)
    tf = eval_transform(dcfg)
    runner = LazyFeatureRunner(net, dcfg, "cpu")
    with FeatureCache(model_key(net, dcfg, None, runner.identity), tmp_path / "cache") as cache:
        feats = extract_features(net, paths, tf, cache, batch_size=4, runner=runner)
        assert runner.opened is not None and runner.identity == ort and len(cache) == 5
    ref = _torch_features(net, np.stack([tf(Image.open(p).convert("RGB")).numpy() for p in paths]))
    assert feats.ok == [0, 1, 2, 3, 4] and feats.misses == 5
    assert np.abs(feats.vectors - ref).max() <= feature_graph.VERIFY_RTOL * max(1.0, np.abs(ref).max())

    # the torch extractor's cache file is another one: all misses there
    with FeatureCache(model_key(net, dcfg, None, torch_id), tmp_path / "cache") as cache:
        again = extract_features(net, paths, tf, cache, batch_size=4)
    assert (again.hits, again.misses) == (0, 5)


def test_vectors_of_a_fallback_runner_are_not_stored_under_the_onnx_key(
        net: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    dcfg = data_config(net)

    def failing_export(*a, **k):
        raise ExportError("TorchScript exporter: RuntimeError: unsupported operator")

    monkeypatch.setattr(onnx_export, "export_onnx", failing_export)
    runner = LazyFeatureRunner(net, dcfg, "cpu")
    key = model_key(net, dcfg, None, runner.identity)  # keyed as ONNX Runtime, as planned
    with caplog.at_level(logging.WARNING, logger="squeezelens"), FeatureCache(key, tmp_path / "cache") as cache:
        feats = extract_features(net, _photos(tmp_path, 3), eval_transform(dcfg), cache, runner=runner)
        assert len(cache) == 0  # torch's vectors are not ONNX Runtime's: nothing stored under this key
    assert isinstance(runner.opened, TorchFeatureRunner) and runner.identity["engine"] == "torch"
    assert feats.vectors.shape == (3, net.num_features)
    assert "unsupported operator" in caplog.text


def test_only_the_most_recently_used_feature_graphs_are_kept(net: torch.nn.Module) -> None:
    import json
    import os

    root = graph_cache.cache_dir("onnx")
    for i, kind in enumerate(["features", "features", "features", None, "features"]):  # oldest first
        d = root / f"old{i}"
        d.mkdir()
        (d / graph_cache.META_FILE).write_text(json.dumps({"graph": kind} if kind else {"labels": ["a"]}))
        os.utime(d, (1_000_000 + i, 1_000_000 + i))
    runner = open_feature_runner(net, data_config(net), "cpu")  # exports one more, the newest
    assert isinstance(runner, OrtFeatureRunner)
    left = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "requests")
    # MAX_FEATURE_GRAPHS = 3: the one just used and the two most recent others; the logits graph stays
    assert left == sorted([runner.graph.key, "old4", "old2", "old3"])
    # using an old one again makes it the newest: with room for two, it and the exported one stay
    assert feature_graph.prune_feature_graphs("old2", keep=2) == ["old4"]
    assert graph_cache.find_graph(runner.graph.key) is not None and (root / "old2").is_dir()
