"""Teaching a model your own classes from a folder: quick (frozen backbone) and deep (last stage) modes.

:func:`finetune` runs in the caller's thread from start to end: scan the folder, load the base model,
train, evaluate on the validation images, save. Progress goes to ``on_event`` (called in that same
thread, with frozen dataclasses of plain data, safe to hand to another thread) and a
``threading.Event`` cancels between batches. Nothing is written to the output folder until the very
end, and then atomically (temp folder + rename), so a cancelled or failed run leaves an earlier model
there as it was.

- **quick** (default): pooled backbone features are extracted once per file and cached on disk
  (:mod:`.feature_cache`), then a new linear head is trained on them: class-balanced cross-entropy
  with label smoothing, AdamW with a cosine schedule, early stopping on validation accuracy (ties:
  lower validation loss). Features are standardised for training and the standardisation is folded
  into the saved head, so the saved model is a plain timm model.
- **deep**: the last stage and a new head are trained on images through timm's training transform
  (random resized crop, flip, colour jitter), AdamW (timm.optim) with a per-step cosine schedule
  (timm.scheduler), AMP on CUDA, a checkpoint after every epoch (resume with ``resume=True``); the
  best validation epoch is kept.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .dataset_scan import (
    DEFAULT_SEED,
    DEFAULT_VAL_SPLIT,
    DatasetScan,
    Sample,
    ScanCancelled,
    SkippedFile,
    scan_dataset,
)
from .errors import DownloadCancelled, FinetuneCancelled, SqueezeLensError
from .model_loader import is_saved_model_dir
from .paths import cache_dir
from .train_metrics import ClassMetrics, accuracy, class_metrics, confusion_matrix

Mode = Literal["quick", "deep"]
MODES = ("quick", "deep")
DEFAULT_EPOCHS = {"quick": 50, "deep": 5}
DEFAULT_LR = {"quick": 1e-3, "deep": 1e-3}
DEFAULT_WEIGHT_DECAY = {"quick": 1e-4, "deep": 0.05}
CHECKPOINT_FORMAT = 1


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
        val_split: validation fraction when there is no val/ folder.
        batch_size: images (quick: feature vectors too) per step.
        lr: peak learning rate (default 1e-3).
        weight_decay: AdamW weight decay (default 1e-4 quick, 0.05 deep).
        label_smoothing: cross-entropy label smoothing.
        class_balanced: weight the loss by inverse class frequency.
        patience: quick mode stops after this many epochs without a better validation score.
        input_size: square input side instead of the model's own (recorded in the saved config).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        seed: seeds the split, shuffling, head init and augmentation.
        num_workers: DataLoader worker processes in deep mode (0 = decode in this thread).
        resume: deep mode continues from the checkpoint of an earlier cancelled/failed run.
        allow_download: may the base weights be downloaded when not cached.
        use_cache: quick mode reads and writes the on-disk feature cache.
        feature_cache_dir: where that cache lives (default: ``cache_dir("features")``).
    """

    data_dir: str | os.PathLike
    output_dir: str | os.PathLike
    model: str | None = None
    weights: str | os.PathLike | None = None
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
    feature_cache_dir: str | os.PathLike | None = None

    @property
    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.mode]


# -- progress events (plain data; called in the thread that runs finetune) -------------------------


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
    ``validate``. ``eta_s`` estimates the rest of the stage (for ``train``: of all remaining epochs).
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
    """One epoch's numbers (a point on the loss and accuracy curves)."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class EpochEvent:
    """An epoch finished; ``best_epoch`` is the epoch kept so far."""

    stats: EpochStats
    epochs: int
    best_epoch: int
    eta_s: float | None


@dataclass(frozen=True)
class WarningEvent:
    """Something the user should know (small classes, untrained base, skipped files...)."""

    message: str


FinetuneEvent = StageEvent | ScanEvent | DownloadEvent | BatchEvent | EpochEvent | WarningEvent
EventFn = Callable[[FinetuneEvent], None]


# -- result --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValPrediction:
    """The saved model's answer for one validation image."""

    path: Path
    true_index: int
    pred_index: int
    confidence: float  # probability of the predicted class

    @property
    def correct(self) -> bool:
        return self.true_index == self.pred_index


