""":func:`finetune`: scan the folder, load the base model, train (quick or deep), evaluate, save.

The run is in the caller's thread from start to end. Progress goes to ``on_event`` (called in that
same thread, with the frozen dataclasses of :mod:`.events`), and a ``threading.Event`` cancels
between batches. Nothing is written to the output folder until the very end, and then atomically
(temporary folder + rename, :func:`squeezelens.core.saved_model.save_model`), so a cancelled or
failed run leaves an earlier model there as it was.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ..dataset_scan import DatasetScan, ScanCancelled, SkippedFile, scan_dataset
from ..errors import DownloadCancelled, FinetuneCancelled
from .config import FinetuneConfig
from .events import UNTRAINED_BASE, DownloadEvent, EventFn, FinetuneEvent, ScanEvent, StageEvent, WarningEvent
from .metrics import accuracy, class_metrics, confusion_matrix
from .result import FinetuneResult, ValPrediction
from .training import TrainOutcome


class RunState:
    """What the stages of one :func:`finetune` call share: the config, the event callback, the
    cancel flag, and the warnings, skipped files and stage timings (seconds) gathered so far."""

    def __init__(self, cfg: FinetuneConfig, on_event: EventFn | None, cancel: threading.Event | None) -> None:
        self.cfg = cfg
        self._on_event = on_event
        self.cancel = cancel or threading.Event()
        self.warnings: list[str] = []
        self.skipped: list[SkippedFile] = []
        self.timings: dict[str, float] = {}

    def emit(self, event: FinetuneEvent) -> None:
        """Hand ``event`` to the caller's ``on_event`` (in this thread)."""
        if self._on_event is not None:
            self._on_event(event)

    def warn(self, message: str, kind: str = "") -> None:
        """Record a warning for the result and emit it as a :class:`WarningEvent` of ``kind``."""
        self.warnings.append(message)
        self.emit(WarningEvent(message, kind))

    def check_cancel(self, checkpoint: Path | None = None, epochs_done: int = 0) -> None:
        """Raise :class:`FinetuneCancelled` (carrying what can be resumed) when cancel is set."""
        if self.cancel.is_set():
            raise FinetuneCancelled(
                "finetuning cancelled; the output folder was not changed", checkpoint, epochs_done
            )


def finetune(
    config: FinetuneConfig,
    on_event: EventFn | None = None,
    cancel: threading.Event | None = None,
    *,
    stage_only: bool = False,
) -> FinetuneResult:
    """Train a classifier for the classes in ``config.data_dir`` and save it to ``config.output_dir``.

    Runs in the calling thread (a GUI runs it in a worker thread); ``on_event`` is called in that
    thread. Setting ``cancel`` stops the run at the next batch with :class:`FinetuneCancelled`.
    With ``stage_only`` a model already in the output folder stays current: the new one is saved to
    ``versions/vN`` (``result.staged``) until :func:`squeezelens.core.model_versions.make_current`.

    Raises:
        UsageError: a setting is out of range (:meth:`FinetuneConfig.validate`), or the device is absent.
        OutputError: the output folder may not be written.
        DatasetError: the folder has no usable dataset, or too few readable images.
        FinetuneCancelled: ``cancel`` was set; nothing was written to the output folder.
        SqueezeLensError: the base model or its weights cannot be loaded.
    """
    from ..engine import pick_device
    from ..model_loader import load_model
    from ..preprocess import data_config, fast_decode_min_side
    from .distributed import detect
    from .head import train_head
    from .last_stage import train_last_stage

    t_start = time.perf_counter()
    cfg = config
    cfg.validate()
    dist_env = detect() if cfg.mode == "deep" else None  # under torchrun: only rank 0 reports and writes
    main_rank = dist_env is None or dist_env.is_main
    run = RunState(cfg, on_event if main_rank else None, cancel)
    scan = _scan(run)

    run.emit(StageEvent("load", f"loading {cfg.model or 'the default model'}"))
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    try:
        loaded = load_model(
            cfg.model, None if cfg.weights is None else Path(cfg.weights), allow_download=cfg.allow_download,
            progress=lambda d, t: run.emit(DownloadEvent(d, t)), cancel=run.cancel,
        )
    except DownloadCancelled as e:
        raise FinetuneCancelled("finetuning cancelled during the weights download; the output folder "
                                "was not changed") from e
    if loaded.untrained:
        why = f" ({loaded.untrained_reason})" if loaded.untrained_reason else ""
        run.warn(f"{loaded.name} has no pretrained weights{why}: training on random features", UNTRAINED_BASE)
    # a timm model: pretrained_cfg, reset_classifier and forward_head are timm's, not nn.Module's
    model: Any = loaded.model
    model.pretrained_cfg = pretrained_cfg_at_size(model, cfg.input_size)
    dcfg = data_config(model)
    decode_side = fast_decode_min_side(dcfg)
    run.timings["load"] = time.perf_counter() - t0
    run.check_cancel()

    if cfg.mode == "quick":
        outcome = train_head(run, model, scan, dcfg, decode_side, device)
    else:
        outcome = train_last_stage(run, model, loaded.name, scan, dcfg, decode_side, device)

    run.emit(StageEvent("evaluate", "validation metrics"))
    preds, cm = _evaluate(scan, outcome)
    per_class = class_metrics(cm, scan.class_names)
    val_acc = accuracy(cm)
    run.check_cancel(outcome.checkpoint, len(outcome.history))
    c, h, w = dcfg["input_size"]

    def result(**saved: Any) -> FinetuneResult:
        return FinetuneResult(
            output_dir=Path(cfg.output_dir), mode=cfg.mode, base_model=loaded.name,
            architecture=loaded.architecture, class_names=list(scan.class_names), scan=scan,
            history=outcome.history, best_epoch=outcome.best_epoch, stopped_early=outcome.stopped_early,
            val_accuracy=val_acc, confusion=cm, per_class=per_class, val_predictions=preds,
            skipped=run.skipped, warnings=run.warnings, untrained_base=loaded.untrained,
            input_size=(int(c), int(h), int(w)), device=device, timings=run.timings, **saved,
        )

    if not main_rank:  # the other torchrun ranks never touch the output folder
        return result()

    run.emit(StageEvent("save", f"saving to {cfg.output_dir}"))
    t0 = time.perf_counter()
    from .. import model_versions
    from ..precision import MODEL_PHOTOS_KEY, pick_spread

    model.eval().cpu()
    extra = {"squeezelens_finetune": {
        "mode": cfg.mode, "base_model": loaded.name, "base_untrained": loaded.untrained,
        "data_dir": str(Path(cfg.data_dir).resolve()), "best_epoch": outcome.best_epoch,
        "val_accuracy": val_acc, "train_images": len(scan.train), "val_images": len(scan.val),
        # the precision fidelity check runs on these too (core/precision.py, model_photos)
        # relative to data_dir (a shared model folder names no more of the user's disk than data_dir does)
        MODEL_PHOTOS_KEY: [_under(Path(cfg.data_dir).resolve(), Path(p).resolve())
                           for p in pick_spread([s.path for s in scan.val])],
    }}
    extra.update(unknown_config(preds, run))
    # one step under the folder's save lock: the model there is kept as a version first; with
    # stage_only the new one waits in versions/ until the user picks it (model_versions.make_current)
    previous, version = model_versions.save_version(
        model, cfg.output_dir, scan.class_names, extra, parent=_parent_version(cfg), data_dir=cfg.data_dir,
        stage_only=stage_only)
    previous_acc = (model_versions.read_index(cfg.output_dir).get(previous).val_accuracy
                    if previous is not None else None)
    if outcome.checkpoint is not None:
        shutil.rmtree(outcome.checkpoint.parent, ignore_errors=True)
    run.timings["save"] = time.perf_counter() - t0
    run.timings["total"] = time.perf_counter() - t_start

    return result(
        cache_hits=outcome.cache_hits, cache_misses=outcome.cache_misses,
        version=version, previous_version=previous, previous_val_accuracy=previous_acc,
        staged=stage_only and previous is not None,
    )


