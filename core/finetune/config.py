"""What a finetune run is asked to do: :class:`FinetuneConfig`, its defaults, and every check of it.

:meth:`FinetuneConfig.validate` is the one place the settings are checked; :func:`~.run.finetune`
calls it before any work, and the CLI and the GUI call it to refuse a bad form before starting.
Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..dataset_scan import DEFAULT_SEED, DEFAULT_VAL_SPLIT
from ..errors import OutputError, UsageError
from ..options import DEVICES, FINETUNE_MODES, FinetuneMode

Mode = FinetuneMode
MODES = FINETUNE_MODES
#: Maximum epochs when none are given: quick mode usually stops early on its patience.
DEFAULT_EPOCHS: dict[str, int] = {"quick": 50, "deep": 5}
#: Peak learning rate per mode (the cosine schedule's maximum).
DEFAULT_LR: dict[str, float] = {"quick": 1e-3, "deep": 1e-3}
#: AdamW weight decay per mode.
DEFAULT_WEIGHT_DECAY: dict[str, float] = {"quick": 1e-4, "deep": 0.05}
#: Smallest and largest square input side (pixels) a run may train at.
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 1024

#: How :meth:`FinetuneConfig.validate` names each setting in its messages, unless told otherwise.
SETTING_NAMES: dict[str, str] = {
    "epochs": "epochs", "batch_size": "batch size", "val_split": "validation split", "input_size": "input size",
    "lr": "learning rate", "weight_decay": "weight decay", "label_smoothing": "label smoothing",
    "patience": "patience", "num_workers": "workers",
}


@dataclass
class FinetuneConfig:
    """What to train, on what, and where to save it.

    Attributes:
        data_dir: class subfolders, or train/ and val/ of that form.
        output_dir: the model folder to write (replaced atomically at the end).
        model: base model: catalogue name (``arch`` or ``arch.tag``) or a saved-model folder.
        weights: explicit weights file for the base model.
        mode: ``quick`` (frozen backbone, cached features, new head) or ``deep`` (last stage + head).
        epochs: maximum epochs (default 50 quick, 5 deep).
        val_split: validation fraction when there is no val/ folder (strictly between 0 and 1).
        batch_size: images (quick: feature vectors too) per step.
        lr: peak learning rate (default 1e-3).
        weight_decay: AdamW weight decay (default 1e-4 quick, 0.05 deep).
        label_smoothing: cross-entropy label smoothing, in [0, 1).
        class_balanced: weight the loss by inverse class frequency.
        patience: quick mode stops after this many epochs without a better validation score.
        input_size: square input side in pixels instead of the model's own (recorded in the saved config).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        seed: seeds the split, shuffling, head init and augmentation (a run is repeatable on the CPU).
        num_workers: DataLoader worker processes in deep mode (0 = decode in this thread).
        resume: deep mode continues from the checkpoint of an earlier cancelled/failed run.
        allow_download: may the base weights be downloaded when not cached.
        use_cache: quick mode reads and writes the on-disk feature cache.
        feature_cache_dir: where that cache lives (default: ``cache_dir("features")``).
    """

    data_dir: str | os.PathLike[str]
    output_dir: str | os.PathLike[str]
    model: str | None = None
    weights: str | os.PathLike[str] | None = None
    mode: Mode = "quick"
    epochs: int | None = None
    val_split: float = DEFAULT_VAL_SPLIT
    batch_size: int = 32
    lr: float | None = None
    weight_decay: float | None = None
    label_smoothing: float = 0.1
    class_balanced: bool = True
    patience: int = 10
    input_size: int | None = None
    device: str = "auto"
    seed: int = DEFAULT_SEED
    num_workers: int = 0
    resume: bool = False
    allow_download: bool = True
    use_cache: bool = True
    feature_cache_dir: str | os.PathLike[str] | None = None

    @property
    def resolved_epochs(self) -> int:
        """``epochs``, or the mode's default (:data:`DEFAULT_EPOCHS`)."""
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.mode]

    @property
    def resolved_lr(self) -> float:
        """``lr``, or the mode's default peak learning rate (:data:`DEFAULT_LR`)."""
        return self.lr or DEFAULT_LR[self.mode]

    @property
    def resolved_weight_decay(self) -> float:
        """``weight_decay``, or the mode's default (:data:`DEFAULT_WEIGHT_DECAY`)."""
        return self.weight_decay if self.weight_decay is not None else DEFAULT_WEIGHT_DECAY[self.mode]

    def validate(self, names: Mapping[str, str] | None = None) -> None:
        """Check every setting, then the output folder (:func:`check_output_dir`); the first problem raises.

        Args:
            names: how to call a setting in the message, by field name, over :data:`SETTING_NAMES`
                (the CLI passes its flags: ``{"epochs": "--epochs", "val_split": "--val-split", ...}``).

        Raises:
            UsageError: a setting out of range: mode, device, epochs or batch size below 1, a
                validation split not strictly between 0 and 1, an input size outside 32..1024, a
                learning rate that is not positive, a negative weight decay or worker count, label
                smoothing outside [0, 1), patience below 1.
            OutputError: the output folder may not be written (see :func:`check_output_dir`).
        """
        name = {**SETTING_NAMES, **(names or {})}
        if self.mode not in MODES:
            raise UsageError(f"unknown mode '{self.mode}'; choose quick or deep")
        if self.device not in DEVICES:
            raise UsageError(f"unknown device '{self.device}'; choose one of {', '.join(DEVICES)}")
        if self.resolved_epochs < 1:
            raise UsageError(f"{name['epochs']} must be at least 1")
        if self.batch_size < 1:
            raise UsageError(f"{name['batch_size']} must be at least 1")
        if not 0.0 < self.val_split < 1.0:  # also refuses NaN
            raise UsageError(f"{name['val_split']} must be between 0 and 1, e.g. 0.2")
        if self.input_size is not None and not MIN_INPUT_SIZE <= self.input_size <= MAX_INPUT_SIZE:
            raise UsageError(f"{name['input_size']} must be between {MIN_INPUT_SIZE} and {MAX_INPUT_SIZE} "
                             f"pixels, not {self.input_size}")
        if self.lr is not None and not self.lr > 0:
            raise UsageError(f"{name['lr']} must be positive")
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise UsageError(f"{name['weight_decay']} must be 0 or more")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UsageError(f"{name['label_smoothing']} must be at least 0 and below 1")
        if self.patience < 1:
            raise UsageError(f"{name['patience']} must be at least 1")
        if self.num_workers < 0:
            raise UsageError(f"{name['num_workers']} must be 0 or more")
        check_output_dir(self.output_dir, self.data_dir)


def check_output_dir(output_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None) -> None:
    """Refuse an output that would destroy something other than an earlier model.

    The output may be absent, an empty folder, or a folder holding only what SqueezeLens writes
    (:func:`..saved_model.check_replaceable`); its parent must exist or be creatable. It may not lie
    inside the dataset, nor hold it.

    Raises:
        OutputError: (``path`` is the output folder) it is a file, a folder holding other things,
            inside ``data_dir`` or holding it, or nothing can be written where it would go.
    """
    from ..saved_model import check_replaceable

    out = Path(output_dir)
    check_replaceable(out, data_dir)  # a file, files SqueezeLens did not write, or the dataset inside
    if data_dir is not None:
        d, o = Path(data_dir).resolve(), out.resolve()
        if o == d or d in o.parents:
            raise OutputError(f"is inside the dataset folder {data_dir}; save the model elsewhere", str(out))
    parent = out.resolve().parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        raise OutputError(f"cannot write in {existing or parent}", str(out))