@dataclass
class FinetuneResult:
    """Everything a report needs: curves, metrics, mistakes, what was skipped, where it was saved."""

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
    confusion: list[list[int]]  # [true][predicted]
    per_class: list[ClassMetrics]
    val_predictions: list[ValPrediction]
    skipped: list[SkippedFile]  # the scan's plus files that failed to decode during training
    warnings: list[str]
    untrained_base: bool
    input_size: tuple[int, int, int]
    device: str
    cache_hits: int = 0
    cache_misses: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, and "total"

    @property
    def misclassified(self) -> list[ValPrediction]:
        """Wrong validation predictions, most confident first."""
        return sorted((p for p in self.val_predictions if not p.correct), key=lambda p: -p.confidence)

    def images_in_cell(self, true_index: int, pred_index: int) -> list[Path]:
        """Validation images of one confusion-matrix cell (the GUI shows them on click)."""
        return [p.path for p in self.val_predictions if p.true_index == true_index and p.pred_index == pred_index]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
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
            "timings": self.timings,
        }


# -- the run -------------------------------------------------------------------------------------


class _Run:
    """State shared by the stages of one :func:`finetune` call."""

    def __init__(self, cfg: FinetuneConfig, on_event: EventFn | None, cancel: threading.Event | None) -> None:
        self.cfg = cfg
        self.emit: EventFn = on_event or (lambda e: None)
        self.cancel = cancel or threading.Event()
        self.warnings: list[str] = []
        self.skipped: list[SkippedFile] = []
        self.timings: dict[str, float] = {}

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.emit(WarningEvent(message))

    def check_cancel(self, checkpoint: Path | None = None, epochs_done: int = 0) -> None:
        if self.cancel.is_set():
            raise FinetuneCancelled(
                "finetuning cancelled; the output folder was not changed", checkpoint, epochs_done
            )


