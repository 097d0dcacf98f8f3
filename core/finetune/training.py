"""What quick and deep mode share: one optimiser and learning-rate schedule, the class weights of
the loss, the rule that picks the best epoch, and the outcome a mode hands back to the run.

The optimiser and schedule are timm's (``create_optimizer_v2`` and ``CosineLRScheduler`` stepped
per update with a linear warm-up, as timm's ``train.py`` sets them up), so both modes train alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .events import EpochStats

if TYPE_CHECKING:
    import torch
    from timm.scheduler import CosineLRScheduler

#: timm optimiser name (``create_optimizer_v2(opt=...)``): AdamW, decoupled weight decay.
OPTIMIZER = "adamw"
#: The cosine schedule ends at this fraction of the peak learning rate, and warm-up starts there.
LR_MIN_FACTOR = 0.01
#: Warm-up lasts a tenth of all updates, but at most this many.
WARMUP_MAX_UPDATES = 200


@dataclass
class TrainOutcome:
    """What a mode's training hands back for evaluation and saving.

    Attributes:
        history: one entry per finished epoch (resumed ones included).
        best_epoch: the epoch whose weights the model now holds (1-based; 0 if none finished).
        stopped_early: quick mode stopped on its patience before the last epoch.
        val_ok: indices into ``scan.val`` of the images that could be used.
        val_pred: predicted class per usable validation image, in ``val_ok`` order.
        val_conf: softmax probability (0..1) of that prediction.
        cache_hits: quick mode: feature vectors read from the cache.
        cache_misses: quick mode: feature vectors extracted.
        checkpoint: deep mode: the checkpoint file written for resuming, if any.
    """

    history: list[EpochStats]
    best_epoch: int
    stopped_early: bool
    val_ok: set[int]
    val_pred: list[int]
    val_conf: list[float]
    cache_hits: int = 0
    cache_misses: int = 0
    checkpoint: Path | None = None


def warmup_updates(total_updates: int) -> int:
    """Updates of linear warm-up: a tenth of ``total_updates``, at most :data:`WARMUP_MAX_UPDATES`."""
    return min(total_updates // 10, WARMUP_MAX_UPDATES)


def create_optimizer_and_scheduler(
    model_or_params: torch.nn.Module | Iterable[torch.Tensor],
    *,
    lr: float,
    weight_decay: float,
    total_updates: int,
) -> tuple[torch.optim.Optimizer, CosineLRScheduler]:
    """AdamW and a per-update cosine schedule with warm-up, as timm's ``train.py`` builds them.

    Given a module, only its parameters with ``requires_grad`` are optimised, and biases and norm
    weights get no weight decay (timm's ``filter_bias_and_bn``). The learning rate rises linearly from
    ``lr * LR_MIN_FACTOR`` over :func:`warmup_updates` updates, then follows a cosine down to
    ``lr * LR_MIN_FACTOR`` at ``total_updates``. Call ``scheduler.step_update(n)`` after the n-th
    optimiser step (n from 1).

    Args:
        model_or_params: the module to train (or its parameters).
        lr: peak learning rate.
        weight_decay: AdamW's decoupled weight decay.
        total_updates: optimiser steps in the whole run (epochs x batches per epoch).

    Returns:
        ``(optimizer, scheduler)``.
    """
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    optimizer = create_optimizer_v2(model_or_params, opt=OPTIMIZER, lr=lr, weight_decay=weight_decay)
    scheduler = CosineLRScheduler(
        optimizer, t_initial=max(1, total_updates), lr_min=lr * LR_MIN_FACTOR,
        warmup_t=warmup_updates(total_updates), warmup_lr_init=lr * LR_MIN_FACTOR, t_in_epochs=False,
    )
    return optimizer, scheduler


def class_weights(labels: Sequence[int], num_classes: int, balanced: bool) -> torch.Tensor | None:
    """Cross-entropy class weights ``n / (num_classes * count_c)``, shape ``(num_classes,)``.

    The "balanced" weighting of scikit-learn's ``compute_class_weight`` (a class with no images
    counts as one). None when ``balanced`` is False (every class weighs 1).
    """
    if not balanced:
        return None
    import torch

    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes).float()
    return counts.sum() / (num_classes * counts.clamp_min(1))


def is_better(acc: float, loss: float, best: tuple[float, float] | None) -> bool:
    """Does an epoch with validation ``acc`` and ``loss`` beat ``best`` = ``(acc, loss)``?

    Higher accuracy wins; equal accuracy (within 1e-9) goes to the lower loss.
    """
    return best is None or acc > best[0] + 1e-9 or (abs(acc - best[0]) <= 1e-9 and loss < best[1])


def clone_state(module: Any) -> dict[str, Any]:
    """A deep copy of ``module.state_dict()`` (tensors cloned, so later training does not change it)."""
    import copy

    return copy.deepcopy(module.state_dict())
