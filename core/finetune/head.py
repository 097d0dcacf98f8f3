"""Quick mode: a new linear head trained on frozen, cached backbone features.

1. The pooled pre-logits features (``forward_head(pre_logits=True)``: an ``(N, D)`` float32 array,
   ``D`` = ``model.num_features``) of every training and validation image, read from the on-disk
   feature cache where present, extracted otherwise (:mod:`squeezelens.core.feature_cache`).
2. Standardised with the training rows' per-dimension mean and standard deviation.
3. A zero-initialised linear head ``D -> C`` trained on them: class-balanced cross-entropy with
   label smoothing, the optimiser and schedule both modes share
   (:func:`.training.create_optimizer_and_scheduler`), early stopping on validation accuracy
   (ties: the lower validation loss).
4. The standardisation folded into the model's own classifier (:func:`fold_standardisation`), so
   the saved model is a plain timm model that takes raw features.

This module imports torch: :func:`~.run.finetune` imports it when a quick run starts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..dataset_scan import DatasetScan, SkippedFile
from ..errors import Cancelled, DatasetError
from ..feature_cache import FeatureCache, Features, extract_features, model_key
from ..feature_graph import LazyFeatureRunner
from ..preprocess import eval_transform
from ..progress_text import eta_seconds
from .events import BatchEvent, EpochEvent, EpochStats, StageEvent
from .training import TrainOutcome, class_weights, clone_state, create_optimizer_and_scheduler, is_better

if TYPE_CHECKING:
    from .run import RunState


@dataclass
class FeatureSplit:
    """Feature rows split into training and validation.

    Attributes:
        x_train: ``(n_train, D)`` float32 features; ``y_train``: ``(n_train,)`` int64 labels.
        x_val: ``(n_val, D)`` float32 features; ``y_val``: ``(n_val,)`` int64 labels.
        val_ok: indices into ``scan.val`` of the validation rows, in row order.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    val_ok: list[int]


@dataclass
class HeadFit:
    """A trained head's curves: one :class:`EpochStats` per epoch, the best epoch, early stop."""

    history: list[EpochStats]
    best_epoch: int
    stopped_early: bool


def train_head(run: RunState, model: Any, scan: DatasetScan, dcfg: dict[str, Any], decode_side: int,
               device: str) -> TrainOutcome:
    """Quick mode from features to a model whose classifier predicts ``scan``'s classes.

    On return ``model`` is on the CPU with a new ``num_classes``-way classifier (the best epoch's
    head with the standardisation folded in).

    Raises:
        FinetuneCancelled: the run's cancel event was set.
        DatasetError: fewer than 2 classes, or no validation images, are left readable.
    """
    feats = extract_dataset_features(run, model, scan, dcfg, decode_side, device)
    data = split_features(run, scan, feats)
    run.emit(StageEvent("train", f"training a {scan.num_classes}-class head on {len(data.y_train)} feature "
                                 f"vectors ({feats.hits} from the cache, {feats.misses} extracted)"))
    t0 = time.perf_counter()
    mean, std = standardisation(data.x_train)
    head = torch.nn.Linear(data.x_train.shape[1], scan.num_classes)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    fit = fit_head(run, head, (data.x_train - mean) / std, data.y_train, (data.x_val - mean) / std, data.y_val,
                   t0)
    run.timings["train"] = time.perf_counter() - t0

    fc = fold_standardisation(model, head, mean, std)
    with torch.no_grad():
        conf, pred = fc.cpu()(data.x_val).softmax(1).max(1)
    model.to("cpu")
    return TrainOutcome(fit.history, fit.best_epoch, fit.stopped_early, set(data.val_ok), pred.tolist(),
                        conf.tolist(), feats.hits, feats.misses)


