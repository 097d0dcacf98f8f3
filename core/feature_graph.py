"""Pooled pre-logits features through ONNX Runtime: a *features* graph beside the logits graph.

Finetuning's quick mode and the dataset review (:mod:`.review`) need, per image, timm's
``model.forward_head(model.forward_features(x), pre_logits=True)``: an ``(N, D)`` float32 array,
``D = model.num_features``. On the CPU eager torch ran that pass 1.95x slower than the ONNX Runtime
classifier (docs/PERFORMANCE.md, issue 19), so the same machinery now serves it:

- the backbone up to the pooled features is exported once (:func:`.onnx_export.export_onnx`, output
  ``features``), checked against torch on a fixed random batch (:func:`verify_features`), and kept
  in :mod:`.graph_cache` under a key of its own (``graph="features"``; the classifier head is left
  out of the digest, as :func:`.feature_cache.backbone_digest` does, so a retrained head reuses it);
- :class:`OrtFeatureRunner` runs it in runs of :data:`.runners.CPU_MAX_BATCH`, as the classifier does;
- :class:`TorchFeatureRunner` is the fallback: on CUDA/MPS, without ONNX Runtime, or when the export
  fails or disagrees (one warning says why).

Each runner names itself in :attr:`FeatureRunner.identity` (engine, precision, graph kind), which
goes into the feature cache's key (:func:`.feature_cache.model_key`), so vectors of different
engines or precisions are never mixed in one cache file. Only fp32 exists for now.

This module imports torch only inside the functions that need it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from . import graph_cache
from .errors import ExportError, SqueezeLensError
from .runners import CPU_MAX_BATCH, OrtRunner, onnxruntime_available

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The graph kind in :func:`.graph_cache.graph_key` and in the graph's record, and its output's name.
GRAPH_KIND = "features"
#: A features graph is used only if, on a fixed random batch, no feature differs from torch's by more
#: than this times the largest feature magnitude (at least 1). fp32 summation order differs between
#: ONNX Runtime's MLAS kernels and torch's oneDNN ones. Measured on this project's machine (random
#: weights, seed 0; pretrained weights were not available offline): test_resnet 1.8e-7 (largest
#: feature 1.2), seresnext26d_32x4d 4.5e-8 (largest feature 0.26), so 1e-4 leaves over 100x room,
#: while a wrong graph (another pooling, a missing block, the logits) is off by O(largest feature).
VERIFY_RTOL = 1e-4


#: Features graphs kept in the graph cache (the most recently used; about 50 MB each for
#: seresnext26d_32x4d): one per backbone, and quick-finetuning a deep-finetuned model makes another.
MAX_FEATURE_GRAPHS = 3


class FeatureRunner(Protocol):
    """What computes pooled pre-logits features for :func:`.feature_cache.extract_features`."""

    @property
    def engine(self) -> str:
        """``onnxruntime`` or ``torch``."""
        ...

    @property
    def device(self) -> str:
        """``cpu``, ``cuda`` or ``mps``."""
        ...

    @property
    def precision(self) -> str:
        """``fp32`` (the only one for now)."""
        ...

    @property
    def identity(self) -> dict[str, str]:
        """What the feature cache key must hold so vectors of other engines or precisions never mix."""
        ...

    def features(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        """``(N, 3, H, W)`` float32 inputs -> ``(N, D)`` float32 pooled pre-logits features."""
        ...


def runner_identity(engine: str, device: str) -> dict[str, str]:
    """The :attr:`FeatureRunner.identity` of ``engine`` (``onnxruntime``: the features graph; ``torch``:
    eager) on ``device``, in fp32 (the only precision for now)."""
    return {"engine": engine, "device": device, "precision": "fp32",
            "graph": GRAPH_KIND if engine == "onnxruntime" else "eager"}


class TorchFeatureRunner:
    """Eager torch: ``model.forward_head(model.forward_features(x), pre_logits=True)`` on ``device``."""

    engine = "torch"
    precision = "fp32"

    def __init__(self, model: Any, device: str = "cpu") -> None:
        """``model`` (a timm model) is put in eval mode on ``device`` (moved, not copied)."""
        self.model = model.eval().to(device)
        self.device = device

    @property
    def identity(self) -> dict[str, str]:
        return runner_identity(self.engine, self.device)

    def features(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        import torch

        x = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
        with torch.inference_mode():
            out = self.model.forward_head(self.model.forward_features(x.to(self.device)), pre_logits=True)
            return np.asarray(out.float().cpu().numpy(), dtype=np.float32)


class OrtFeatureRunner:
    """ONNX Runtime on a cached features graph (the classifier's session options, :class:`.runners.OrtRunner`)."""

    engine = "onnxruntime"
    device = "cpu"
    precision = "fp32"

    def __init__(self, graph: graph_cache.GraphInfo) -> None:
        """Open the graph.

        Raises:
            Exception: whatever ONNX Runtime raises for a missing or damaged graph file.
        """
        self.runner = OrtRunner(graph.path, "cpu")
        self.graph = graph

    @property
    def identity(self) -> dict[str, str]:
        return runner_identity(self.engine, self.device)

    def features(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        x = batch if isinstance(batch, np.ndarray) else batch.detach().cpu().numpy()
        out = [self.runner.logits(x[s:s + CPU_MAX_BATCH]) for s in range(0, len(x), CPU_MAX_BATCH)]
        return np.concatenate(out).astype(np.float32, copy=False)


def pre_logits_module(model: Any) -> torch.nn.Module:
    """A module whose forward is ``model.forward_head(model.forward_features(x), pre_logits=True)``
    (``(N, 3, H, W)`` -> ``(N, D)``): what the features graph is exported from."""
    import torch

    class PreLogits(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.net.forward_head(self.net.forward_features(x), pre_logits=True)
            return out

    return PreLogits(model).eval()


def features_graph_key(model: Any, data_config: Mapping[str, Any]) -> str:
    """:func:`.graph_cache.graph_key` of ``model``'s features graph: the architecture, the feature
    width, the backbone weights (classifier excluded), the data config and the pooling."""
    from .feature_cache import architecture_of, backbone_digest

    arch = architecture_of(model)
    data = {**dict(data_config), "global_pool": str(getattr(model, "global_pool", ""))}
    return graph_cache.graph_key(arch, int(model.num_features), data_config["input_size"], backbone_digest(model),
                                 data_config=data, graph=GRAPH_KIND)


def verify_features(runner: OrtRunner, model: Any, input_size: Sequence[int]) -> float:
    """Largest absolute feature difference between the graph and torch on a fixed random batch of 2.

    Returns:
        The difference (at most :data:`VERIFY_RTOL` x max(1, largest torch feature magnitude)).

    Raises:
        ExportError: the difference is larger (or NaN), or the width differs.
    """
    import torch

    x = np.random.default_rng(0).standard_normal((2, *input_size), dtype=np.float32)
    with torch.inference_mode():
        ref = model.forward_head(model.forward_features(torch.from_numpy(x)), pre_logits=True).float().numpy()
    got = runner.logits(x)
    if got.shape != ref.shape:
        raise ExportError(f"the features graph gives shape {got.shape}, torch {ref.shape}")
    diff = float(np.abs(got - ref).max())
    allowed = VERIFY_RTOL * max(1.0, float(np.abs(ref).max()))
    if not diff <= allowed:  # also catches NaN
        raise ExportError(f"the features graph disagrees with torch (features differ by up to {diff:.2e}, "
                          f"allowed {allowed:.2e})")
    return diff


def export_features_graph(model: Any, key: str, data_config: Mapping[str, Any]) -> graph_cache.GraphInfo:
    """Export ``model``'s features graph into the graph cache as ``key``, verified against torch.

    Args:
        model: a timm model on the CPU, in eval mode.
        key: :func:`features_graph_key` of it.
        data_config: its eval data config (``input_size`` gives the export's input shape).

    Raises:
        ExportError: the export failed, disagrees with torch, or could not be written.
    """
    from . import onnx_export
    from .feature_cache import architecture_of

    arch = architecture_of(model)
    src = model.eval()
    meta: dict[str, Any] = {
        "name": arch, "architecture": arch, "graph": GRAPH_KIND, "num_features": int(model.num_features),
        "labels": [], "num_classes": 0,
        "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in dict(data_config).items()},
    }
    return onnx_export.export_verified(pre_logits_module(src), src, key, meta, output_name=GRAPH_KIND,
                                       verify=verify_features)


def planned_identity(device: str) -> dict[str, str]:
    """The :attr:`FeatureRunner.identity` that :func:`open_feature_runner` gives on ``device`` when
    nothing fails (ONNX Runtime's features graph on the CPU where installed, else eager torch)."""
    return runner_identity("onnxruntime" if device == "cpu" and onnxruntime_available() else "torch", device)


class LazyFeatureRunner:
    """:func:`open_feature_runner`, called on the first :meth:`features` call only, so a run whose
    features all come from the cache neither exports nor opens a graph.

    :attr:`identity` is :func:`planned_identity` until then, and the opened runner's afterwards: a
    caller (:func:`.feature_cache.extract_features`) stores vectors only while it equals the identity
    its cache is keyed with (the torch fallback's vectors never enter an ONNX Runtime cache).
    """

    def __init__(self, model: Any, data_config: Mapping[str, Any], device: str = "cpu", *,
                 on_warning: Callable[[str], None] | None = None) -> None:
        self._args = (model, data_config, device, on_warning)
        self.device = device
        self.opened: FeatureRunner | None = None
        #: Seconds the first call spent opening (exporting and verifying the first time) the runner.
        self.open_seconds = 0.0

    @property
    def engine(self) -> str:
        return self.identity["engine"]

    @property
    def precision(self) -> str:
        return self.identity["precision"]

    @property
    def identity(self) -> dict[str, str]:
        return self.opened.identity if self.opened is not None else planned_identity(self.device)

    def features(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        if self.opened is None:
            model, data_config, device, on_warning = self._args
            t0 = time.perf_counter()
            self.opened = open_feature_runner(model, data_config, device, on_warning=on_warning)
            self.open_seconds = time.perf_counter() - t0
        return self.opened.features(batch)


def open_feature_runner(model: Any, data_config: Mapping[str, Any], device: str = "cpu", *,
                        on_warning: Callable[[str], None] | None = None) -> FeatureRunner:
    """The fastest verified features runner for ``model`` on ``device``.

    On the CPU with ONNX Runtime installed: the cached features graph, exported (and verified)
    first when it is not cached yet. Otherwise, or when that fails, eager torch; the reason of a
    failure goes to ``on_warning`` (default: the log) once.

    Args:
        model: a timm model (eval mode is set; on the CPU it is not moved).
        data_config: its eval data config (``input_size`` etc., :func:`.preprocess.data_config`).
        device: ``cpu``, ``cuda`` or ``mps``.
    """
    if device != "cpu" or not onnxruntime_available():
        return TorchFeatureRunner(model, device)
    key = features_graph_key(model, data_config)
    graph = graph_cache.find_graph(key)
    try:
        runner = None
        if graph is not None:
            try:
                runner = OrtFeatureRunner(graph)
            except Exception as e:  # a damaged entry: exported again below
                graph_cache.discard(key, f"ONNX Runtime cannot open it ({type(e).__name__})")
        if runner is None:
            runner = OrtFeatureRunner(export_features_graph(model, key, data_config))
        prune_feature_graphs(key)
        return runner
    except Exception as e:  # never worse than torch
        reason = e.reason if isinstance(e, SqueezeLensError) else f"{type(e).__name__}: {e}"
        (on_warning or log.warning)(f"the feature pass runs on torch (ONNX Runtime not used: {reason})")
        return TorchFeatureRunner(model, device)


def prune_feature_graphs(used: str, keep: int = MAX_FEATURE_GRAPHS) -> list[str]:
    """Keep the ``keep`` most recently used features graphs, ``used`` first
    (:func:`.graph_cache.prune_graphs_of_kind`); logits graphs are never touched.

    Returns:
        The keys deleted.
    """
    return graph_cache.prune_graphs_of_kind(GRAPH_KIND, used, keep)
