"""The cache of exported ONNX graphs, and the torch-free start it allows.

Layout, under ``cache_dir("onnx")``:

- ``<graph key>/model.onnx`` + ``meta.json``: one exported graph. The key hashes everything that
  changes an answer: the architecture, the class names, the whole data config (input size, crop,
  interpolation, mean/std), the torch/timm/onnx versions and a digest of the whole state_dict
  (:func:`.state_digest.state_digest`), so new weights, renamed classes or edited preprocessing give
  a new graph and never a stale one. ``meta.json`` records the graph file's size and BLAKE2b digest;
  an entry whose record is malformed, whose labels do not match its class count, or whose graph
  file differs from the digest is a miss (:func:`find_graph`), and the entry is removed so the
  export that follows really replaces it.
- ``requests/<request id>.json``: what a ``Classifier.load(model, weights)`` call resolved to the
  last time (the graph key, where the weights came from, and the size and mtime of the weights
  files it read). With it, a later start finds its graph without importing torch or timm: the
  weights are looked up again the cheap way and compared with what was recorded.
- ``.<graph key>.<random>/``: the scratch folder of an export in progress (:func:`scratch_dir`),
  renamed into place when it is complete (:func:`publish`); one left behind by an interrupted
  export is removed an hour later.

Nothing here imports torch or timm.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import catalogue
from .errors import ExportError
from .paths import cache_dir
from .weights import ProgressFn, WeightsSource, resolve_weights

if TYPE_CHECKING:
    from .model_loader import LoadedModel

log = logging.getLogger(__name__)

#: Bump when the graph layout or the meta/request files change; old entries are then ignored.
#: (2: the key covers labels and the data config; meta.json holds the graph's digest.)
CACHE_FORMAT = 2
GRAPH_FILE, META_FILE = "model.onnx", "meta.json"
#: The graph file's (size, mtime, ctime, inode) when its digest last matched: while they are the
#: same the file was not written since, and the digest is not computed again (0.1-0.8 s for 67 MB).
VERIFIED_FILE = "verified.json"
#: Scratch folders older than this (seconds) belong to an export that will never finish.
STALE_SCRATCH_S = 3600.0


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def cache_versions() -> dict[str, Any]:
    """What an exported graph depends on besides the weights (read without importing torch)."""
    return {"format": CACHE_FORMAT, "torch": _dist_version("torch"), "timm": _dist_version("timm"),
            "onnx": _dist_version("onnx")}


# -- keys ----------------------------------------------------------------------------------------
def graph_key(architecture: str, num_classes: int, input_size: Sequence[int], weights_digest: str, *,
              labels: Sequence[str] = (), data_config: Mapping[str, Any] | None = None,
              graph: str = "logits") -> str:
    """The cache key of one exported graph: 32 hex characters (SHA-256 of the identity, cut).

    Args:
        weights_digest: :func:`.state_digest.state_digest` of the whole model.
        labels: the class names (a graph's meta carries them to the torch-free start).
        data_config: the preprocessing (input size, crop, interpolation, mean/std), likewise.
        graph: what the graph outputs: ``logits`` (the classifier's graph; its keys are those made
            before graph kinds existed) or ``features`` (:mod:`.feature_graph`), so the two graphs
            of one model never share a key.
    """
    ident = {"arch": architecture, "classes": int(num_classes), "input": [int(x) for x in input_size],
             "weights": weights_digest, "labels": [str(x) for x in labels],
             "data": _json_safe(dict(data_config or {})), **cache_versions()}
    if graph != "logits":
        ident["graph"] = graph
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def request_id(model: str | os.PathLike[str] | None, weights: str | os.PathLike[str] | None) -> str:
    """The identity of a ``load(model, weights)`` call: names as given, paths made absolute."""
    def norm(x: str | os.PathLike[str] | None) -> str:
        if x is None:
            return ""
        p = Path(x)
        return str(p.resolve()) if p.exists() else str(x)

    ident = {"model": norm(model) or catalogue.DEFAULT_MODEL, "weights": norm(weights)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def graph_dir(key: str) -> Path:
    """The folder of graph ``key`` (whether or not it exists)."""
    return cache_dir("onnx", create=False) / key


def _requests_dir() -> Path:
    return cache_dir("onnx", "requests")


def _fingerprint(paths: Sequence[Path]) -> list[list[Any]]:
    out = []
    for p in sorted({Path(p).resolve() for p in paths}):
        st = p.stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def _files_of(path: str | os.PathLike[str] | None) -> list[Path]:
    """The regular files a weights argument stands for: the file, or a saved-model folder's files."""
    if path is None:
        return []
    p = Path(path)
    if p.is_dir():
        return [c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")]
    return [p] if p.is_file() else []


# -- graphs ----------------------------------------------------------------------------------------
@dataclass
class GraphInfo:
    """An exported graph on disk, and what a Classifier needs to describe its model without torch."""

    key: str
    path: Path
    meta: dict[str, Any]


def model_meta(loaded: LoadedModel, data_config: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-safe description of a loaded model that a torch-free start needs."""
    cfg = json.loads(json.dumps(loaded.pretrained_cfg, default=str))
    return {
        "name": loaded.name, "architecture": loaded.architecture, "labels": list(loaded.labels),
        "num_classes": len(loaded.labels), "pretrained_cfg": cfg, "license": loaded.license,
        "data_config": json.loads(json.dumps(dict(data_config), default=str)),
    }


def file_digest(path: Path) -> str:
    """BLAKE2b (20 bytes, hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def meta_problem(meta: Any, key: str | None = None) -> str | None:
    """What is wrong with a ``meta.json``'s contents (None when it is a usable record).

    Checked: a dict of this :data:`CACHE_FORMAT` (and ``key``), a name, class names as a list of
    strings as long as ``num_classes``, a data config with a 3-element ``input_size`` and 3-element
    ``mean``/``std`` (std > 0), and the graph file's size and digest.
    """
    if not isinstance(meta, dict):
        return "the record is not a JSON object"
    if meta.get("format") != CACHE_FORMAT or (key is not None and meta.get("key") != key):
        return "the record is of another cache format or key"
    labels, n, cfg = meta.get("labels"), meta.get("num_classes"), meta.get("data_config")
    if not isinstance(meta.get("name"), str) or not isinstance(meta.get("architecture"), str):
        return "the record has no model name"
    if meta.get("graph", "logits") == "features":  # a features graph (.feature_graph): no classes
        width = meta.get("num_features")
        if not isinstance(width, int) or width < 1:
            return "the features graph's record has no feature width"
    elif not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or labels == []:
        return "the record's class names are not a list of strings"
    elif not isinstance(n, int) or n != len(labels):
        return "the record's class count does not match its class names"
    if not isinstance(cfg, dict):
        return "the record has no data config"
    size, mean, std = cfg.get("input_size"), cfg.get("mean"), cfg.get("std")
    if not (isinstance(size, list) and len(size) == 3 and all(isinstance(x, int) and x > 0 for x in size)):
        return "the record's input size is not three positive integers"
    for name, v in (("mean", mean), ("std", std)):
        if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
            return f"the record's {name} is not three numbers"
    if not all(x > 0 for x in std):  # type: ignore[union-attr]
        return "the record's std is not positive"
    if not isinstance(meta.get("graph_size"), int) or not isinstance(meta.get("graph_digest"), str):
        return "the record has no digest of the graph"
    return None


def find_graph(key: str, *, verify: bool = True) -> GraphInfo | None:
    """The cached graph ``key``, if a complete and intact one of this :data:`CACHE_FORMAT` is on disk.

    A record that is unreadable or malformed (:func:`meta_problem`), or a graph file whose size or
    digest differs from the record, is a miss; such an entry is removed (logged) so that the next
    :func:`publish` replaces it. ``verify=False`` skips hashing the graph (only to ask "is one there?").
    """
    d = graph_dir(key)
    try:
        meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        if d.exists() or d.is_symlink():
            discard(key, "it has no meta.json")
        return None
    except (OSError, ValueError) as e:
        discard(key, f"its meta.json cannot be read ({type(e).__name__})")
        return None
    problem = meta_problem(meta, key)
    if problem is None:
        graph = d / GRAPH_FILE
        try:
            st = graph.stat() if graph.is_file() else None
            if st is None or st.st_size != meta["graph_size"]:
                problem = "the graph file is missing or of another size"
            elif verify:
                stamp = {"stamp": [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino],
                         "digest": meta["graph_digest"]}
                if _read_json(d / VERIFIED_FILE) != stamp:
                    if file_digest(graph) != meta["graph_digest"]:
                        problem = "the graph file is damaged (its digest differs)"
                    else:
                        with contextlib.suppress(OSError):
                            _write_json(d / VERIFIED_FILE, stamp)
        except OSError as e:
            problem = f"the graph file cannot be read ({e.strerror or e})"
    if problem is not None:
        discard(key, problem)
        return None
    return GraphInfo(key, d / GRAPH_FILE, meta)


def discard(key: str, why: str) -> None:
    """Remove graph ``key`` from the cache (it lied or is damaged), saying why in the log."""
    d = graph_dir(key)
    log.warning("cached ONNX graph %s is not used: %s; it will be exported again", key, why)
    with contextlib.suppress(OSError):
        if d.is_dir() and not d.is_symlink():
            shutil.rmtree(d)
        else:
            d.unlink()


@contextlib.contextmanager
def scratch_dir(key: str) -> Iterator[Path]:
    """A fresh scratch folder in the cache for writing graph ``key``; removed on leaving the block.

    Scratch folders that interrupted exports left behind are cleaned up first (:func:`remove_stale_scratch`).
    """
    root = cache_dir("onnx")
    remove_stale_scratch(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(scratch: Path, key: str, meta: Mapping[str, Any]) -> GraphInfo:
    """Write ``meta.json`` into ``scratch`` (which holds ``model.onnx``) and rename it into place as graph ``key``.

    The rename is atomic, so a crash or a second process never leaves a half-written graph behind;
    when another process published the same graph first, theirs is used.

    Raises:
        OSError: the folder could not be written or renamed.
        ExportError: the graph is not found in place afterwards.
    """
    graph = scratch / GRAPH_FILE
    full = {**meta, "format": CACHE_FORMAT, "key": key, **cache_versions(),
            "graph_size": graph.stat().st_size, "graph_digest": file_digest(graph)}
    problem = meta_problem(_json_safe(full), key)
    if problem is not None:
        raise ExportError(f"the graph's record would be unusable: {problem}")
    (scratch / META_FILE).write_text(json.dumps(full, indent=1), encoding="utf-8")
    target = graph_dir(key)
    if target.exists() or target.is_symlink():
        find_graph(key)  # a damaged entry there is removed; an intact one stays and is used below
    try:
        os.replace(scratch, target)
    except OSError:  # another process finished the same graph first: use theirs
        if find_graph(key) is None:
            raise
    found = find_graph(key)
    if found is None:
        raise ExportError(f"the exported graph did not land in {graph_dir(key)}")
    return found


def remove_stale_scratch(root: Path, older_than_s: float = STALE_SCRATCH_S) -> None:
    """Delete scratch folders (``.``-named) under ``root`` older than ``older_than_s`` seconds: exports
    that never finished (the app was closed mid-export). Younger ones may be another process's export."""
    now = time.time()
    for p in root.glob(".*"):
        try:
            if p.is_dir() and now - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


# -- the torch-free start ------------------------------------------------------------------------
def hf_hub_id_of(model: str | os.PathLike[str] | None, source: WeightsSource) -> str | None:
    """The Hugging Face repo a catalogue model's weights come from (None for files and folders)."""
    if source.kind in ("file", "dir"):
        return None
    try:
        return catalogue.find(str(model) if model is not None else catalogue.DEFAULT_MODEL)[1].hf_hub_id
    except KeyError:
        return None


def record_request(model: str | os.PathLike[str] | None, weights: str | os.PathLike[str] | None,
                   loaded: LoadedModel, graph: GraphInfo) -> None:
    """Remember that ``load(model, weights)`` resolved to ``graph``, for the next torch-free start.

    The graph the same request used before is deleted unless another request still uses it.
    A record that cannot be written is logged, not raised: only the next start is slower.
    """
    files = _files_of(model) + _files_of(weights)
    if loaded.weights.path is not None:
        files.append(Path(loaded.weights.path))
    entry = {
        **cache_versions(), "graph": graph.key, "name": loaded.name, "hf_hub_id": hf_hub_id_of(model, loaded.weights),
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


def prune_graphs_of_kind(kind: str, used: str, keep: int) -> list[str]:
    """Mark graph ``used`` as just used (its folder's mtime) and delete the least recently used graphs whose
    record names ``kind`` (``meta["graph"]``, e.g. ``features``) beyond ``keep``, ``used`` counted. Other
    kinds are never touched (logits graphs go with their requests, :func:`record_request`). Problems are
    logged, never raised: it is only a cache.

    Returns:
        The keys deleted.
    """
    root = graph_dir(used).parent
    found: list[tuple[float, str]] = []
    try:
        os.utime(root / used)
        for d in root.iterdir():
            if d.name.startswith(".") or d.name == used or not d.is_dir():
                continue
            meta = _read_json(d / META_FILE)
            if meta is not None and meta.get("graph") == kind:
                with contextlib.suppress(OSError):
                    found.append((d.stat().st_mtime, d.name))
    except OSError as e:
        log.warning("%s graphs were not pruned (%s)", kind, e)
        return []
    gone = [name for _, name in sorted(found, reverse=True)[max(0, keep - 1):]]
    for name in gone:
        shutil.rmtree(root / name, ignore_errors=True)
    return gone


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    if path.is_dir() and not path.is_symlink():  # a folder where the record should be: it is only a cache
        shutil.rmtree(path, ignore_errors=True)
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
    #: What the recorded load called the model (the CSV's ``model`` column), never another folder's name.
    name: str | None = None


def find_cached_load(
    model: str | os.PathLike[str] | None,
    weights: str | os.PathLike[str] | None,
    *,
    allow_download: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> CachedLoad | None:
    """The cached graph a ``load(model, weights)`` call would use, found without torch, or ``None``.

    ``None`` whenever anything differs from the recorded call: versions, the weights files' size or
    mtime, or where the Hugging Face cache now finds the weights (a download counts as a change).
    """
    try:
        entry = _read_json(_requests_dir() / f"{request_id(model, weights)}.json")
    except OSError as e:  # the cache folder cannot be made (a file in its place, read-only): no cache
        log.warning("the ONNX graph cache cannot be used (%s)", e)
        return None
    if entry is None or any(entry.get(k) != v for k, v in cache_versions().items()):
        return None
    recorded = entry.get("source") or {}
    reason = entry.get("untrained_reason")
    try:
        if recorded.get("kind") in ("file", "dir"):
            source = WeightsSource(recorded["kind"], Path(recorded["path"]), recorded.get("detail", ""))
            files = _files_of(model) + _files_of(weights) + [Path(recorded["path"])]
        else:  # the catalogue's order: Hugging Face cache > download > none, asked again
            source, reason = resolve_weights(entry.get("hf_hub_id"), allow_download=allow_download,
                                             progress=progress, cancel=cancel)
            now = None if source.path is None else str(Path(source.path).resolve())
            if now != recorded.get("path"):
                return None
            files = _files_of(model) + _files_of(weights) + ([source.path] if source.path else [])
        if _fingerprint(files) != entry.get("files"):
            return None
    except (OSError, KeyError, TypeError, AttributeError, ValueError):  # a record of the wrong shape: a miss
        return None
    graph = find_graph(str(entry.get("graph")))
    if graph is None:
        return None
    name = entry.get("name")
    return CachedLoad(graph, source, reason if isinstance(reason, str) else None,
                      name if isinstance(name, str) else None)