def finetune(
    config: FinetuneConfig,
    on_event: EventFn | None = None,
    cancel: threading.Event | None = None,
) -> FinetuneResult:
    """Train a classifier for the classes in ``config.data_dir`` and save it to ``config.output_dir``.

    Runs in the calling thread (a GUI runs it in a worker thread); ``on_event`` is called in that
    thread. Setting ``cancel`` stops the run at the next batch with :class:`FinetuneCancelled`.

    Raises:
        FinetuneCancelled: ``cancel`` was set; nothing was written to the output folder.
        SqueezeLensError: bad dataset (``DatasetError``), model, weights or output folder.
    """
    from .engine import pick_device
    from .model_loader import load_model
    from .preprocess import data_config, fast_decode_min_side

    t_start = time.perf_counter()
    cfg = config
    _validate(cfg)
    run = _Run(cfg, on_event, cancel)

    run.emit(StageEvent("scan", f"scanning {cfg.data_dir}"))
    t0 = time.perf_counter()
    try:
        scan = scan_dataset(cfg.data_dir, cfg.val_split, cfg.seed, cancel=run.cancel)
    except ScanCancelled:
        run.check_cancel()
        raise
    run.timings["scan"] = time.perf_counter() - t0
    run.skipped.extend(scan.skipped)
    run.emit(ScanEvent(scan))
    for w in scan.warnings:
        run.warn(w)
    if scan.skipped:
        run.warn(f"{len(scan.skipped)} file(s) skipped (unreadable or not images)")
    run.check_cancel()

    run.emit(StageEvent("load", f"loading {cfg.model or 'the default model'}"))
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    try:
        loaded = load_model(
            cfg.model, cfg.weights, allow_download=cfg.allow_download,
            progress=lambda d, t: run.emit(DownloadEvent(d, t)), cancel=run.cancel,
        )
    except DownloadCancelled as e:
        raise FinetuneCancelled("finetuning cancelled during the weights download; the output folder "
                                "was not changed") from e
    if loaded.untrained:
        why = f" ({loaded.untrained_reason})" if loaded.untrained_reason else ""
        run.warn(f"{loaded.name} has no pretrained weights{why}: training on random features")
    model = loaded.model
    model.pretrained_cfg = _pretrained_cfg(model, cfg.input_size)
    dcfg = data_config(model)
    decode_side = fast_decode_min_side(dcfg)
    run.timings["load"] = time.perf_counter() - t0
    run.check_cancel()

    num_classes = scan.num_classes
    if cfg.mode == "quick":
        outcome = _train_quick(run, model, scan, dcfg, decode_side, device)
    else:
        outcome = _train_deep(run, model, loaded.name, scan, dcfg, decode_side, device)

    run.emit(StageEvent("evaluate", "validation metrics"))
    val = [s for i, s in enumerate(scan.val) if i in outcome.val_ok]
    preds = [ValPrediction(s.path, s.label, int(p), float(c))
             for s, p, c in zip(val, outcome.val_pred, outcome.val_conf)]
    cm = confusion_matrix([p.true_index for p in preds], [p.pred_index for p in preds], num_classes)
    per_class = class_metrics(cm, scan.class_names)
    val_acc = accuracy(cm)
    run.check_cancel(outcome.checkpoint, len(outcome.history))

    run.emit(StageEvent("save", f"saving to {cfg.output_dir}"))
    t0 = time.perf_counter()
    from .saved_model import save_model

    model.eval().cpu()
    extra = {"squeezelens_finetune": {
        "mode": cfg.mode, "base_model": loaded.name, "base_untrained": loaded.untrained,
        "data_dir": str(Path(cfg.data_dir).resolve()), "best_epoch": outcome.best_epoch,
        "val_accuracy": val_acc, "train_images": len(scan.train), "val_images": len(scan.val),
    }}
    save_model(model, cfg.output_dir, scan.class_names, extra_config=extra)
    if outcome.checkpoint is not None:
        shutil.rmtree(outcome.checkpoint.parent, ignore_errors=True)
    run.timings["save"] = time.perf_counter() - t0
    run.timings["total"] = time.perf_counter() - t_start

    return FinetuneResult(
        output_dir=Path(cfg.output_dir), mode=cfg.mode, base_model=loaded.name,
        architecture=loaded.architecture, class_names=list(scan.class_names), scan=scan,
        history=outcome.history, best_epoch=outcome.best_epoch, stopped_early=outcome.stopped_early,
        val_accuracy=val_acc, confusion=cm, per_class=per_class, val_predictions=preds,
        skipped=run.skipped, warnings=run.warnings, untrained_base=loaded.untrained,
        input_size=tuple(dcfg["input_size"]), device=device,  # type: ignore[arg-type]
        cache_hits=outcome.cache_hits, cache_misses=outcome.cache_misses, timings=run.timings,
    )


def _validate(cfg: FinetuneConfig) -> None:
    if cfg.mode not in MODES:
        raise SqueezeLensError(f"unknown mode '{cfg.mode}'; choose quick or deep")
    if cfg.resolved_epochs < 1:
        raise SqueezeLensError("epochs must be at least 1")
    if cfg.batch_size < 1:
        raise SqueezeLensError("batch size must be at least 1")
    if cfg.input_size is not None and not 32 <= cfg.input_size <= 1024:
        raise SqueezeLensError(f"input size must be between 32 and 1024 pixels, not {cfg.input_size}")
    if cfg.lr is not None and not cfg.lr > 0:
        raise SqueezeLensError("learning rate must be positive")
    if cfg.num_workers < 0:
        raise SqueezeLensError("workers must be 0 or more")
    check_output_dir(cfg.output_dir, cfg.data_dir)


