"""How far a finetune run is, as one fraction of the whole run, and the "loss stays at chance" hint.

The progress bar tracks the run, not a phase: a deep run is ``epochs`` equal slices, each its training
batches then its validation batches (validation batches estimated from the scan until they are seen);
a quick run spends :data:`QUICK_FEATURES_SHARE` of the bar on feature extraction (the slow part: one
forward pass per image) and the rest on the head's epochs (a few milliseconds each).
"""

from __future__ import annotations

import math

from squeezelens.core.finetune import BatchEvent

#: Share of a quick run's bar for feature extraction (the head's epochs take the rest).
QUICK_FEATURES_SHARE = 0.8
#: The hint comes after this many epochs (the first ones may sit near chance while the head settles).
CHANCE_AFTER_EPOCHS = 3
#: "At chance": the training loss within this fraction of ln(num_classes).
CHANCE_TOLERANCE = 0.05


class RunProgress:
    """The run's progress in [0, 1] from its batch events; ``mode`` is ``quick`` or ``deep``."""

    def __init__(self, mode: str, epochs: int, batch_size: int) -> None:
        self.mode = mode
        self.epochs = max(1, epochs)
        self.batch_size = max(1, batch_size)
        self.train_batches = 0  # deep: per epoch, from the training events
        self.val_batches = 0  # deep: per epoch, from the scan until validation is seen
        self.fraction = 0.0

    def set_val_images(self, n: int) -> None:
        """The scan found ``n`` validation images: the estimate of validation batches per epoch."""
        if not self.val_batches:
            self.val_batches = math.ceil(n / self.batch_size)

    def update(self, e: BatchEvent) -> float:
        """The fraction of the whole run done after ``e`` (it never goes back)."""
        if e.stage == "features":
            f = QUICK_FEATURES_SHARE * e.batch / max(1, e.batches)
        elif self.mode == "quick":  # the head's epochs, after the features
            part = e.batch / max(1, e.batches)
            f = QUICK_FEATURES_SHARE + (1 - QUICK_FEATURES_SHARE) * _within(e.epoch, e.epochs, part)
        else:  # an epoch: its training batches, then its validation batches
            if e.stage == "validate":
                self.val_batches = e.batches
                done = self.train_batches + e.batch
            else:
                self.train_batches = e.batches
                done = e.batch
            f = _within(e.epoch, e.epochs, done / max(1, self.train_batches + self.val_batches))
        self.fraction = max(self.fraction, min(1.0, f))
        return self.fraction


def _within(epoch: int, epochs: int, part: float) -> float:
    """Epoch ``epoch`` of ``epochs`` (1-based), ``part`` of it done: the fraction of all epochs."""
    return ((epoch - 1) + min(1.0, part)) / max(1, epochs)


def chance_loss(num_classes: int) -> float:
    """Cross-entropy of a uniform guess over ``num_classes`` classes: ln(num_classes) (ln 3 = 1.0986)."""
    return math.log(max(2, num_classes))


def at_chance(train_loss: float, num_classes: int, tolerance: float = CHANCE_TOLERANCE) -> bool:
    """Whether ``train_loss`` (mean cross-entropy per image) is within ``tolerance`` of chance or above it."""
    return train_loss >= chance_loss(num_classes) * (1 - tolerance)


def chance_hint(epochs_done: int, num_classes: int, untrained_base: bool) -> str:
    """The hint shown when a deep run's training loss has stayed at chance for ``epochs_done`` epochs."""
    base = (" The base model has no pretrained weights, so it starts from random features: expect this "
            "until its weights can be downloaded.") if untrained_base else ""
    return (f"The training loss is still at chance level (ln {num_classes} = {chance_loss(num_classes):.4f} "
            f"for {num_classes} classes) after {epochs_done} epochs: the model is not learning yet. Try a "
            f"lower learning rate or quick mode, or check that each class folder holds its own kind of "
            f"image.{base}")
