"""Saving a model in timm's local-dir layout, atomically.

``config.json`` (architecture, num_classes, label_names, pretrained_cfg) + ``model.safetensors``,
written by timm's own ``save_for_hf`` into a temporary folder beside the target, then renamed into
place: a failed or cancelled save leaves any earlier model folder as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import OutputError, UsageError


def save_model(
    model: Any,
    out_dir: str | os.PathLike,
    label_names: Sequence[str] | None = None,
    extra_config: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``out_dir`` (replacing a previous model there only once all is written)."""
    from timm.models import save_for_hf

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a folder", str(out))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.saving-", dir=out.parent))
    try:
        config: dict[str, Any] = dict(extra_config or {})
        if label_names is not None:
            if len(label_names) != model.num_classes:
                raise UsageError(
                    f"{len(label_names)} label names for a model with {model.num_classes} classes"
                )
            config["label_names"] = list(label_names)
        save_for_hf(model, str(tmp), model_config=config, safe_serialization=True)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _swap_into_place(new: Path, out: Path) -> None:
    """Rename ``new`` to ``out``; an existing ``out`` is moved aside first and removed last."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    try:
        if old is not None and (old / "versions").is_dir():  # issue 16's earlier versions: kept (15 hardens this)
            (old / "versions").rename(new / "versions")
        new.rename(out)
    except BaseException:
        if old is not None:
            if (new / "versions").is_dir() and not (old / "versions").exists():
                (new / "versions").rename(old / "versions")
            old.rename(out)  # put the previous model back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
