"""Deep mode: the backbone's last stage and a new head trained on images, after timm's ``train.py``.

The parts are those of timm's ``train.py`` (``train_one_epoch``, ``validate``, a checkpoint per
epoch) cut down to one job: earlier stages stay frozen (and in eval mode, so their batch-norm
statistics keep the pretrained values), images go through timm's training transform (random
resized crop, flip, colour jitter), the optimiser and schedule are those quick mode uses too
(:func:`.training.create_optimizer_and_scheduler`), and on CUDA the forward passes run under
autocast in the dtype inference uses (:func:`squeezelens.core.cuda_path.autocast_dtype`).

After every epoch a checkpoint (trainable weights, optimiser, scheduler, loss scaler, history,
best epoch so far, shuffling generator) is written to the user cache, keyed by the output folder;
``resume=True`` continues from it when the dataset and settings are the same. The model keeps the
best validation epoch's weights.

This module imports torch and timm: :func:`~.run.finetune` imports it when a deep run starts.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from timm.data import create_transform
from timm.scheduler import CosineLRScheduler

from ..cuda_path import autocast_dtype
from ..dataset_scan import DatasetScan, Sample, SkippedFile
from ..errors import DatasetError, ImageLoadError
from ..feature_cache import backbone_digest
from ..images import open_image
from ..paths import cache_dir
from ..preprocess import eval_transform
from ..progress_text import eta_seconds
from .config import FinetuneConfig
from .events import BatchEvent, EpochEvent, EpochStats, StageEvent
from .training import TrainOutcome, class_weights, clone_state, create_optimizer_and_scheduler, is_better

if TYPE_CHECKING:
    from .distributed import DdpContext
    from .run import RunState

#: Bumped when the checkpoint's contents change meaning (an older one is then not resumed).
CHECKPOINT_FORMAT = 2


class ImageDataset(torch.utils.data.Dataset[tuple[torch.Tensor, int, int, str]]):
    """A map-style dataset of ``(image, label, index, error)``: ``image`` is the transform's
    ``(C, H, W)`` float tensor, ``index`` the position in ``samples``; a file that fails to decode
    gives a zero tensor of ``shape`` and its error text (so one bad file does not end the epoch).
    """

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Any], Any], decode_side: int,
                 shape: tuple[int, ...]) -> None:
        self.samples, self.transform, self.decode_side, self.shape = list(samples), transform, decode_side, shape

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, str]:
        s = self.samples[i]
        try:
            return self.transform(open_image(s.path, self.decode_side)), s.label, i, ""
        except ImageLoadError as e:
            return torch.zeros(self.shape), s.label, i, e.reason or "unreadable"


@dataclass(frozen=True)
class AmpSettings:
    """Mixed precision for training: autocast ``enabled`` in ``dtype``; ``use_scaler``: float16
    needs a ``GradScaler`` against gradient underflow (bfloat16 has float32's range and does not)."""

    enabled: bool
    dtype: Any
    use_scaler: bool


def amp_settings(device: str, torch_module: Any = torch) -> AmpSettings:
    """AMP on CUDA only, in the dtype inference uses: bfloat16 where the GPU computes it natively
    (not emulated), else float16 (:func:`squeezelens.core.cuda_path.autocast_dtype`).

    Args:
        device: the training device (``cuda``, ``cpu``, ``mps``).
        torch_module: the torch module to ask (tests pass a stand-in).
    """
    enabled = device == "cuda"
    dtype = autocast_dtype(torch_module) if enabled else torch_module.float16
    return AmpSettings(enabled, dtype, enabled and dtype == torch_module.float16)


@dataclass
class ValOutput:
    """One pass over the validation images.

    ``loss`` is the mean plain cross-entropy per usable image, ``acc`` the fraction right; ``preds``,
    ``confs`` (softmax probability 0..1 of the prediction) and ``labels`` have one entry per usable
    image, and ``ok`` holds those images' indices into the validation samples.
    """

    loss: float
    acc: float
    preds: list[int] = field(default_factory=list)
    confs: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    ok: set[int] = field(default_factory=set)


def _readable(batch: Sequence[Any], samples: Sequence[Sample],
              bad_files: dict[Path, str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The batch's ``(x, y, idx)`` without the images that failed to decode (recorded in ``bad_files``),
    or None when none is left."""
    x, y, idx, err = batch
    for i, e in zip(idx.tolist(), err):
        if e:
            bad_files[samples[i].path] = e
    keep = torch.tensor([e == "" for e in err])
    if not bool(keep.any()):
        return None
    return x[keep], y[keep], idx[keep]


def train_one_epoch(
    epoch: int, model: torch.nn.Module, trainable: Mapping[str, torch.nn.Module], loader: Iterable[Any],
    steps_per_epoch: int, optimizer: torch.optim.Optimizer, lr_scheduler: CosineLRScheduler,
    loss_fn: torch.nn.Module, loss_scaler: torch.amp.GradScaler, amp: AmpSettings, device: str,
    samples: Sequence[Sample], bad_files: dict[Path, str],
    before_batch: Callable[[], None], after_batch: Callable[[int, float], None], frozen_bn: bool = False,
) -> tuple[float, float, int]:
    """One epoch over ``loader``: forward under autocast, scaled backward, step, per-update schedule.

    Only the ``trainable`` modules are put in train mode; the rest of ``model`` stays in eval mode.

    Args:
        epoch: 1-based; the scheduler is stepped with the global update count.
        before_batch: called before each batch (raises to cancel).
        after_batch: called with the 1-based batch number and its loss after each update.
        frozen_bn: keep the trainable modules' BatchNorm layers in eval mode (torchrun runs:
            :func:`.distributed.freeze_batchnorm`).

    Returns:
        ``(mean training loss, training accuracy, images used)``; 0 images when none could be read.
    """
    model.eval()
    for m in trainable.values():
        m.train()
    if frozen_bn:
        from .distributed import freeze_batchnorm

        freeze_batchnorm(list(trainable.values()))
    tot_loss, correct, seen = 0.0, 0, 0
    for b, batch in enumerate(loader):
        before_batch()
        readable = _readable(batch, samples, bad_files)
        if readable is None:
            continue
        x, y = readable[0].to(device, non_blocking=True), readable[1].to(device, non_blocking=True)
        with torch.autocast(device_type="cuda", dtype=amp.dtype, enabled=amp.enabled):
            logits = model(x)
            loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss_scaler.scale(loss).backward()
        loss_scaler.step(optimizer)
        loss_scaler.update()
        lr_scheduler.step_update((epoch - 1) * steps_per_epoch + b + 1)
        tot_loss += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        after_batch(b + 1, loss.item())
    return (tot_loss / seen, correct / seen, seen) if seen else (0.0, 0.0, 0)


def validate(
    model: torch.nn.Module, loader: Iterable[Any], amp: AmpSettings, device: str, samples: Sequence[Sample],
    bad_files: dict[Path, str], before_batch: Callable[[], None], after_batch: Callable[[int], None],
) -> ValOutput:
    """Evaluate ``model`` (in eval mode, under autocast) on every readable image of ``loader``.

    Args:
        after_batch: called with the 1-based batch number after each batch.
    """
    model.eval()
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    out = ValOutput(0.0, 0.0)
    total = 0.0
    with torch.inference_mode():
        for b, batch in enumerate(loader):
            before_batch()
            readable = _readable(batch, samples, bad_files)
            if readable is None:
                continue
            x, y, idx = readable[0].to(device), readable[1].to(device), readable[2]
            with torch.autocast(device_type="cuda", dtype=amp.dtype, enabled=amp.enabled):
                logits = model(x).float()
            total += float(loss_fn(logits, y))
            conf, pred = logits.softmax(1).max(1)
            out.preds += pred.cpu().tolist()
            out.confs += conf.cpu().tolist()
            out.labels += y.cpu().tolist()
            out.ok.update(idx.tolist())
            after_batch(b + 1)
    if out.labels:
        out.loss = total / len(out.labels)
        out.acc = sum(int(p == t) for p, t in zip(out.preds, out.labels)) / len(out.labels)
    return out


def checkpoint_path(cfg: FinetuneConfig) -> Path:
    """Where deep mode keeps the checkpoint of a run into ``cfg.output_dir`` (the user cache)."""
    key = hashlib.blake2b(str(Path(cfg.output_dir).resolve()).encode(), digest_size=10).hexdigest()
    return cache_dir("finetune-checkpoints", key, create=False) / "last.pt"


def checkpoint_fingerprint(cfg: FinetuneConfig, scan: DatasetScan, backbone: str,
                           dcfg: Mapping[str, Any]) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: format, base weights (``backbone`` digest),
    classes, the exact files and labels, epochs, batch size, learning rate, input size and seed."""
    files = hashlib.blake2b(digest_size=16)
    for s in scan.train + scan.val:
        files.update(f"{s.path}|{s.label}\n".encode())
    return {
        "format": CHECKPOINT_FORMAT, "backbone": backbone, "classes": list(scan.class_names),
        "files": files.hexdigest(), "epochs": cfg.resolved_epochs, "batch_size": cfg.batch_size,
        "lr": cfg.lr, "input_size": list(dcfg["input_size"]), "seed": cfg.seed,
    }


@dataclass
class TrainingParts:
    """What a checkpoint saves besides the numbers: the ``trainable`` modules (by name: the last
    stage's and ``head``), the optimiser, the schedule, the loss scaler and the shuffling generator."""

    trainable: dict[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer
    scheduler: CosineLRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator


@dataclass
class Progress:
    """Where a run stands after ``epoch`` finished epochs: the curves and the best epoch so far.

    ``best_score`` is that epoch's ``(val_acc, val_loss)``, ``best_state`` its weights of each
    trainable module (a copy), ``best_val`` its validation predictions.
    """

    epoch: int
    history: list[EpochStats]
    best_score: tuple[float, float] | None
    best_epoch: int
    best_state: dict[str, dict[str, Any]]
    best_val: ValOutput


def checkpoint_state(fingerprint: dict[str, Any], model_name: str, parts: TrainingParts,
                     progress: Progress) -> dict[str, Any]:
    """The checkpoint's contents (plain containers and tensors, loadable with ``weights_only=True``)."""
    best = progress.best_val
    return {
        "fingerprint": fingerprint, "epoch": progress.epoch, "model_name": model_name,
        "trainable": {k: m.state_dict() for k, m in parts.trainable.items()},
        "optimizer": parts.optimizer.state_dict(), "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "history": [asdict(h) for h in progress.history], "best_epoch": progress.best_epoch,
        "best_state": progress.best_state,
        "best_score": list(progress.best_score) if progress.best_score else None,
        "generator": parts.generator.get_state(),
        "best_val": {"pred": best.preds, "conf": best.confs, "labels": best.labels, "ok": sorted(best.ok)},
    }


def restore_checkpoint(state: dict[str, Any], parts: TrainingParts) -> Progress:
    """Load a :func:`checkpoint_state` into ``parts`` and return the progress it holds."""
    for k, m in parts.trainable.items():
        m.load_state_dict(state["trainable"][k])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    parts.scaler.load_state_dict(state["scaler"])
    parts.generator.set_state(state["generator"])
    v, score = state["best_val"], state["best_score"]
    return Progress(
        state["epoch"], [EpochStats(**h) for h in state["history"]], (score[0], score[1]) if score else None,
        state["best_epoch"], state["best_state"], ValOutput(0.0, 0.0, v["pred"], v["conf"], v["labels"], set(v["ok"])),
    )


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save(state)`` to ``path`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # of runs killed mid-write
        pid = stale.name.split(".")[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` (tensors on the CPU; plain data only)."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def load_checkpoint_or_warn(run: RunState, path: Path) -> dict[str, Any] | None:
    """:func:`load_checkpoint`, or None with a warning when the file is damaged or not ours (the run starts over).

    torch's own message for such a file (its ``weights_only`` advice included) is never shown: that
    advice would mean running code from the file.
    """
    try:
        state = load_checkpoint(path)
        if isinstance(state, dict) and isinstance(state.get("fingerprint"), dict):
            return state
    except Exception:  # torch raises many kinds for a cut-off or altered file
        pass
    run.warn(f"the checkpoint {path} is damaged or not one SqueezeLens wrote; starting over at epoch 1")
    return None


def save_checkpoint_or_warn(run: RunState, path: Path, state: dict[str, Any]) -> Path | None:
    """:func:`save_checkpoint`; on a full or read-only disk one warning and None (the run goes on unresumable)."""
    try:
        save_checkpoint(path, state)
        return path
    except Exception as e:  # OSError, or torch's RuntimeError around one
        from ..saved_model import write_failure_reason

        note = f"the checkpoint cannot be written ({write_failure_reason(e)}); this run cannot be resumed"
        if note not in run.warnings:
            run.warn(note)
        return None


def train_last_stage(run: RunState, model: Any, name: str, scan: DatasetScan, dcfg: dict[str, Any],
                     decode_side: int, device: str) -> TrainOutcome:
    """Deep mode: train the last stage and a new ``scan.num_classes``-way head; keep the best epoch.

    On return ``model`` is on the CPU with the best epoch's weights and every parameter trainable
    again; the checkpoint stays on disk until the run saves the model.

    The new head's initialisation and the augmentation draw from torch's CPU generator and Python's
    ``random`` (timm's random resized crop): both are seeded with ``cfg.seed`` (and ``cfg.seed +
    epoch`` at each epoch, so a resumed run augments as an uninterrupted one would), as timm's
    ``train.py`` seeds them, and both are put back as they were afterwards.

    Raises:
        FinetuneCancelled: the cancel event was set (``checkpoint``/``epochs_done`` say what to resume).
        DatasetError: an epoch found no readable training or validation image.
    """
    from .distributed import DdpContext, detect

    env = detect()  # started by torchrun: DistributedDataParallel (see .distributed)
    ddp = DdpContext(env, device) if env is not None else None
    python_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            _seed(run.cfg.seed)
            return _train_last_stage(run, model, name, scan, dcfg, decode_side, device, ddp)
    finally:
        random.setstate(python_state)
        if ddp is not None:
            ddp.close()


def _seed(seed: int) -> None:
    """Seed torch's CPU generator and Python's ``random`` (the in-process augmentation's sources;
    DataLoader workers seed themselves from the loader's generator)."""
    torch.default_generator.manual_seed(seed)
    random.seed(seed)


def _train_last_stage(run: RunState, model: Any, name: str, scan: DatasetScan, dcfg: dict[str, Any],
                      decode_side: int, device: str, ddp: DdpContext | None = None) -> TrainOutcome:
    cfg = run.cfg
    epochs, num_classes = cfg.resolved_epochs, scan.num_classes
    fingerprint = checkpoint_fingerprint(cfg, scan, backbone_digest(model), dcfg)
    writes = ddp is None or ddp.is_main  # under torchrun only rank 0 reads and writes the checkpoint
    if ddp is not None:  # resumable with another process count when the global batch is the same
        fingerprint.update(batch_size=ddp.global_batch(cfg.batch_size), batchnorm="frozen")
    ckpt_path = checkpoint_path(cfg)

    trainable = _train_only_last_stage(model, num_classes)
    last_stage_name = next(iter(trainable))
    model.to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    train_dl, val_dl = _create_loaders(cfg, scan, dcfg, decode_side, device, generator)
    if ddp is not None:
        train_dl, val_dl = ddp.loaders(train_dl, val_dl, cfg.seed)
    steps_per_epoch = len(train_dl)
    optimizer, scheduler = create_optimizer_and_scheduler(
        model, lr=cfg.resolved_lr, weight_decay=cfg.resolved_weight_decay, total_updates=epochs * steps_per_epoch,
    )
    weight = class_weights([s.label for s in scan.train], num_classes, cfg.class_balanced)
    loss_fn = torch.nn.CrossEntropyLoss(weight=None if weight is None else weight.to(device),
                                        label_smoothing=cfg.label_smoothing)
    amp = amp_settings(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp.use_scaler)
    parts = TrainingParts(trainable, optimizer, scheduler, scaler, generator)

    progress = Progress(0, [], None, 0, {k: clone_state(m) for k, m in trainable.items()}, ValOutput(0.0, 0.0))
    resumed: dict[str, Any] | None = None
    if not writes:
        pass
    elif cfg.resume and ckpt_path.is_file():
        state = load_checkpoint_or_warn(run, ckpt_path)
        if state is None:
            pass
        elif state.get("fingerprint") != fingerprint:
            run.warn("the checkpoint found is from a different dataset or settings; starting over")
        else:
            resumed = state
    elif cfg.resume:
        run.warn("no checkpoint to resume from; starting at epoch 1")
    if ddp is not None:
        resumed = ddp.broadcast(resumed)
    if resumed is not None:
        progress = restore_checkpoint(resumed, parts)
        run.emit(StageEvent("train", f"resuming after epoch {progress.epoch} of {epochs}"))
    train_model = ddp.wrap(model, device) if ddp is not None else model

    run.emit(StageEvent("train", f"training {last_stage_name} and a {num_classes}-class head "
                                 f"for {epochs} epoch(s) on {device}"))
    t0 = time.perf_counter()
    start_epoch = progress.epoch + 1
    done_steps = 0
    bad_files: dict[Path, str] = {}
    remaining_steps = (epochs - start_epoch + 1) * steps_per_epoch
    checkpoint: Path | None = ckpt_path if start_epoch > 1 and writes else None
    for epoch in range(start_epoch, epochs + 1):
        te = time.perf_counter()
        _seed(cfg.seed + epoch)  # this epoch's augmentation
        if ddp is not None:
            ddp.start_epoch(epoch)

        def before_batch(epoch: int = epoch, checkpoint: Path | None = checkpoint) -> None:
            run.check_cancel(checkpoint, epoch - 1)

        def after_train_batch(batch: int, loss: float, epoch: int = epoch) -> None:
            nonlocal done_steps
            done_steps += 1
            elapsed = time.perf_counter() - t0
            run.emit(BatchEvent("train", epoch, epochs, batch, steps_per_epoch, loss, elapsed,
                                eta_seconds(elapsed, done_steps, remaining_steps)))

        def after_val_batch(batch: int, epoch: int = epoch) -> None:
            run.emit(BatchEvent("validate", epoch, epochs, batch, len(val_dl), None, time.perf_counter() - t0, None))

        train_loss, train_acc, seen = train_one_epoch(
            epoch, train_model, trainable, train_dl, steps_per_epoch, optimizer, scheduler, loss_fn, scaler, amp,
            device, scan.train, bad_files, before_batch, after_train_batch, frozen_bn=ddp is not None,
        )
        val = validate(model, val_dl, amp, device, scan.val, bad_files, before_batch, after_val_batch)
        if ddp is not None:  # every rank holds the whole epoch's numbers, so all pick the same best epoch
            train_loss, train_acc, seen = ddp.train_totals(train_loss, train_acc, seen)
            val = ddp.gather_val(val)
        if not val.labels or not seen:
            raise DatasetError("no readable training or validation images; nothing to learn from")
        stats = EpochStats(epoch, train_loss, train_acc, val.loss, val.acc,
                           float(optimizer.param_groups[0]["lr"]), time.perf_counter() - te)
        progress.epoch = epoch
        progress.history.append(stats)
        if is_better(val.acc, val.loss, progress.best_score):
            progress.best_score, progress.best_epoch, progress.best_val = (val.acc, val.loss), epoch, val
            progress.best_state = {k: clone_state(m) for k, m in trainable.items()}
        if writes:
            checkpoint = save_checkpoint_or_warn(run, ckpt_path, checkpoint_state(fingerprint, name, parts, progress))
        elapsed = time.perf_counter() - t0
        run.emit(EpochEvent(stats, epochs, progress.best_epoch,
                            eta_seconds(elapsed, epoch - start_epoch + 1, epochs - start_epoch + 1)))
    run.timings["train"] = time.perf_counter() - t0
    if ddp is not None:
        bad_files = ddp.gather_bad_files(bad_files)
    for path, why in bad_files.items():
        run.skipped.append(SkippedFile(path, why))
    if bad_files:
        run.warn(f"{len(bad_files)} image(s) could not be decoded and were skipped")

    for k, m in trainable.items():
        m.load_state_dict(progress.best_state[k])
    for p in model.parameters():
        p.requires_grad_(True)
    model.to("cpu")
    best = progress.best_val
    return TrainOutcome(progress.history, progress.best_epoch, False, set(best.ok), list(best.preds),
                        list(best.confs), checkpoint=checkpoint)


def _train_only_last_stage(model: Any, num_classes: int) -> dict[str, torch.nn.Module]:
    """Give ``model`` a new ``num_classes``-way head and freeze all but it and the last stage.

    Returns:
        ``{last stage's module name: last stage, "head": classifier}`` (the last stage first).
    """
    model.reset_classifier(num_classes)
    last_stage_name = model.feature_info[-1]["module"]
    last_stage = model.get_submodule(last_stage_name)
    head = model.get_classifier()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in (*last_stage.parameters(), *head.parameters()):
        p.requires_grad_(True)
    return {last_stage_name: last_stage, "head": head}


Loader = torch.utils.data.DataLoader[tuple[torch.Tensor, int, int, str]]


def _create_loaders(cfg: FinetuneConfig, scan: DatasetScan, dcfg: dict[str, Any], decode_side: int, device: str,
                    generator: torch.Generator) -> tuple[Loader, Loader]:
    """Training loader (timm's training transform: random resized crop, flip, colour jitter; shuffled
    by ``generator``) and validation loader (the eval transform), batches of ``cfg.batch_size``."""
    train_tf = create_transform(
        input_size=dcfg["input_size"], is_training=True, hflip=0.5, color_jitter=0.4, auto_augment=None,
        re_prob=0.0, interpolation=dcfg.get("interpolation", "bilinear"), mean=dcfg["mean"], std=dcfg["std"],
    )
    shape = tuple(dcfg["input_size"])
    loader_kw: dict[str, Any] = {"batch_size": cfg.batch_size, "num_workers": cfg.num_workers,
                                 "pin_memory": device == "cuda", "persistent_workers": cfg.num_workers > 0}
    train_dl = torch.utils.data.DataLoader(ImageDataset(scan.train, train_tf, decode_side, shape),
                                           shuffle=True, generator=generator, drop_last=False, **loader_kw)
    val_dl = torch.utils.data.DataLoader(ImageDataset(scan.val, eval_transform(dcfg), decode_side, shape),
                                         shuffle=False, **loader_kw)
    return train_dl, val_dl
