"""Model versions: finetuning into an existing model folder keeps the earlier models, and any of them
can be made current again.

Layout (the shared contract: the folder root is the current version and loads in plain timm)::

    MODEL_DIR/config.json, model.safetensors     the current version (timm's local-dir layout)
    MODEL_DIR/versions/index.json                 {"format": 1, "current": N, "versions": [entry, ...]}
    MODEL_DIR/versions/v1/config.json, ...        every version's own files, as saved (v1, v2, ...)

Every version, the current one included, has its own copy under ``versions/vN`` (immutable once
written), so a rollback copies bytes and gives byte-identical predictions. An index entry holds:
``number``, ``created`` (UTC, ISO 8601), ``base_model``, ``mode``, ``parent`` (the version it was
finetuned from, if any), ``dataset`` (folder, classes, train/val image counts), ``val_accuracy``,
``unknown`` (the calibration, :mod:`.unknown`) and ``sha256`` of the weights file.

A folder saved before versions existed (no index) gets its model recorded as v1 before the next
save replaces it. The root is written by :func:`squeezelens.core.saved_model.save_model` (which
keeps ``versions/``); a cancelled or failed finetune never reaches the save, so no version changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .atomic_files import write_text_atomic
from .errors import OutputError, UsageError

VERSIONS_DIR = "versions"
INDEX_FILE = "index.json"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FORMAT = 1


@dataclass
class ModelVersion:
    """One saved version of a model folder (an ``index.json`` entry)."""

    number: int
    created: str
    base_model: str | None = None
    mode: str | None = None
    parent: int | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    val_accuracy: float | None = None
    unknown: dict[str, Any] | None = None
    sha256: str = ""

    @property
    def name(self) -> str:
        return f"v{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class VersionIndex:
    """``versions/index.json``: the versions, oldest first, and which one the root holds."""

    current: int | None = None
    versions: list[ModelVersion] = field(default_factory=list)

    def get(self, number: int) -> ModelVersion:
        """The entry of version ``number``.

        Raises:
            UsageError: there is no such version.
        """
        for v in self.versions:
            if v.number == number:
                return v
        have = ", ".join(str(v.number) for v in self.versions) or "none"
        raise UsageError(f"no version {number} (versions: {have})")


def versions_dir(model_dir: str | os.PathLike[str]) -> Path:
    return Path(model_dir) / VERSIONS_DIR


def version_dir(model_dir: str | os.PathLike[str], number: int) -> Path:
    """``MODEL_DIR/versions/vN``: a complete saved model (loads with ``Classifier.load`` and timm)."""
    return versions_dir(model_dir) / f"v{number}"


def read_index(model_dir: str | os.PathLike[str]) -> VersionIndex:
    """The index of ``model_dir`` (empty when it has none).

    Raises:
        OutputError: the index exists but cannot be read or parsed.
    """
    path = versions_dir(model_dir) / INDEX_FILE
    if not path.is_file():
        return VersionIndex()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return VersionIndex(raw.get("current"), [ModelVersion.from_dict(v) for v in raw.get("versions", [])])
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise OutputError(f"the versions index cannot be read ({type(e).__name__})", str(path)) from None


def _write_index(model_dir: Path, index: VersionIndex) -> None:
    data = {"format": INDEX_FORMAT, "current": index.current, "versions": [v.to_dict() for v in index.versions]}
    write_text_atomic(versions_dir(model_dir) / INDEX_FILE, json.dumps(data, indent=2) + "\n")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def has_model(model_dir: str | os.PathLike[str]) -> bool:
    """The folder root holds a saved model (config + weights)."""
    p = Path(model_dir)
    return (p / CONFIG_FILE).is_file() and (p / WEIGHTS_FILE).is_file()


def _entry_from_config(number: int, model_dir: Path, parent: int | None, digest: str) -> ModelVersion:
    try:
        cfg = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cfg = {}
    ft = cfg.get("squeezelens_finetune") or {}
    labels = cfg.get("label_names") or []
    dataset = {"data_dir": ft.get("data_dir"), "classes": len(labels) or cfg.get("num_classes"),
               "train_images": ft.get("train_images"), "val_images": ft.get("val_images")}
    return ModelVersion(
        number=number, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        base_model=ft.get("base_model") or cfg.get("architecture"), mode=ft.get("mode"), parent=parent,
        dataset=dataset, val_accuracy=ft.get("val_accuracy"), unknown=cfg.get("squeezelens_unknown"), sha256=digest,
    )


def record_current(model_dir: str | os.PathLike[str], parent: int | None = None) -> ModelVersion:
    """Record the model at the root as a version (copied to ``versions/vN``) and mark it current.

    A root whose weights equal an existing version's (same SHA-256) is not copied again: that version
    becomes current. Call it after each successful save.

    Raises:
        OutputError: the root holds no model, or ``versions/`` cannot be written.
    """
    root = Path(model_dir)
    if not has_model(root):
        raise OutputError("holds no saved model (config.json + model.safetensors)", str(root))
    index = read_index(root)
    digest = _sha256(root / WEIGHTS_FILE)
    for v in index.versions:
        if v.sha256 == digest:
            if index.current != v.number:
                index.current = v.number
                _write_index(root, index)
            return v
    number = max((v.number for v in index.versions), default=0) + 1
    entry = _entry_from_config(number, root, parent, digest)
    dest = version_dir(root, number)
    versions_dir(root).mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".v{number}.", dir=versions_dir(root)))
    try:
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            shutil.copy2(root / name, tmp / name)
        if dest.exists():  # a leftover of a copy cut off before its index entry was written
            shutil.rmtree(dest)
        tmp.rename(dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot keep this version ({e.strerror or e})", str(dest)) from None
    index.versions.append(entry)
    index.current = number
    _write_index(root, index)
    return entry


def prepare_for_save(model_dir: str | os.PathLike[str]) -> int | None:
    """Before a save replaces the root: make sure the model there is kept as a version.

    Returns:
        The number of the version the root held (the new model's previous version), or None when
        the folder holds no model yet.
    """
    if not has_model(model_dir):
        return None
    return record_current(model_dir).number


def rollback(model_dir: str | os.PathLike[str], number: int) -> ModelVersion:
    """Make version ``number`` current: its files are copied over the root (each file replaced atomically).

    The version it replaces stays in ``versions/`` (recorded first if it was not). The weights are
    the same bytes as when that version was saved, so its predictions are identical.

    Raises:
        UsageError: no such version.
        OutputError: its files are missing or the root cannot be written.
    """
    from .saved_model import save_lock

    with save_lock(model_dir):
        return _rollback_locked(Path(model_dir), number)


def make_current(model_dir: str | os.PathLike[str], number: int) -> ModelVersion:
    """Make version ``number`` current (a staged version after the user chose it): :func:`rollback`."""
    return rollback(model_dir, number)


def _rollback_locked(root: Path, number: int) -> ModelVersion:
    index = read_index(root)
    entry = index.get(number)
    if has_model(root):
        record_current(root)  # the model being replaced is kept (a no-op when already recorded)
        index = read_index(root)
    src = version_dir(root, number)
    if not (src / WEIGHTS_FILE).is_file() or not (src / CONFIG_FILE).is_file():
        raise OutputError(f"version {number}'s files are missing", str(src))
    staged: list[tuple[Path, Path]] = []
    try:
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".rollback", dir=root)
            os.close(fd)
            shutil.copy2(src / name, tmp)
            staged.append((Path(tmp), root / name))
        for tmp_path, dest in staged:  # weights first: a cut-off rollback is repaired by running it again
            os.replace(tmp_path, dest)
    except OSError as e:
        for tmp_path, _ in staged:
            tmp_path.unlink(missing_ok=True)
        raise OutputError(f"cannot make version {number} current ({e.strerror or e})", str(root)) from None
    index.current = number
    _write_index(root, index)
    return entry


def save_version(model: Any, model_dir: str | os.PathLike[str], label_names: list[str] | None = None,
                 extra_config: dict[str, Any] | None = None, *, parent: int | None = None,
                 data_dir: str | os.PathLike[str] | None = None, stage_only: bool = False) -> tuple[int | None, int]:
    """Save ``model`` as the next version of ``model_dir``, all under the folder's save lock.

    The model at the root (if any) is recorded first. Without ``stage_only`` the new model is saved to
    the root (:func:`squeezelens.core.saved_model.save_model`) and recorded as the current version. With
    ``stage_only`` and a model already at the root, the new model goes to ``versions/vN`` only and the
    root stays as it was (the index's ``current`` unchanged) until :func:`make_current` is called; with
    no model at the root there is nothing to keep, so it becomes current as without ``stage_only``.

    Returns:
        ``(previous, new)``: the version the root held before (None if none) and the new version's number.

    Raises:
        OutputError, UsageError, WeightsError: as :func:`squeezelens.core.saved_model.save_model`.
    """
    from .saved_model import save_lock, save_model

    root = Path(model_dir)
    with save_lock(root):
        previous = prepare_for_save(root)
        if not stage_only or previous is None:
            save_model(model, root, label_names, extra_config, data_dir=data_dir)
            return previous, record_current(root, parent=parent).number
        index = read_index(root)
        number = max((v.number for v in index.versions), default=0) + 1
        dest = version_dir(root, number)
        if dest.exists():  # a leftover of a staged save cut off before its index entry was written
            shutil.rmtree(dest)
        save_model(model, dest, label_names, extra_config, data_dir=data_dir)
        entry = _entry_from_config(number, dest, parent, _sha256(dest / WEIGHTS_FILE))
        index.versions.append(entry)
        _write_index(root, index)
        return previous, number


def format_versions(index: VersionIndex) -> str:
    """The ``versions`` command's table: one line per version, ``*`` on the current one."""
    if not index.versions:
        return "no versions recorded (finetune into this folder to start keeping them)\n"
    rows = [("", "VERSION", "CREATED (UTC)", "BASE MODEL", "MODE", "FROM", "CLASSES", "TRAIN/VAL", "VAL ACC",
             "UNKNOWN <")]
    for v in index.versions:
        d = v.dataset or {}
        thr = (v.unknown or {}).get("threshold")
        rows.append((
            "*" if v.number == index.current else "", v.name, v.created.replace("+00:00", ""), v.base_model or "?",
            v.mode or "?", f"v{v.parent}" if v.parent else "-", str(d.get("classes") or "?"),
            f"{d.get('train_images', '?')}/{d.get('val_images', '?')}",
            "?" if v.val_accuracy is None else f"{v.val_accuracy:.1%}",
            "-" if thr is None else f"{thr:.0%}",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows)
    return out + "\n* current (the folder itself; loads in plain timm)\n"
