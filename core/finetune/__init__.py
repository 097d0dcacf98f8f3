"""Teaching a model your own classes from a folder: quick (frozen backbone) and deep (last stage) modes.

:func:`finetune` scans the folder, loads the base model, trains, evaluates on the validation
images and saves a plain timm model folder; it runs in the caller's thread, reports progress as
events and stops at the next batch when its cancel event is set.

- **quick** (default, :mod:`.head`): pooled backbone features are extracted once per file and cached
  on disk, then a new linear head is trained on them; the feature standardisation is folded into
  the saved head.
- **deep** (:mod:`.last_stage`): the last stage and a new head are trained on images through timm's
  training transform, AMP on CUDA, a checkpoint after every epoch (resume with ``resume=True``).

Both use the same optimiser and schedule (:mod:`.training`: timm's AdamW and per-update cosine with
warm-up). The settings and their one check are in :mod:`.config`, the events in :mod:`.events`, the
result in :mod:`.result`, the validation metrics in :mod:`.metrics`. Importing this package does not
import torch (the GUI imports it in its own thread); torch is loaded when a run starts.
"""

from __future__ import annotations

from ..errors import FinetuneCancelled
from ..progress_text import format_seconds
from .config import (
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_WEIGHT_DECAY,
    MODES,
    FinetuneConfig,
    Mode,
    check_output_dir,
)
from .events import (
    UNTRAINED_BASE,
    BatchEvent,
    DownloadEvent,
    EpochEvent,
    EpochStats,
    EventFn,
    FinetuneEvent,
    ScanEvent,
    StageEvent,
    WarningEvent,
    describe_event,
)
from .metrics import ClassMetrics
from .result import FinetuneResult, ValPrediction
from .run import finetune

__all__ = [
    "DEFAULT_EPOCHS", "DEFAULT_LR", "DEFAULT_WEIGHT_DECAY", "MODES", "UNTRAINED_BASE",
    "BatchEvent", "ClassMetrics", "DownloadEvent", "EpochEvent", "EpochStats", "EventFn", "FinetuneCancelled",
    "FinetuneConfig", "FinetuneEvent", "FinetuneResult", "Mode", "ScanEvent", "StageEvent", "ValPrediction",
    "WarningEvent", "check_output_dir", "describe_event", "finetune", "format_seconds",
]