def _under(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` when it is inside it (POSIX separators), else absolute."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _parent_version(cfg: FinetuneConfig) -> int | None:
    """N when the base model is ``OUTPUT/versions/vN`` (finetuning from a chosen version), else None."""
    from ..model_versions import versions_dir

    if cfg.model is None:
        return None
    base = Path(cfg.model)
    try:
        if base.parent.resolve() == versions_dir(cfg.output_dir).resolve() and base.name[1:].isdigit():
            return int(base.name[1:])
    except OSError:
        return None
    return None


def unknown_config(preds: list[ValPrediction], run: RunState | None = None) -> dict[str, Any]:
    """``{"squeezelens_unknown": {...}}``: the unknown threshold calibrated on the validation predictions
    (:func:`squeezelens.core.unknown.calibrate`), or ``{}`` (with a warning) when none was correct."""
    from ..errors import UsageError
    from ..unknown import CONFIG_KEY, calibrate

    try:
        cal = calibrate([p.confidence for p in preds], [p.correct for p in preds])
    except UsageError:
        if run is not None:
            run.warn("no correct validation prediction: the model is saved without an unknown threshold")
        return {}
    return {CONFIG_KEY: cal.to_config()}


def _scan(run: RunState) -> DatasetScan:
    """The ``scan`` stage: classes, split, skipped files (each scan warning becomes a run warning)."""
    cfg = run.cfg
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
    return scan


def _evaluate(scan: DatasetScan, outcome: TrainOutcome) -> tuple[list[ValPrediction], list[list[int]]]:
    """The kept epoch's validation predictions and their confusion matrix ``[true][predicted]``."""
    val = [s for i, s in enumerate(scan.val) if i in outcome.val_ok]
    preds = [ValPrediction(s.path, s.label, int(p), float(c))
             for s, p, c in zip(val, outcome.val_pred, outcome.val_conf)]
    cm = confusion_matrix([p.true_index for p in preds], [p.pred_index for p in preds], scan.num_classes)
    return preds, cm


def pretrained_cfg_at_size(model: Any, input_size: int | None) -> dict[str, Any]:
    """``model.pretrained_cfg`` with the training input size, so the saved model preprocesses alike.

    With ``input_size`` (pixels, square) the config's ``input_size`` becomes ``(C, size, size)``,
    the test-time size and crop are dropped, and a ``pool_size`` is scaled to ``ceil(size / 32)``
    (the output stride of timm's ResNets). Without it the config is returned as it is (a copy).
    """
    cfg = dict(model.pretrained_cfg)
    if input_size is not None:
        old = cfg.get("input_size", (3, 224, 224))
        cfg["input_size"] = (old[0], input_size, input_size)
        cfg.pop("test_input_size", None)
        cfg.pop("test_crop_pct", None)
        if cfg.get("pool_size") and tuple(old[1:]) != (input_size, input_size):
            cfg["pool_size"] = tuple(max(1, math.ceil(input_size / 32)) for _ in range(2))
    return cfg
