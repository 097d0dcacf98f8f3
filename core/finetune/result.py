"""What a finished finetune run reports: :class:`FinetuneResult` and its :class:`ValPrediction` rows.

Plain data (no torch), so a result crosses threads and goes to JSON (:meth:`FinetuneResult.to_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..dataset_scan import DatasetScan, SkippedFile
from .config import Mode
from .events import EpochStats
from .metrics import ClassMetrics


@dataclass(frozen=True)
class ValPrediction:
    """The saved model's answer for one validation image.

    ``confidence`` is the softmax probability (0..1) of the predicted class.
    """

    path: Path
    true_index: int
    pred_index: int
    confidence: float

    @property
    def correct(self) -> bool:
        return self.true_index == self.pred_index


@dataclass
class FinetuneResult:
    """Everything a report needs: curves, metrics, mistakes, what was skipped, where it was saved.

    Attributes:
        confusion: ``confusion[true][predicted]`` image counts on the validation set.
        skipped: the scan's skipped files plus files that failed to decode during training.
        input_size: ``(channels, height, width)`` the model was trained at (and saved with).
        timings: seconds per stage (``scan``, ``load``, ``features``, ``train``, ``save``) and ``total``.
    """

    output_dir: Path
    mode: Mode
    base_model: str
    architecture: str
    class_names: list[str]
    scan: DatasetScan
    history: list[EpochStats]
    best_epoch: int
    stopped_early: bool
    val_accuracy: float
    confusion: list[list[int]]
    per_class: list[ClassMetrics]
    val_predictions: list[ValPrediction]
    skipped: list[SkippedFile]
    warnings: list[str]
    untrained_base: bool
    input_size: tuple[int, int, int]
    device: str
    cache_hits: int = 0
    cache_misses: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    #: The model folder's version this run saved (core/model_versions.py), and the one it replaced
    #: (None: the folder held no model) with that one's validation accuracy (None: not recorded).
    version: int | None = None
    previous_version: int | None = None
    previous_val_accuracy: float | None = None
    #: True: ``version`` waits in ``versions/`` and ``previous_version`` is still current (``stage_only``).
    staged: bool = False

    @property
    def misclassified(self) -> list[ValPrediction]:
        """Wrong validation predictions, most confident first."""
        return sorted((p for p in self.val_predictions if not p.correct), key=lambda p: -p.confidence)

    def images_in_cell(self, true_index: int, pred_index: int) -> list[Path]:
        """Validation images of one confusion-matrix cell (the GUI shows them on click)."""
        return [p.path for p in self.val_predictions if p.true_index == true_index and p.pred_index == pred_index]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``--json`` report)."""
        names = self.class_names
        return {
            "output_dir": str(self.output_dir), "mode": self.mode, "base_model": self.base_model,
            "architecture": self.architecture, "class_names": names, "untrained_base": self.untrained_base,
            "input_size": list(self.input_size), "device": self.device,
            "train_images": len(self.scan.train), "val_images": len(self.scan.val),
            "best_epoch": self.best_epoch, "stopped_early": self.stopped_early,
            "val_accuracy": self.val_accuracy, "confusion": self.confusion,
            "per_class": [m.to_dict() for m in self.per_class],
            "history": [asdict(h) for h in self.history],
            "misclassified": [
                {"path": str(p.path), "true": names[p.true_index], "predicted": names[p.pred_index],
                 "confidence": p.confidence}
                for p in self.misclassified
            ],
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "warnings": self.warnings, "cache_hits": self.cache_hits, "cache_misses": self.cache_misses,
            "timings": self.timings, "version": self.version, "previous_version": self.previous_version,
            "previous_val_accuracy": self.previous_val_accuracy, "staged": self.staged,
        }