def check_output_dir(output_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> None:
    """Refuse an output that would destroy something other than an earlier model.

    The output may be absent, an empty folder, or a saved-model folder (``config.json``); its parent
    must exist or be creatable. It may not lie inside the dataset.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise SqueezeLensError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_saved_model_dir(out):
        raise SqueezeLensError(
            f"output {out} is a folder that holds something other than a saved model; "
            "give a new folder name (an earlier model folder there would be replaced)"
        )
    if data_dir is not None:
        d, o = Path(data_dir).resolve(), out.resolve()
        if o == d or d in o.parents:
            raise SqueezeLensError(f"output {out} is inside the dataset folder {data_dir}; save the model elsewhere")
    parent = out.resolve().parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        raise SqueezeLensError(f"output {out}: cannot write in {existing or parent}")


def _pretrained_cfg(model: Any, input_size: int | None) -> dict[str, Any]:
    """The model's pretrained_cfg with the training input size, so the saved model preprocesses alike."""
    cfg = dict(model.pretrained_cfg)
    if input_size is not None:
        chans = cfg.get("input_size", (3, 224, 224))[0]
        old = cfg.get("input_size", (3, 224, 224))
        cfg["input_size"] = (chans, input_size, input_size)
        cfg.pop("test_input_size", None)
        cfg.pop("test_crop_pct", None)
        if cfg.get("pool_size") and tuple(old[1:]) != (input_size, input_size):
            cfg["pool_size"] = tuple(max(1, math.ceil(input_size / 32)) for _ in range(2))
    return cfg


@dataclass
class _Outcome:
    history: list[EpochStats]
    best_epoch: int
    stopped_early: bool
    val_ok: set[int]  # indices into scan.val that were usable
    val_pred: list[int]
    val_conf: list[float]
    cache_hits: int = 0
    cache_misses: int = 0
    checkpoint: Path | None = None


def _class_weights(labels: Sequence[int], num_classes: int, balanced: bool) -> Any:
    import torch

    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes).float()
    if not balanced:
        return None
    w = counts.sum() / (num_classes * counts.clamp_min(1))
    return w


def _eta(elapsed: float, done: int, total: int) -> float | None:
    return elapsed / done * (total - done) if done else None


def _better(acc: float, loss: float, best: tuple[float, float] | None) -> bool:
    return best is None or acc > best[0] + 1e-9 or (abs(acc - best[0]) <= 1e-9 and loss < best[1])


# -- quick mode ----------------------------------------------------------------------------------


