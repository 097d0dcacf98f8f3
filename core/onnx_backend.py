"""The ONNX Runtime backend: export a model once, cache the graph, run it on the CPU.

Cache layout, under ``cache_dir("onnx")``:

- ``<graph key>/model.onnx`` + ``meta.json``: one exported graph. The key hashes the architecture,
  the number of classes, the input size, the torch/timm versions and a hash of the whole
  state_dict, so new weights (a finetuned model too) give a new graph and never a stale one.
- ``requests/<request id>.json``: what a ``Classifier.load(model, weights)`` call resolved to the
  last time (the graph key, the label names, the data config, and the size and mtime of the weights
  files it read). With it, a later start finds its graph without importing torch or timm: the
  weights are looked up again the cheap way and compared with what was recorded.

Exporting uses torch's TorchScript-based exporter first (about 0.5 s for seresnext26d_32x4d on
this project's machine), then the torch.export-based one (about 4 s) where the first is missing or
fails. Every export is checked against torch on a fixed random batch before it is used.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import inspect
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import catalogue
from .device_info import usable_cpus
from .errors import ExportError, UsageError
from .paths import cache_dir
from .weights import ProgressFn, WeightsSource, resolve_weights

log = logging.getLogger(__name__)

#: Bump when the graph layout or the meta/request files change; old entries are then ignored.
CACHE_FORMAT = 1
GRAPH_FILE, META_FILE = "model.onnx", "meta.json"
INPUT_NAME, OUTPUT_NAME = "input", "logits"
OPSET = 17
#: An exported graph is used only if its probabilities stay this close to torch's on a random batch.
VERIFY_ATOL = 1e-4
#: ONNX Runtime's worker threads spin between ops instead of sleeping. On this project's 2-vCPU
#: machine that is worth it: batch 1 takes 15 ms spinning against 21-29 ms sleeping (waking a
#: thread costs more than the op), while a folder run, whose loader threads lose some CPU to the
#: spinning, is only about 5% slower for it (docs/PERFORMANCE.md).
ALLOW_SPINNING = True
#: Largest batch ONNX Runtime runs at once on the CPU. A CPU gains nothing from bigger batches, and
#: they cost memory: the CLI on 32 photos ran in 1.21 s / 0.31 GB peak with 4, 1.31 s / 0.66 GB with 16.
CPU_MAX_BATCH = 4


def onnxruntime_available() -> bool:
    """Is the ``onnxruntime`` package installed (without importing it)?"""
    return importlib.util.find_spec("onnxruntime") is not None


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def cache_versions() -> dict[str, Any]:
    """What an exported graph depends on besides the weights (read without importing torch)."""
    return {"format": CACHE_FORMAT, "torch": _dist_version("torch"), "timm": _dist_version("timm")}


# -- keys ----------------------------------------------------------------------------------------
def state_hash(model: Any) -> str:
    """A hash of every tensor in ``model.state_dict()`` (names, dtypes, shapes, bytes); ~80 ms for 26d."""
    import torch

    h = hashlib.blake2b(digest_size=20)
    for name, t in model.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def graph_key(architecture: str, num_classes: int, input_size: Sequence[int], weights_hash: str) -> str:
    """The cache key of one exported graph."""
    ident = {"arch": architecture, "classes": int(num_classes), "input": [int(x) for x in input_size],
             "weights": weights_hash, **cache_versions()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def request_id(model: str | os.PathLike | None, weights: str | os.PathLike | None) -> str:
    """The identity of a ``load(model, weights)`` call: names as given, paths made absolute."""
    def norm(x: str | os.PathLike | None) -> str:
        if x is None:
            return ""
        p = Path(x)
        return str(p.resolve()) if p.exists() else str(x)

    ident = {"model": norm(model) or catalogue.DEFAULT_MODEL, "weights": norm(weights)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def graph_dir(key: str) -> Path:
    return cache_dir("onnx", create=False) / key


def _requests_dir() -> Path:
    return cache_dir("onnx", "requests")


def _fingerprint(paths: Sequence[Path]) -> list[list[Any]]:
    out = []
    for p in sorted({Path(p).resolve() for p in paths}):
        st = p.stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def _files_of(path: str | os.PathLike | None) -> list[Path]:
    """The regular files a weights argument stands for: the file, or a saved-model folder's files."""
    if path is None:
        return []
    p = Path(path)
    if p.is_dir():
        return [c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")]
    return [p] if p.is_file() else []


# -- running ---------------------------------------------------------------------------------------
def intra_op_threads() -> int:
    """ONNX Runtime's compute threads: one per CPU this process may use.

    ONNX Runtime's own default (0) ran batch 1 at 21 ms against 15.9 ms with 2 threads on this
    project's 2-vCPU machine (docs/PERFORMANCE.md).
    """
    return usable_cpus()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, shifted by the row maximum."""
    z = logits.astype(np.float32, copy=False)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _as_numpy(x: Any) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()


class OrtRunner:
    """One ONNX Runtime session for one exported graph."""

    kind = "onnxruntime"

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = intra_op_threads()
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # errors only; ORT's warnings are about its own internals
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if ALLOW_SPINNING else "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError("this ONNX Runtime has no CUDA support; use --backend torch for the GPU")
            providers.insert(0, "CUDAExecutionProvider")
        elif device != "cpu":
            raise UsageError(f"the ONNX Runtime backend runs on cpu or cuda, not {device}; use --backend torch")
        self.session = ort.InferenceSession(str(path), so, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.device = device
        self.path = Path(path)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    def top_k(self, items: Sequence[Any], k: int) -> list[tuple[list[float], list[int]]]:
        """Per item: the ``k`` largest probabilities and their class indices, largest first.

        On the CPU the items go through in runs of at most :data:`CPU_MAX_BATCH`.
        """
        step = CPU_MAX_BATCH if self.device == "cpu" else len(items)
        out: list[tuple[list[float], list[int]]] = []
        for start in range(0, len(items), step):
            chunk = items[start:start + step]
            probs = softmax(self.logits(np.stack([_as_numpy(x) for x in chunk])))
            idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
            top = np.take_along_axis(probs, idx, axis=1)
            out.extend(zip(top.tolist(), idx.tolist()))
        return out


# -- export ----------------------------------------------------------------------------------------
def export_onnx(model: Any, input_size: Sequence[int], path: Path) -> str:
    """Write ``model`` (CPU, eval) to ``path`` as ONNX with a dynamic batch axis; returns the exporter used.

    Raises:
        ExportError: no exporter managed it (the reasons of each are in the message).
    """
    import torch

    x = torch.zeros((1, *input_size))
    params = inspect.signature(torch.onnx.export).parameters
    reasons = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation and tracer notices
        try:
            kw = {"dynamo": False} if "dynamo" in params else {}
            with torch.inference_mode(False), torch.no_grad():
                torch.onnx.export(
                    model, (x,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                    opset_version=OPSET, do_constant_folding=True, **kw,
                )
            return "torchscript"
        except Exception as e:
            reasons.append(f"TorchScript exporter: {type(e).__name__}: {str(e)[:200]}")
            path.unlink(missing_ok=True)
        if "dynamo" in params:
            try:
                batch = torch.export.Dim("batch", min=1, max=4096)
                with torch.inference_mode(False), torch.no_grad():
                    torch.onnx.export(
                        model, (x,), str(path), dynamo=True, input_names=[INPUT_NAME],
                        output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), external_data=False,
                        verbose=False,
                    )
                return "torch.export"
            except Exception as e:
                reasons.append(f"torch.export exporter: {type(e).__name__}: {str(e)[:200]}")
                path.unlink(missing_ok=True)
    raise ExportError("; ".join(reasons))


def verify_graph(runner: OrtRunner, model: Any, input_size: Sequence[int]) -> float:
    """Largest probability difference between the graph and ``model`` on a fixed random batch of 2."""
    import torch

    x = np.random.default_rng(0).standard_normal((2, *input_size), dtype=np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).float().softmax(dim=-1).numpy()
    diff = float(np.abs(softmax(runner.logits(x)) - ref).max())
    if not diff <= VERIFY_ATOL:  # also catches NaN
        raise ExportError(f"the exported graph disagrees with torch (probabilities differ by up to {diff:.2e})")
    return diff


@dataclass
class GraphInfo:
    """An exported graph on disk, and what a Classifier needs to describe its model without torch."""

    key: str
    path: Path
    meta: dict[str, Any]


def model_meta(loaded: Any, data_config: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe description of a loaded model that a torch-free start needs."""
    cfg = json.loads(json.dumps(loaded.pretrained_cfg, default=str))
    return {
        "name": loaded.name, "architecture": loaded.architecture, "labels": list(loaded.labels),
        "num_classes": len(loaded.labels), "pretrained_cfg": cfg, "license": loaded.license,
        "data_config": json.loads(json.dumps(data_config, default=str)),
    }


def find_graph(key: str) -> GraphInfo | None:
    """The cached graph ``key``, if a complete one is on disk."""
    d = graph_dir(key)
    try:
        meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("format") != CACHE_FORMAT or not (d / GRAPH_FILE).is_file():
        return None
    return GraphInfo(key, d / GRAPH_FILE, meta)


def export_graph(model: Any, key: str, meta: dict[str, Any], *, copy_model: bool = False) -> GraphInfo:
    """Export ``model`` into the cache as graph ``key``, verified against torch; returns it.

    The graph is written in a scratch folder and renamed into place, so a crash or a second
    process never leaves a half-written graph behind.

    Args:
        copy_model: export a deep copy, for when another thread may run ``model`` meanwhile.
    """
    input_size = meta["data_config"]["input_size"]
    src = copy.deepcopy(model) if copy_model else model
    root = cache_dir("onnx")
    _remove_stale_scratch(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        t0 = time.perf_counter()
        exporter = export_onnx(src, input_size, tmp / GRAPH_FILE)
        export_s = time.perf_counter() - t0
        runner = OrtRunner(tmp / GRAPH_FILE)
        diff = verify_graph(runner, src, input_size)
        del runner
        full = {**meta, "format": CACHE_FORMAT, "key": key, "exporter": exporter,
                "export_seconds": round(export_s, 3), "verify_max_diff": diff, **cache_versions()}
        (tmp / META_FILE).write_text(json.dumps(full, indent=1), encoding="utf-8")
        try:
            os.replace(tmp, graph_dir(key))
        except OSError:  # another process finished the same graph first: use theirs
            if find_graph(key) is None:
                raise
        log.info("exported %s to ONNX with the %s exporter in %.2f s", meta["name"], exporter, export_s)
    except ExportError:
        raise
    except Exception as e:  # any failure of the export tool chain: a reason for the log, never a crash
        raise ExportError(f"{type(e).__name__}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = find_graph(key)
    if found is None:
        raise ExportError(f"the exported graph did not land in {graph_dir(key)}")
    return found


def _remove_stale_scratch(root: Path, older_than_s: float = 3600) -> None:
    """Scratch folders of exports that never finished (the app was closed mid-export) older than an hour."""
    now = time.time()
    for p in root.glob(".*"):
        try:
            if p.is_dir() and now - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


# -- the torch-free start ------------------------------------------------------------------------
def record_request(model: str | os.PathLike | None, weights: str | os.PathLike | None, loaded: Any,
                   hf_hub_id: str | None, graph: GraphInfo) -> None:
    """Remember that ``load(model, weights)`` resolved to ``graph``, for the next torch-free start."""
    files = _files_of(model) + _files_of(weights)
    if loaded.weights.path is not None:
        files.append(Path(loaded.weights.path))
    entry = {
        **cache_versions(), "graph": graph.key, "hf_hub_id": hf_hub_id,
        "source": {"kind": loaded.weights.kind, "detail": loaded.weights.detail,
                   "path": None if loaded.weights.path is None else str(Path(loaded.weights.path).resolve())},
        "untrained_reason": loaded.untrained_reason, "files": _fingerprint(files),
    }
    try:
        path = _requests_dir() / f"{request_id(model, weights)}.json"
        previous = _read_json(path)
        _write_json(path, entry)
        if previous and previous.get("graph") not in (None, graph.key):
            _prune_graph(previous["graph"])
    except OSError as e:  # the graph still serves this run; only the next start is slower
        log.warning("could not record the ONNX graph for the next start (%s)", e)


def _prune_graph(key: str) -> None:
    """Delete graph ``key`` unless another request still points at it (old weights' graphs go)."""
    for entry_path in _requests_dir().glob("*.json"):
        entry = _read_json(entry_path)
        if entry and entry.get("graph") == key:
            return
    shutil.rmtree(graph_dir(key), ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@dataclass
class CachedLoad:
    """What a torch-free start found: the graph, and the weights as they were resolved this time."""

    graph: GraphInfo
    source: WeightsSource
    untrained_reason: str | None


def find_cached_load(
    model: str | os.PathLike | None,
    weights: str | os.PathLike | None,
    *,
    allow_download: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> CachedLoad | None:
    """The cached graph a ``load(model, weights)`` call would use, found without torch, or ``None``.

    ``None`` whenever anything differs from the recorded call: versions, the weights files' size or
    mtime, or where the Hugging Face cache now finds the weights (a download counts as a change).
    """
    entry = _read_json(_requests_dir() / f"{request_id(model, weights)}.json")
    if entry is None or any(entry.get(k) != v for k, v in cache_versions().items()):
        return None
    recorded = entry.get("source") or {}
    reason = entry.get("untrained_reason")
    try:
        if recorded.get("kind") in ("file", "dir"):
            source = WeightsSource(recorded["kind"], Path(recorded["path"]), recorded.get("detail", ""))
            files = _files_of(model) + _files_of(weights) + [source.path]
        else:  # the catalogue's order: Hugging Face cache > download > none, asked again
            source, reason = resolve_weights(entry.get("hf_hub_id"), allow_download=allow_download,
                                             progress=progress, cancel=cancel)
            now = None if source.path is None else str(Path(source.path).resolve())
            if now != recorded.get("path"):
                return None
            files = _files_of(model) + _files_of(weights) + ([source.path] if source.path else [])
        if _fingerprint(files) != entry.get("files"):
            return None
    except (OSError, KeyError, TypeError):
        return None
    graph = find_graph(str(entry.get("graph")))
    if graph is None:
        return None
    return CachedLoad(graph, source, reason)
