"""Progress of a finetune run as events: frozen dataclasses of plain data, and their one-line texts.

:func:`~.run.finetune` calls ``on_event`` in the thread that runs it; the events hold no torch
objects, so a GUI can hand them to its own thread as they are. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..dataset_scan import DatasetScan
from ..progress_text import format_bytes, format_seconds


@dataclass(frozen=True)
class StageEvent:
    """A new stage begins: ``scan``, ``load``, ``features``, ``train``, ``evaluate``, ``save``."""

    stage: str
    message: str


@dataclass(frozen=True)
class ScanEvent:
    """The dataset was scanned (classes, counts, skipped files, warnings)."""

    scan: DatasetScan


@dataclass(frozen=True)
class DownloadEvent:
    """Base-weights download progress in bytes (``total`` None when unknown)."""

    done: int
    total: int | None


@dataclass(frozen=True)
class BatchEvent:
    """One batch finished.

    ``stage`` is ``features`` (quick: extracting uncached features; ``epoch`` 0), ``train`` or
    ``validate``. ``elapsed_s`` counts seconds since the stage began; ``eta_s`` estimates the seconds
    left in the stage (for ``train``: of all remaining epochs), None when unknown.
    """

    stage: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float | None
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class EpochStats:
    """One epoch's numbers (a point on the loss and accuracy curves).

    Losses are mean cross-entropy per image (training: with the run's label smoothing and class
    weights; validation: plain), accuracies fractions in [0, 1], ``lr`` the learning rate after
    the epoch's last update, ``seconds`` the epoch's wall time.
    """

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class EpochEvent:
    """An epoch finished; ``best_epoch`` is the epoch kept so far, ``eta_s`` seconds for the rest."""

    stats: EpochStats
    epochs: int
    best_epoch: int
    eta_s: float | None


@dataclass(frozen=True)
class WarningEvent:
    """Something the user should know (small classes, untrained base, skipped files...).

    ``kind`` names the warnings a GUI treats specially (:data:`UNTRAINED_BASE`: the base model has no
    pretrained weights, emitted right after loading, before any training); ``""`` for the others.
    """

    message: str
    kind: str = ""


#: :attr:`WarningEvent.kind` of "the base model has no pretrained weights" (sent before training starts).
UNTRAINED_BASE = "untrained_base"


FinetuneEvent = StageEvent | ScanEvent | DownloadEvent | BatchEvent | EpochEvent | WarningEvent
EventFn = Callable[[FinetuneEvent], None]


def describe_event(event: FinetuneEvent) -> str:
    """A one-line text for an event (the CLI prints these; a GUI may show them in a status bar).

    Example:
        ``epoch 3/50  train loss 0.4123 acc 91.0%  val loss 0.3810 acc 93.8% *  (1.2 s)  ETA 0:56``
        (``*``: the best epoch so far).
    """
    if isinstance(event, StageEvent):
        return event.message
    if isinstance(event, WarningEvent):
        return f"warning: {event.message}"
    if isinstance(event, ScanEvent):
        return event.scan.summary()
    if isinstance(event, DownloadEvent):
        return f"downloading weights: {format_bytes(event.done, event.total)}"
    if isinstance(event, BatchEvent):
        eta = f"  ETA {format_seconds(event.eta_s)}" if event.eta_s is not None else ""
        loss = f"  loss {event.loss:.4f}" if event.loss is not None else ""
        where = "features" if event.stage == "features" else f"epoch {event.epoch}/{event.epochs} {event.stage}"
        return f"{where}  batch {event.batch}/{event.batches}{loss}{eta}"
    if isinstance(event, EpochEvent):
        s = event.stats
        eta = f"  ETA {format_seconds(event.eta_s)}" if event.eta_s is not None else ""
        star = " *" if event.best_epoch == s.epoch else ""
        return (f"epoch {s.epoch}/{event.epochs}  train loss {s.train_loss:.4f} acc {s.train_acc:.1%}  "
                f"val loss {s.val_loss:.4f} acc {s.val_acc:.1%}{star}  ({s.seconds:.1f} s){eta}")
    return str(event)