def _train_quick(run: _Run, model: Any, scan: DatasetScan, dcfg: dict, decode_side: int, device: str) -> _Outcome:
    import torch

    from .feature_cache import Cancelled, FeatureCache, extract_features, model_key
    from .preprocess import eval_transform

    cfg = run.cfg
    model.eval().to(device)
    transform = eval_transform(dcfg)
    samples = scan.train + scan.val
    paths = [s.path for s in samples]
    run.emit(StageEvent("features", f"features of {len(paths)} images"))
    t0 = time.perf_counter()
    folder = Path(cfg.feature_cache_dir) if cfg.feature_cache_dir is not None else None
    cache = FeatureCache(model_key(model, dcfg, decode_side), folder) if cfg.use_cache else None
    total_batches = 0

    def on_batch(done: int, todo: int, elapsed: float) -> None:
        nonlocal total_batches
        total_batches = math.ceil(todo / cfg.batch_size)
        run.emit(BatchEvent("features", 0, cfg.resolved_epochs, math.ceil(done / cfg.batch_size), total_batches,
                            None, elapsed, _eta(elapsed, done, todo)))

    try:
        feats = extract_features(model, paths, transform, cache, device=device, batch_size=cfg.batch_size,
                                 decode_min_side=decode_side, on_batch=on_batch, cancel=run.cancel)
    except Cancelled:
        run.check_cancel()
        raise
    finally:
        if cache is not None:
            cache.close()
    run.timings["features"] = time.perf_counter() - t0
    for i, why in sorted(feats.failed.items()):
        run.skipped.append(SkippedFile(paths[i], why))
    if feats.failed:
        run.warn(f"{len(feats.failed)} image(s) could not be decoded and were skipped")

    n_train = len(scan.train)
    row = {i: r for r, i in enumerate(feats.ok)}
    tr_idx = [i for i in range(n_train) if i in row]
    va_idx = [i for i in range(n_train, len(samples)) if i in row]
    _require_both(run, scan, [samples[i].label for i in tr_idx], [samples[i].label for i in va_idx])
    X = torch.from_numpy(feats.vectors)
    x_tr = X[[row[i] for i in tr_idx]]
    y_tr = torch.tensor([samples[i].label for i in tr_idx])
    x_va = X[[row[i] for i in va_idx]]
    y_va = torch.tensor([samples[i].label for i in va_idx])

    run.emit(StageEvent("train", f"training a {scan.num_classes}-class head on {len(tr_idx)} feature vectors "
                                 f"({feats.hits} from the cache, {feats.misses} extracted)"))
    t0 = time.perf_counter()
    mean = x_tr.mean(0)
    std = x_tr.std(0, unbiased=False)
    std = std.clamp_min(float(std.mean()) * 1e-2 + 1e-8)
    xs_tr, xs_va = (x_tr - mean) / std, (x_va - mean) / std

    gen = torch.Generator().manual_seed(cfg.seed)
    head = torch.nn.Linear(X.shape[1], scan.num_classes)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    epochs = cfg.resolved_epochs
    lr = cfg.lr or DEFAULT_LR["quick"]
    wd = cfg.weight_decay if cfg.weight_decay is not None else DEFAULT_WEIGHT_DECAY["quick"]
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=wd)
    steps_per_epoch = max(1, math.ceil(len(tr_idx) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch, eta_min=lr * 0.01)
    weight = _class_weights(y_tr.tolist(), scan.num_classes, cfg.class_balanced)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    val_loss_fn = torch.nn.CrossEntropyLoss()

    history: list[EpochStats] = []
    best: tuple[float, float] | None = None
    best_state = copy.deepcopy(head.state_dict())
    best_epoch, since_best, stopped_early = 0, 0, False
    for epoch in range(1, epochs + 1):
        te = time.perf_counter()
        order = torch.randperm(len(tr_idx), generator=gen)
        tot_loss, correct = 0.0, 0
        for b in range(steps_per_epoch):
            run.check_cancel()
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            logits = head(xs_tr[idx])
            loss = loss_fn(logits, y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y_tr[idx]).sum())
            elapsed = time.perf_counter() - t0
            done = (epoch - 1) * steps_per_epoch + b + 1
            run.emit(BatchEvent("train", epoch, epochs, b + 1, steps_per_epoch, loss.item(), elapsed,
                                _eta(elapsed, done, epochs * steps_per_epoch)))
        with torch.no_grad():
            val_logits = head(xs_va)
            val_loss = float(val_loss_fn(val_logits, y_va))
            val_acc = float((val_logits.argmax(1) == y_va).float().mean())
        stats = EpochStats(epoch, tot_loss / len(tr_idx), correct / len(tr_idx), val_loss, val_acc,
                           opt.param_groups[0]["lr"], time.perf_counter() - te)
        history.append(stats)
        if _better(val_acc, val_loss, best):
            best, best_epoch, since_best = (val_acc, val_loss), epoch, 0
            best_state = copy.deepcopy(head.state_dict())
        else:
            since_best += 1
        elapsed = time.perf_counter() - t0
        run.emit(EpochEvent(stats, epochs, best_epoch, _eta(elapsed, epoch, epochs)))
        if since_best >= cfg.patience and epoch < epochs:
            stopped_early = True
            break
    run.timings["train"] = time.perf_counter() - t0

    # fold the standardisation into the head: W' = W / std, b' = b - W' @ mean
    head.load_state_dict(best_state)
    model.reset_classifier(scan.num_classes)
    fc = model.get_classifier()
    with torch.no_grad():
        w = head.weight / std
        fc.weight.copy_(w.to(fc.weight))
        fc.bias.copy_((head.bias - w @ mean).to(fc.bias))
        probs = fc.cpu()(x_va).softmax(1)
        conf, pred = probs.max(1)
    model.to("cpu")
    return _Outcome(history, best_epoch, stopped_early, {i - n_train for i in va_idx}, pred.tolist(),
                    conf.tolist(), feats.hits, feats.misses)


