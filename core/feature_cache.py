"""Pooled backbone features of image files, extracted once and kept on disk.

One SQLite file per *feature extractor* under the user cache folder
(``cache_dir("features")/<model key>.sqlite``). The model key hashes the architecture, every
backbone tensor (the classifier head excluded, so a retrained head shares the cache), the
preprocessing (input size, crop, interpolation, mean/std, JPEG decode scale) and the pooling. Rows
are keyed by the file's resolved path, size and modification time, so an edited or replaced file is
extracted again. Rows are committed per batch: a cancelled extraction keeps what it finished.

It is only a cache, and it never stops a run nor answers wrongly (docs/RELIABILITY.md):

- a database locked by another process is skipped with one warning (after a short wait), never
  deleted and never reported as "database is locked";
- a damaged file (not a database, malformed pages) is a miss: it is started again;
- a full or read-only disk means the run goes on without storing (one warning);
- a stored vector with a NaN or infinite value, or of the wrong length, is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import Cancelled, ImageLoadError
from .images import open_image
from .paths import cache_dir
from .state_digest import state_digest

if TYPE_CHECKING:
    import torch

    from .feature_graph import FeatureRunner

#: Bumped when the stored layout, the meaning of a feature or the key's digest changes (2: the
#: backbone digest became :func:`.state_digest.state_digest`, so keys made with format 1 are misses;
#: 3: the key names the extractor, engine and precision, so torch-made vectors of format 2 are misses).
CACHE_FORMAT = 3

#: (images done, images to extract, seconds elapsed) after each extracted batch.
BatchFn = Callable[[int, int, float], None]
#: Seconds to wait for another process's lock on the database before going on without the cache.
BUSY_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)
# sqlite's result codes (https://www.sqlite.org/rescode.html)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26


class CacheUnavailable(Exception):
    """The feature cache cannot be used this time (locked by another process, disk full or read-only)."""


def _kind(e: BaseException) -> str:
    """``locked``, ``damaged`` or ``other`` for an sqlite error (by result code, else by message)."""
    code = getattr(e, "sqlite_errorcode", None)
    text = str(e).lower()
    if code is not None:
        code &= 0xFF  # the primary code of an extended one
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text or "busy" in text:
        return "locked"
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return "damaged"
    return "other"


def file_key(path: str | os.PathLike) -> str:
    """``resolved path | size | mtime_ns``: changes when the file is replaced or edited."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


def backbone_digest(model: torch.nn.Module) -> str:
    """:func:`.state_digest.state_digest` of every tensor of ``model`` except its classifier head
    (timm's ``pretrained_cfg["classifier"]``, else ``fc``), so it names the backbone weights."""
    cfg = getattr(model, "pretrained_cfg", None)
    head = cfg.get("classifier", "fc") if isinstance(cfg, dict) else "fc"
    return state_digest(model, exclude=(head,) if isinstance(head, str) else tuple(head))