def extract_dataset_features(run: RunState, model: Any, scan: DatasetScan, dcfg: dict[str, Any],
                             decode_side: int, device: str) -> Features:
    """Features of ``scan.train + scan.val`` (rows in that order, unreadable files left out).

    Emits the ``features`` stage and a :class:`BatchEvent` per extracted batch; files that fail to
    decode go to ``run.skipped`` with a warning.

    Raises:
        FinetuneCancelled: the run's cancel event was set (rows already extracted stay cached).
    """
    cfg = run.cfg
    model.eval().to(device)
    paths = [s.path for s in scan.train + scan.val]
    run.emit(StageEvent("features", f"features of {len(paths)} images"))
    t0 = time.perf_counter()
    # ONNX Runtime's features graph on the CPU, opened (exported the first time) at the first cache miss
    runner = LazyFeatureRunner(model, dcfg, device, on_warning=run.warn)
    folder = Path(cfg.feature_cache_dir) if cfg.feature_cache_dir is not None else None
    key = model_key(model, dcfg, decode_side, runner.identity)
    cache = FeatureCache.open_or_none(key, folder, run.warn) if cfg.use_cache else None

    def on_batch(done: int, todo: int, elapsed: float) -> None:
        run.emit(BatchEvent("features", 0, cfg.resolved_epochs, math.ceil(done / cfg.batch_size),
                            math.ceil(todo / cfg.batch_size), None, elapsed, eta_seconds(elapsed, done, todo)))

    try:
        feats = extract_features(model, paths, eval_transform(dcfg), cache, device=device,
                                 batch_size=cfg.batch_size, decode_min_side=decode_side, on_batch=on_batch,
                                 cancel=run.cancel, runner=runner)
    except Cancelled:
        run.check_cancel()
        raise
    finally:
        if cache is not None:
            cache.close()
    run.timings["features"] = time.perf_counter() - t0
    if runner.open_seconds:
        run.timings["features_graph"] = runner.open_seconds
    for i, why in sorted(feats.failed.items()):
        run.skipped.append(SkippedFile(paths[i], why))
    if feats.failed:
        run.warn(f"{len(feats.failed)} image(s) could not be decoded and were skipped")
    return feats


def split_features(run: RunState, scan: DatasetScan, feats: Features) -> FeatureSplit:
    """The rows of ``feats`` as training and validation tensors with their labels.

    Raises:
        DatasetError: fewer than 2 classes have readable training images, or no validation image
            is readable.
    """
    samples = scan.train + scan.val
    n_train = len(scan.train)
    row = {i: r for r, i in enumerate(feats.ok)}
    tr_idx = [i for i in range(n_train) if i in row]
    va_idx = [i for i in range(n_train, len(samples)) if i in row]
    require_trainable(run, scan, [samples[i].label for i in tr_idx], [samples[i].label for i in va_idx])
    x = torch.from_numpy(feats.vectors)
    return FeatureSplit(
        x[[row[i] for i in tr_idx]], torch.tensor([samples[i].label for i in tr_idx]),
        x[[row[i] for i in va_idx]], torch.tensor([samples[i].label for i in va_idx]),
        [i - n_train for i in va_idx],
    )


def require_trainable(run: RunState, scan: DatasetScan, train_labels: Sequence[int],
                      val_labels: Sequence[int]) -> None:
    """Refuse a run with nothing to learn from; warn about classes left without training images.

    Raises:
        DatasetError: fewer than 2 classes among ``train_labels``, or ``val_labels`` empty.
    """
    present = set(train_labels)
    if len(present) < 2:
        raise DatasetError("fewer than 2 classes have readable training images; nothing to learn")
    if not val_labels:
        raise DatasetError("no readable validation images; add images or fix the unreadable ones")
    lost = [scan.class_names[c] for c in range(scan.num_classes) if c not in present]
    if lost:
        run.warn(f"no readable training images left for: {', '.join(lost)}")