def _require_both(run: _Run, scan: DatasetScan, train_labels: Sequence[int], val_labels: Sequence[int]) -> None:
    if len(set(train_labels)) < 2:
        raise SqueezeLensError("fewer than 2 classes have readable training images; nothing to learn")
    if not val_labels:
        raise SqueezeLensError("no readable validation images; add images or fix the unreadable ones")
    lost = [scan.class_names[c] for c in range(scan.num_classes) if c not in set(train_labels)]
    if lost:
        run.warn(f"no readable training images left for: {', '.join(lost)}")


# -- deep mode -----------------------------------------------------------------------------------


class _ImageDataset:
    """(tensor, label, index, error) per sample; a file that fails gives a zero tensor and its error."""

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Any], Any], decode_side: int,
                 shape: tuple[int, ...]) -> None:
        self.samples, self.transform, self.decode_side, self.shape = list(samples), transform, decode_side, shape

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int, int, str]:
        import torch

        from .errors import ImageLoadError
        from .images import open_image

        s = self.samples[i]
        try:
            return self.transform(open_image(s.path, self.decode_side)), s.label, i, ""
        except ImageLoadError as e:
            return torch.zeros(self.shape), s.label, i, e.reason or "unreadable"


def _checkpoint_path(cfg: FinetuneConfig) -> Path:
    key = hashlib.blake2b(str(Path(cfg.output_dir).resolve()).encode(), digest_size=10).hexdigest()
    return cache_dir("finetune-checkpoints", key, create=False) / "last.pt"