def architecture_of(model: Any) -> str:
    """A timm model's architecture name (``pretrained_cfg["architecture"]``), else its class name."""
    return str((getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__)


def model_key(model: Any, data_config: Mapping[str, Any], decode_min_side: int | None,
              extractor: Mapping[str, str] | None = None) -> str:
    """The cache key of a feature extractor: architecture, backbone weights, preprocessing, pooling,
    and what computes the features (``extractor``: :attr:`.feature_graph.FeatureRunner.identity`,
    i.e. engine, device, precision and graph kind; default eager torch fp32 on the CPU), so vectors
    of another engine or precision are never mixed in with these."""
    if extractor is None:
        from .feature_graph import runner_identity

        extractor = runner_identity("torch", "cpu")
    arch = architecture_of(model)
    parts = {
        "format": CACHE_FORMAT,
        "architecture": arch,
        "weights": backbone_digest(model),
        "data": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(data_config.items())},
        "decode_min_side": decode_min_side,
        "pool": str(getattr(model, "global_pool", "")),
        "features": "forward_head(pre_logits=True)",
        "extractor": dict(sorted(extractor.items())),
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return f"{arch}-{hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}"


class FeatureCache:
    """Feature vectors of files for one extractor (``key`` from :func:`model_key`).

    Problems while it is in use never raise: reads become misses and writes stop, with one warning
    through ``on_warning`` (default: the log).
    """

    def __init__(self, key: str, folder: Path | None = None,
                 on_warning: Callable[[str], None] | None = None) -> None:
        """Open (or create) the cache file of ``key``.

        Raises:
            CacheUnavailable: the folder or file cannot be made or opened (a file in its place, a
                full or read-only disk), or another process holds a lock on it; nothing was deleted.
        """
        self.key = key
        self._warn_fn = on_warning
        self._warned = False
        self._writable = True
        try:
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
            self.path = (folder or cache_dir("features")) / f"{key}.sqlite"
        except OSError as e:
            raise CacheUnavailable(f"its folder cannot be made ({e.strerror or e})") from e
        try:
            self._db = self._open()
        except sqlite3.Error as e:
            if _kind(e) != "damaged":
                raise CacheUnavailable(self._describe(e)) from e
            self._start_again()  # a damaged cache file: it is only a cache

    @classmethod
    def open_or_none(cls, key: str, folder: Path | None, on_warning: Callable[[str], None]) -> FeatureCache | None:
        """The cache, or None after one ``on_warning`` message saying why the run goes on without it."""
        try:
            return cls(key, folder, on_warning)
        except CacheUnavailable as e:
            on_warning(f"the feature cache is not used this time: {e}")
            return None

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS features (file TEXT PRIMARY KEY, dim INTEGER, data BLOB)")
            db.commit()
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _start_again(self) -> None:
        """Replace a damaged database file by an empty one (never called for a locked one)."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        try:
            self._db = self._open()
        except sqlite3.Error as e:
            raise CacheUnavailable(self._describe(e)) from e

    def _describe(self, e: BaseException) -> str:
        kind = _kind(e)
        if kind == "locked":
            return f"another program holds a lock on {self.path.name}; it was left alone"
        text = str(e)
        if "full" in text.lower():
            return "the disk is full"
        if "readonly" in text.lower() or "read-only" in text.lower():
            return "the cache folder is read-only"
        return f"{self.path} cannot be used ({text})"

    def _problem(self, e: sqlite3.Error, doing: str) -> None:
        """A problem in use: damaged -> start again; anything else -> stop writing. One warning."""
        if _kind(e) == "damaged":
            with _suppress():
                self._db.close()
            try:
                self._start_again()
                message = f"the feature cache was damaged and was started again ({doing})"
            except CacheUnavailable as again:
                self._writable = False
                message = f"the feature cache is not used any more this run: {again}"
        else:
            self._writable = False
            message = f"the feature cache is not used any more this run ({doing}): {self._describe(e)}"
        if not self._warned:
            self._warned = True
            (self._warn_fn or log.warning)(message)

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors among ``keys`` (missing, damaged, non-finite and wrong-length ones are absent)."""
        out: dict[str, np.ndarray] = {}
        if not self._writable:
            return out
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT file, dim, data FROM features WHERE file IN ({marks})"
            try:
                rows = self._db.execute(query, chunk).fetchall()
            except sqlite3.Error as e:
                self._problem(e, "reading")
                return {}
            for k, dim, data in rows:
                if not isinstance(data, bytes) or len(data) % 4:
                    continue
                vec = np.frombuffer(data, dtype=np.float32)
                if vec.size == dim and bool(np.isfinite(vec).all()):
                    out[k] = vec
        return out

    def put_many(self, items: Mapping[str, np.ndarray]) -> None:
        """Store vectors (float32) and commit; non-finite ones are not stored."""
        if not self._writable:
            return
        rows = [(k, int(v.size), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items.items()
                if bool(np.isfinite(v).all())]
        try:
            self._db.executemany("INSERT OR REPLACE INTO features (file, dim, data) VALUES (?, ?, ?)", rows)
            self._db.commit()
        except sqlite3.Error as e:
            with _suppress():
                self._db.rollback()
            self._problem(e, "writing")

    def __len__(self) -> int:
        try:
            return int(self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0])
        except sqlite3.Error:
            return 0

    def close(self) -> None:
        with _suppress():
            self._db.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _suppress() -> contextlib.AbstractContextManager[None]:
    return contextlib.suppress(sqlite3.Error)


@dataclass
class Features:
    """Feature rows for a list of files: ``vectors[i]`` belongs to ``paths[ok[i]]``."""

    vectors: np.ndarray  # (n_ok, dim) float32
    ok: list[int]  # indices into the requested paths that have a vector
    failed: dict[int, str] = field(default_factory=dict)  # index -> reason
    hits: int = 0
    misses: int = 0
    seconds: float = 0.0


def extract_features(
    model: Any,
    paths: Sequence[Path],
    transform: Callable[[Any], Any],
    cache: FeatureCache | None,
    *,
    device: str = "cpu",
    batch_size: int = 32,
    decode_min_side: int | None = None,
    on_batch: BatchFn | None = None,
    cancel: threading.Event | None = None,
    runner: FeatureRunner | None = None,
) -> Features:
    """Pooled pre-logits features of ``paths``: from the cache where present, else by a forward pass.

    Args:
        model: a timm model in eval mode on ``device``.
        paths: image files.
        transform: the eval transform (PIL image -> CHW tensor).
        cache: where to read and store vectors; ``None`` extracts everything.
        decode_min_side: JPEG reduced-scale decode bound (see ``images.open_image``).
        on_batch: progress after each extracted batch (cache hits are not reported as batches).
        cancel: checked before each batch; raises :class:`Cancelled`.
        runner: what computes the features (:func:`.feature_graph.open_feature_runner`: the ONNX
            Runtime features graph on the CPU); default eager torch on ``device``. ``cache`` must
            be keyed with its :attr:`~.feature_graph.FeatureRunner.identity`.
    """
    import torch

    from .feature_graph import TorchFeatureRunner

    if runner is None:
        runner = TorchFeatureRunner(model, device)
    keyed_as = runner.identity  # vectors are stored only while the runner is still what the key names

    t0 = time.perf_counter()
    keys: list[str | None] = []
    failed: dict[int, str] = {}
    for i, p in enumerate(paths):
        try:
            keys.append(file_key(p))
        except OSError as e:
            keys.append(None)
            failed[i] = f"cannot read the file ({e.strerror or e})"
    found = cache.get_many([k for k in keys if k is not None]) if cache is not None else {}
    vectors: dict[int, np.ndarray] = {i: found[k] for i, k in enumerate(keys) if k is not None and k in found}
    hits = len(vectors)
    todo = [i for i, k in enumerate(keys) if k is not None and i not in vectors]
    done = 0
    for start in range(0, len(todo), batch_size):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        chunk = todo[start:start + batch_size]
        tensors, idx = [], []
        for i in chunk:
            try:
                tensors.append(transform(open_image(paths[i], decode_min_side)))
                idx.append(i)
            except ImageLoadError as e:
                failed[i] = e.reason
        if tensors:
            feats = runner.features(torch.stack(tensors))
            new = {i: feats[j] for j, i in enumerate(idx)}
            vectors.update(new)
            if cache is not None and runner.identity == keyed_as:
                cache.put_many({keys[i]: v for i, v in new.items()})  # type: ignore[misc]
        done += len(chunk)
        if on_batch is not None:
            on_batch(done, len(todo), time.perf_counter() - t0)
    ok = sorted(vectors)
    dim = next(iter(vectors.values())).size if vectors else 0
    stacked = np.stack([vectors[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, dim), np.float32)
    return Features(stacked, ok, failed, hits, len(todo) - sum(1 for i in todo if i in failed),
                    time.perf_counter() - t0)