def standardisation(x_train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension ``(mean, std)`` of ``x_train`` ``(n, D)``, each of shape ``(D,)``.

    The std is the population one, floored at 1% of its mean (plus 1e-8) so a near-constant
    dimension is not blown up.
    """
    mean = x_train.mean(0)
    std = x_train.std(0, unbiased=False)
    return mean, std.clamp_min(float(std.mean()) * 1e-2 + 1e-8)


def fit_head(run: RunState, head: torch.nn.Linear, x_train: torch.Tensor, y_train: torch.Tensor,
             x_val: torch.Tensor, y_val: torch.Tensor, t0: float) -> HeadFit:
    """Train ``head`` on standardised features; on return it holds the best epoch's weights.

    Args:
        head: the new ``D -> C`` linear layer (on the CPU).
        x_train: ``(n_train, D)`` standardised features; ``y_train``: ``(n_train,)`` labels.
        x_val: ``(n_val, D)`` standardised features; ``y_val``: ``(n_val,)`` labels.
        t0: ``time.perf_counter()`` when training began (for elapsed times and ETAs).

    Raises:
        FinetuneCancelled: the run's cancel event was set (checked before every batch).
    """
    cfg = run.cfg
    epochs, batch_size, n = cfg.resolved_epochs, cfg.batch_size, len(y_train)
    gen = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    optimizer, scheduler = create_optimizer_and_scheduler(
        head, lr=cfg.resolved_lr, weight_decay=cfg.resolved_weight_decay, total_updates=epochs * steps_per_epoch,
    )
    weight = class_weights(y_train.tolist(), head.out_features, cfg.class_balanced)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    val_loss_fn = torch.nn.CrossEntropyLoss()

    history: list[EpochStats] = []
    best: tuple[float, float] | None = None
    best_state = clone_state(head)
    best_epoch, since_best, stopped_early = 0, 0, False
    for epoch in range(1, epochs + 1):
        te = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        tot_loss, correct = 0.0, 0
        for b in range(steps_per_epoch):
            run.check_cancel()
            idx = order[b * batch_size:(b + 1) * batch_size]
            logits = head(x_train[idx])
            loss = loss_fn(logits, y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            num_updates = (epoch - 1) * steps_per_epoch + b + 1
            scheduler.step_update(num_updates)
            tot_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y_train[idx]).sum())
            elapsed = time.perf_counter() - t0
            run.emit(BatchEvent("train", epoch, epochs, b + 1, steps_per_epoch, loss.item(), elapsed,
                                eta_seconds(elapsed, num_updates, epochs * steps_per_epoch)))
        with torch.no_grad():
            val_logits = head(x_val)
            val_loss = float(val_loss_fn(val_logits, y_val))
            val_acc = float((val_logits.argmax(1) == y_val).float().mean())
        stats = EpochStats(epoch, tot_loss / n, correct / n, val_loss, val_acc,
                           float(optimizer.param_groups[0]["lr"]), time.perf_counter() - te)
        history.append(stats)
        if is_better(val_acc, val_loss, best):
            best, best_epoch, since_best = (val_acc, val_loss), epoch, 0
            best_state = clone_state(head)
        else:
            since_best += 1
        elapsed = time.perf_counter() - t0
        run.emit(EpochEvent(stats, epochs, best_epoch, eta_seconds(elapsed, epoch, epochs)))
        if since_best >= cfg.patience and epoch < epochs:
            stopped_early = True
            break
    head.load_state_dict(best_state)
    return HeadFit(history, best_epoch, stopped_early)


def fold_standardisation(model: Any, head: torch.nn.Linear, mean: torch.Tensor, std: torch.Tensor) -> Any:
    """Give ``model`` a new classifier equal to ``head`` applied to standardised features.

    ``head((x - mean) / std) = W' x + b'`` with ``W' = W / std`` (per input column) and
    ``b' = b - W' @ mean``, so the saved classifier takes the raw features.

    Args:
        head: ``D -> C`` linear layer trained on standardised features.
        mean: ``(D,)`` training-feature mean; ``std``: ``(D,)`` its standard deviation.

    Returns:
        The model's new classifier (``model.get_classifier()``).
    """
    model.reset_classifier(head.out_features)
    fc = model.get_classifier()
    with torch.no_grad():
        w = head.weight / std
        fc.weight.copy_(w.to(fc.weight))
        fc.bias.copy_((head.bias - w @ mean).to(fc.bias))
    return fc