def _fingerprint(cfg: FinetuneConfig, scan: DatasetScan, backbone: str, dcfg: dict) -> dict[str, Any]:
    files = hashlib.blake2b(digest_size=16)
    for s in scan.train + scan.val:
        files.update(f"{s.path}|{s.label}\n".encode())
    return {
        "format": CHECKPOINT_FORMAT, "backbone": backbone, "classes": list(scan.class_names),
        "files": files.hexdigest(), "epochs": cfg.resolved_epochs, "batch_size": cfg.batch_size,
        "lr": cfg.lr, "input_size": list(dcfg["input_size"]), "seed": cfg.seed,
    }


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _train_deep(run: _Run, model: Any, name: str, scan: DatasetScan, dcfg: dict, decode_side: int,
                device: str) -> _Outcome:
    import torch
    from timm.data import create_transform
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    from .feature_cache import backbone_digest
    from .preprocess import eval_transform

    cfg = run.cfg
    epochs = cfg.resolved_epochs
    num_classes = scan.num_classes
    fingerprint = _fingerprint(cfg, scan, backbone_digest(model), dcfg)
    ckpt_path = _checkpoint_path(cfg)

    model.reset_classifier(num_classes)
    last_stage_name = model.feature_info[-1]["module"]
    last_stage = model.get_submodule(last_stage_name)
    head = model.get_classifier()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in (*last_stage.parameters(), *head.parameters()):
        p.requires_grad_(True)
    trainable = {last_stage_name: last_stage, "head": head}
    model.to(device)

    train_tf = create_transform(
        input_size=dcfg["input_size"], is_training=True, hflip=0.5, color_jitter=0.4, auto_augment=None,
        re_prob=0.0, interpolation=dcfg.get("interpolation", "bilinear"), mean=dcfg["mean"], std=dcfg["std"],
    )
    shape = tuple(dcfg["input_size"])
    train_ds = _ImageDataset(scan.train, train_tf, decode_side, shape)
    val_ds = _ImageDataset(scan.val, eval_transform(dcfg), decode_side, shape)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader_kw: dict[str, Any] = {"batch_size": cfg.batch_size, "num_workers": cfg.num_workers,
                                 "pin_memory": device == "cuda", "persistent_workers": cfg.num_workers > 0}
    train_dl = torch.utils.data.DataLoader(train_ds, shuffle=True, generator=gen, drop_last=False, **loader_kw)
    val_dl = torch.utils.data.DataLoader(val_ds, shuffle=False, **loader_kw)

    lr = cfg.lr or DEFAULT_LR["deep"]
    wd = cfg.weight_decay if cfg.weight_decay is not None else DEFAULT_WEIGHT_DECAY["deep"]
    opt = create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=wd)
    steps_per_epoch = len(train_dl)
    total_steps = epochs * steps_per_epoch
    warmup = min(total_steps // 10, 200)
    sched = CosineLRScheduler(opt, t_initial=total_steps, lr_min=lr * 0.01, warmup_t=warmup,
                              warmup_lr_init=lr * 0.01, t_in_epochs=False)
    weight = _class_weights([s.label for s in scan.train], num_classes, cfg.class_balanced)
    loss_fn = torch.nn.CrossEntropyLoss(weight=None if weight is None else weight.to(device),
                                        label_smoothing=cfg.label_smoothing)
    val_loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    use_amp = device == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    history: list[EpochStats] = []
    best: tuple[float, float] | None = None
    best_state: dict[str, Any] = {k: copy.deepcopy(m.state_dict()) for k, m in trainable.items()}
    best_epoch, best_val = 0, ([], [], [], set())
    start_epoch = 1
    if cfg.resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != fingerprint:
            run.warn("the checkpoint found is from a different dataset or settings; starting over")
        else:
            for k, m in trainable.items():
                m.load_state_dict(state["trainable"][k])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            history = [EpochStats(**h) for h in state["history"]]
            best_epoch, best_state = state["best_epoch"], state["best_state"]
            best = tuple(state["best_score"]) if state["best_score"] else None  # type: ignore[assignment]
            v = state["best_val"]
            best_val = (v["pred"], v["conf"], v["labels"], set(v["ok"]))
            gen.set_state(state["generator"])
            start_epoch = state["epoch"] + 1
            run.emit(StageEvent("train", f"resuming after epoch {state['epoch']} of {epochs}"))
    elif cfg.resume:
        run.warn("no checkpoint to resume from; starting at epoch 1")

    run.emit(StageEvent("train", f"training {last_stage_name} and a {num_classes}-class head "
                                 f"for {epochs} epoch(s) on {device}"))
    t0 = time.perf_counter()
    done_steps, bad_files = 0, {}
    remaining_steps = (epochs - start_epoch + 1) * steps_per_epoch
    checkpoint: Path | None = ckpt_path if start_epoch > 1 else None
    for epoch in range(start_epoch, epochs + 1):
        te = time.perf_counter()
        model.eval()
        last_stage.train()
        head.train()
        tot_loss, correct, seen = 0.0, 0, 0
        for b, (x, y, idx, err) in enumerate(train_dl):
            run.check_cancel(checkpoint, epoch - 1)
            keep = torch.tensor([e == "" for e in err])
            for i, e in zip(idx.tolist(), err):
                if e:
                    bad_files[scan.train[i].path] = e
            if not bool(keep.any()):
                continue
            x, y = x[keep].to(device, non_blocking=True), y[keep].to(device, non_blocking=True)
            with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_amp):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step = (epoch - 1) * steps_per_epoch + b + 1
            sched.step_update(step)
            tot_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            done_steps += 1
            elapsed = time.perf_counter() - t0
            run.emit(BatchEvent("train", epoch, epochs, b + 1, steps_per_epoch, loss.item(), elapsed,
                                _eta(elapsed, done_steps, remaining_steps)))
        # validation
        model.eval()
        preds, confs, labels, ok = [], [], [], set()
        vloss = 0.0
        with torch.inference_mode():
            for b, (x, y, idx, err) in enumerate(val_dl):
                run.check_cancel(checkpoint, epoch - 1)
                keep = torch.tensor([e == "" for e in err])
                for i, e in zip(idx.tolist(), err):
                    if e:
                        bad_files[scan.val[i].path] = e
                if not bool(keep.any()):
                    continue
                x, y = x[keep].to(device), y[keep].to(device)
                with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_amp):
                    logits = model(x).float()
                vloss += float(val_loss_fn(logits, y))
                p = logits.softmax(1)
                c, k = p.max(1)
                preds += k.cpu().tolist()
                confs += c.cpu().tolist()
                labels += y.cpu().tolist()
                ok.update(i for i, e in zip(idx.tolist(), err) if not e)
                run.emit(BatchEvent("validate", epoch, epochs, b + 1, len(val_dl), None,
                                    time.perf_counter() - t0, None))
        if not labels or not seen:
            raise SqueezeLensError("no readable training or validation images; nothing to learn from")
        val_acc = sum(int(p == t) for p, t in zip(preds, labels)) / len(labels)
        val_loss = vloss / len(labels)
        stats = EpochStats(epoch, tot_loss / seen, correct / seen, val_loss, val_acc,
                           float(opt.param_groups[0]["lr"]), time.perf_counter() - te)
        history.append(stats)
        if _better(val_acc, val_loss, best):
            best, best_epoch = (val_acc, val_loss), epoch
            best_state = {k: copy.deepcopy(m.state_dict()) for k, m in trainable.items()}
            best_val = (preds, confs, labels, ok)
        _save_checkpoint(ckpt_path, {
            "fingerprint": fingerprint, "epoch": epoch, "model_name": name,
            "trainable": {k: m.state_dict() for k, m in trainable.items()},
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
            "history": [asdict(h) for h in history], "best_epoch": best_epoch, "best_state": best_state,
            "best_score": list(best) if best else None, "generator": gen.get_state(),
            "best_val": {"pred": best_val[0], "conf": best_val[1], "labels": best_val[2], "ok": sorted(best_val[3])},
        })
        checkpoint = ckpt_path
        elapsed = time.perf_counter() - t0
        run.emit(EpochEvent(stats, epochs, best_epoch,
                            _eta(elapsed, epoch - start_epoch + 1, epochs - start_epoch + 1)))
    run.timings["train"] = time.perf_counter() - t0
    for path, why in bad_files.items():
        run.skipped.append(SkippedFile(path, why))
    if bad_files:
        run.warn(f"{len(bad_files)} image(s) could not be decoded and were skipped")

    for k, m in trainable.items():
        m.load_state_dict(best_state[k])
    for p in model.parameters():
        p.requires_grad_(True)
    model.to("cpu")
    preds, confs, _, ok = best_val
    return _Outcome(history, best_epoch, False, set(ok), list(preds), list(confs), checkpoint=checkpoint)


def describe_event(event: FinetuneEvent) -> str:
    """A one-line text for an event (the CLI prints these; a GUI may show them in a status bar)."""
    if isinstance(event, StageEvent):
        return event.message
    if isinstance(event, WarningEvent):
        return f"warning: {event.message}"
    if isinstance(event, ScanEvent):
        return event.scan.summary()
    if isinstance(event, DownloadEvent):
        total = f"/{event.total / 1e6:.1f}" if event.total else ""
        return f"downloading weights: {event.done / 1e6:.1f}{total} MB"
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


def format_seconds(s: float) -> str:
    """``0:07``, ``3:12``, ``1:02:03``."""
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


__all__ = [
    "BatchEvent", "DownloadEvent", "EpochEvent", "EpochStats", "FinetuneCancelled", "FinetuneConfig",
    "FinetuneEvent", "FinetuneResult", "ScanEvent", "StageEvent", "ValPrediction", "WarningEvent",
    "check_output_dir", "describe_event", "finetune", "format_seconds",
]
