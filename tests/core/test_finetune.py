"""Finetuning on a made-up dataset (4 classes of coloured shapes/textures, 64 px, random backbone).

One quick-mode run is shared by the module (its own feature-cache folder, so a later test can hit
it); the other runs are short. Input size 64 keeps the backbone cheap on two CPU cores.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from squeezelens import Classifier
from squeezelens.core.dataset_scan import DatasetError
from squeezelens.core.errors import SqueezeLensError
from squeezelens.core.feature_graph import LazyFeatureRunner
from squeezelens.core.finetune import (
    BatchEvent,
    EpochEvent,
    FinetuneCancelled,
    FinetuneConfig,
    FinetuneResult,
    ScanEvent,
    StageEvent,
    finetune,
)
from squeezelens.core.finetune.last_stage import checkpoint_path

ARCH = "seresnext26d_32x4d"
SIZE = 64


@dataclass
class QuickRun:
    result: FinetuneResult
    events: list[Any]
    threads: set[int]
    out: Path
    cache: Path
    config: FinetuneConfig


@pytest.fixture(scope="module")
def shapes(shapes_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes_module.make_dataset(tmp_path_factory.mktemp("shapes") / "data", per_class=40, size=64)


@pytest.fixture(scope="module")
def small_shapes(shapes_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes_module.make_dataset(tmp_path_factory.mktemp("small") / "data", per_class=12, size=64, seed=1)


@pytest.fixture(scope="module")
def quick(shapes: Path, confident_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    base = tmp_path_factory.mktemp("quick")
    cfg = FinetuneConfig(shapes, base / "model", model=ARCH, weights=confident_weights, input_size=SIZE,
                         device="cpu", feature_cache_dir=base / "features", allow_download=False)
    events: list[Any] = []
    threads: set[int] = set()

    def on_event(e: Any) -> None:
        events.append(e)
        threads.add(threading.get_ident())

    result = finetune(cfg, on_event=on_event)
    return QuickRun(result, events, threads, base / "model", base / "features", cfg)


def _config(run: QuickRun, out: Path, **changes: Any) -> FinetuneConfig:
    from dataclasses import replace

    return replace(run.config, output_dir=out, **changes)


@pytest.mark.slow
def test_quick_mode_learns_the_classes(quick: QuickRun) -> None:
    r = quick.result
    assert r.val_accuracy >= 0.9, r.confusion
    assert r.class_names == ["blue_squares", "checkerboard", "green_stripes", "red_circles"]
    assert sum(map(sum, r.confusion)) == len(r.val_predictions) == 32
    assert [m.support for m in r.per_class] == [8, 8, 8, 8]
    assert all(m.recall >= 0.75 and m.precision >= 0.75 for m in r.per_class)
    assert r.cache_misses == 160 and r.cache_hits == 0
    # the features came from ONNX Runtime's features graph (exported now), not from the torch fallback
    assert r.timings["features_graph"] > 0 and not any("runs on torch" in w for w in r.warnings), r.warnings
    assert 1 <= r.best_epoch <= len(r.history) and r.history[r.best_epoch - 1].val_acc == r.val_accuracy
    assert {p.path for p in r.misclassified} == {p.path for p in r.val_predictions if not p.correct}
    for t in range(4):
        for p in range(4):
            assert len(r.images_in_cell(t, p)) == r.confusion[t][p]
    json.dumps(r.to_dict())  # the report is JSON-ready

    # progress: stages in order, features per batch with an ETA, one epoch event per history entry
    stages = [e.stage for e in quick.events if isinstance(e, StageEvent)]
    assert stages == ["scan", "load", "features", "train", "evaluate", "save"]
    assert isinstance(quick.events[1], ScanEvent)
    feats = [e for e in quick.events if isinstance(e, BatchEvent) and e.stage == "features"]
    assert [e.batch for e in feats] == [1, 2, 3, 4, 5] and feats[-1].batches == 5
    assert feats[0].eta_s is not None and feats[-1].eta_s == 0
    epochs = [e for e in quick.events if isinstance(e, EpochEvent)]
    assert [e.stats for e in epochs] == r.history
    assert quick.threads == {threading.get_ident()}  # callbacks run in the thread that called finetune

    cfg = json.loads((quick.out / "config.json").read_text())
    assert cfg["architecture"] == ARCH and cfg["num_classes"] == 4
    assert cfg["label_names"] == r.class_names
    assert cfg["pretrained_cfg"]["input_size"] == [3, SIZE, SIZE]
    assert "test_input_size" not in cfg["pretrained_cfg"]
    assert cfg["squeezelens_finetune"]["mode"] == "quick"
    # the precision fidelity check's own photos: 16 of the 32 validation images, every class among them
    # the precision fidelity check's own photos: 16 of the 32 validation images, every class among them,
    # relative to the dataset folder (a shared model folder does not list the user's disk)
    listed = [Path(p) for p in cfg["squeezelens_finetune"]["fidelity_images"]]
    data_dir = Path(cfg["squeezelens_finetune"]["data_dir"])
    val = {p.path.resolve() for p in r.val_predictions}
    assert not any(p.is_absolute() for p in listed)
    assert len(listed) == 16 and {data_dir / p for p in listed} <= val
    assert {p.parent.name for p in listed} == set(r.class_names)
    from squeezelens.core.precision import model_photos

    assert sorted(model_photos(r.output_dir)) == sorted(data_dir / p for p in listed)


@pytest.mark.slow
def test_second_run_reuses_the_feature_cache(quick: QuickRun, tmp_path: Path, monkeypatch) -> None:
    seen: list[int] = []
    original = timm.models.resnet.ResNet.forward_features

    def counting(self, x):
        seen.append(int(x.shape[0]))
        return original(self, x)

    rows: list[int] = []  # images per features call, whichever engine runs it (ONNX Runtime here)
    original_rows = LazyFeatureRunner.features

    def counting_rows(self, batch):
        rows.append(len(batch))
        return original_rows(self, batch)

    monkeypatch.setattr(timm.models.resnet.ResNet, "forward_features", counting)
    monkeypatch.setattr(LazyFeatureRunner, "features", counting_rows)
    again = finetune(_config(quick, tmp_path / "again"))
    # not one backbone pass, not even the features graph's export: every feature came from the cache
    assert seen == [] and rows == []
    assert (again.cache_hits, again.cache_misses) == (160, 0)
    assert again.confusion == quick.result.confusion
    assert [(h.train_loss, h.val_loss) for h in again.history] == [(h.train_loss, h.val_loss)
                                                                    for h in quick.result.history]

    # an edited file is extracted again, and only that one
    victim = quick.config.data_dir / "red_circles" / "red_circles_000.png"  # type: ignore[operator]
    backup = victim.read_bytes()
    try:
        Image.new("RGB", (64, 64), (250, 0, 0)).save(victim)
        third = finetune(_config(quick, tmp_path / "third"))
    finally:
        victim.write_bytes(backup)
    assert rows == [1]
    assert (third.cache_hits, third.cache_misses) == (159, 1)


@pytest.mark.slow
def test_saved_model_gives_identical_predictions_in_squeezelens_and_timm(quick: QuickRun) -> None:
    files = [p.path for p in quick.result.val_predictions]
    clf = Classifier.load(str(quick.out), device="cpu")
    assert clf.labels == quick.result.class_names and not clf.untrained
    ours = clf.classify(files, top_k=4)

    model = timm.create_model(f"local-dir:{quick.out}", pretrained=True).eval()
    dcfg = timm.data.resolve_data_config({}, model=model)
    assert dcfg["input_size"] == (3, SIZE, SIZE)  # the training size travels with the model
    transform = timm.data.create_transform(**dcfg)
    with torch.no_grad():
        batch = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
        probs = model(batch).softmax(-1)
    for r, p, v in zip(ours, probs, quick.result.val_predictions):
        assert r.ok
        assert r.top[0].index == int(p.argmax()) == v.pred_index
        assert [t.prob for t in r.top] == pytest.approx(sorted(p.tolist(), reverse=True), abs=1e-5)
        assert r.top[0].prob == pytest.approx(v.confidence, abs=1e-4)  # as measured during training


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["features", "train"])
def test_cancel_keeps_the_previous_model(quick: QuickRun, tmp_path: Path, stage: str) -> None:
    out = tmp_path / "model"
    shutil.copytree(quick.out, out)
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}  # versions/ too
    cancel = threading.Event()

    def on_event(e: Any) -> None:
        if isinstance(e, BatchEvent) and e.stage == stage:
            cancel.set()

    # "features": a fresh cache, so extraction runs and is cancelled after its first batch
    cache = tmp_path / "fresh" if stage == "features" else quick.cache
    with pytest.raises(FinetuneCancelled, match="not changed") as info:
        finetune(_config(quick, out, feature_cache_dir=cache, epochs=30), on_event=on_event, cancel=cancel)
    assert info.value.checkpoint is None  # quick mode: nothing to resume but the cache
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model", *(["fresh"] if stage == "features" else [])])


def test_cancel_during_the_folder_scan_stops_before_the_model_loads(small_shapes: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()  # a scan of a huge folder stops at its next file, not after walking everything
    stages: list[str] = []
    with pytest.raises(FinetuneCancelled, match="not changed"):
        finetune(FinetuneConfig(small_shapes, tmp_path / "m", model=ARCH, device="cpu", allow_download=False),
                 on_event=lambda e: stages.append(getattr(e, "stage", type(e).__name__)), cancel=cancel)
    assert stages == ["scan"]  # no ScanEvent, no "load" stage
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_unreadable_files_are_skipped_and_reported(small_shapes: Path, confident_weights: Path,
                                                   tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(small_shapes, data)
    (data / "red_circles" / "fake.jpg").write_text("text pretending to be a JPEG")
    (data / "blue_squares" / "notes.txt").write_text("not a picture")
    jpeg = data / "checkerboard" / "cut.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])  # the header reads fine; decoding fails
    result = finetune(FinetuneConfig(data, tmp_path / "m", model=ARCH, weights=confident_weights,
                                     input_size=SIZE, device="cpu", epochs=3, allow_download=False))
    reasons = {s.path.name: s.reason for s in result.skipped}
    assert set(reasons) == {"fake.jpg", "notes.txt", "cut.jpg"}
    assert "truncated" in reasons["cut.jpg"] or "broken" in reasons["cut.jpg"]
    used = {p.path for p in result.val_predictions} | {s.path for s in result.scan.train}
    assert not used & {data / "red_circles" / "fake.jpg", data / "blue_squares" / "notes.txt"}
    assert jpeg not in {p.path for p in result.val_predictions}
    assert any("could not be decoded" in w for w in result.warnings)
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_single_class_folder_is_a_clear_error(tmp_path: Path) -> None:
    for i in range(8):
        Image.new("RGB", (16, 16), (i * 20, 0, 0)).save((tmp_path / "only").mkdir(exist_ok=True) or
                                                        tmp_path / "only" / f"{i}.png")
    with pytest.raises(DatasetError, match="at least 2 classes"):
        finetune(FinetuneConfig(tmp_path, tmp_path.parent / f"{tmp_path.name}-out", device="cpu",
                                allow_download=False))
    assert not (tmp_path.parent / f"{tmp_path.name}-out").exists()


def test_output_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    keep = tmp_path / "photos"
    keep.mkdir()
    (keep / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(SqueezeLensError, match="did not write"):
        finetune(FinetuneConfig(tmp_path / "data", keep, device="cpu"))
    with pytest.raises(SqueezeLensError, match="inside the dataset folder"):
        finetune(FinetuneConfig(tmp_path, tmp_path / "model", device="cpu"))
    assert (keep / "holiday.jpg").read_bytes() == b"precious"


def spy_on_the_optimizer(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """Record each mode's calls of training.create_optimizer_and_scheduler: (what it optimises, keywords)."""
    from squeezelens.core.finetune import head, last_stage, training

    calls: list[tuple[Any, dict[str, Any]]] = []

    def spy(model_or_params: Any, **kw: Any) -> Any:
        calls.append((model_or_params, kw))
        return training.create_optimizer_and_scheduler(model_or_params, **kw)

    monkeypatch.setattr(head, "create_optimizer_and_scheduler", spy)
    monkeypatch.setattr(last_stage, "create_optimizer_and_scheduler", spy)
    return calls


@pytest.mark.slow
def test_quick_mode_trains_its_head_with_the_shared_optimizer(small_shapes: Path, confident_weights: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = spy_on_the_optimizer(monkeypatch)
    result = finetune(FinetuneConfig(small_shapes, tmp_path / "m", model=ARCH, weights=confident_weights,
                                     input_size=SIZE, device="cpu", epochs=2, batch_size=16, use_cache=False,
                                     allow_download=False))
    assert len(calls) == 1
    head, kw = calls[0]
    assert isinstance(head, torch.nn.Linear) and head.out_features == 4
    assert kw == {"lr": 1e-3, "weight_decay": 1e-4, "total_updates": 2 * 3}  # 40 training vectors, batches of 16
    assert [h.lr for h in result.history][-1] == pytest.approx(1e-5)  # the cosine ends at lr / 100


@pytest.mark.slow
def test_deep_mode_one_short_epoch_lowers_the_loss(small_shapes: Path, confident_weights: Path,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = spy_on_the_optimizer(monkeypatch)
    losses: list[float] = []
    checkpoints: list[bool] = []
    cfg = FinetuneConfig(small_shapes, tmp_path / "deep", model=ARCH, weights=confident_weights, mode="deep",
                         epochs=1, batch_size=8, input_size=SIZE, device="cpu", allow_download=False)

    def on_event(e: Any) -> None:
        if isinstance(e, BatchEvent) and e.stage == "train":
            losses.append(e.loss)  # type: ignore[arg-type]
        if isinstance(e, EpochEvent):
            checkpoints.append(checkpoint_path(cfg).is_file())

    result = finetune(cfg, on_event=on_event)
    assert len(losses) == 5  # 40 training images, batches of 8
    assert len(calls) == 1 and calls[0][1] == {"lr": 1e-3, "weight_decay": 0.05, "total_updates": 5}
    assert isinstance(calls[0][0], timm.models.ResNet)  # the model: timm optimises what requires grad
    assert sum(losses[-2:]) / 2 < losses[0], losses
    assert checkpoints == [True]  # a checkpoint per epoch ...
    assert not checkpoint_path(cfg).exists()  # ... removed once the model is saved
    assert len(result.history) == 1 and result.mode == "deep"
    clf = Classifier.load(str(tmp_path / "deep"), device="cpu")
    assert clf.labels == result.class_names


@pytest.mark.slow
def test_deep_mode_is_seeded_by_the_config_not_by_what_ran_before(small_shapes: Path, confident_weights: Path,
                                                                  tmp_path: Path) -> None:
    """The head's initialisation and the augmentation follow ``seed``, not the global generators."""
    cfg = FinetuneConfig(small_shapes, tmp_path / "deep", model=ARCH, weights=confident_weights, mode="deep",
                         epochs=1, batch_size=8, input_size=SIZE, device="cpu", allow_download=False)
    first_losses = []
    for caller_seed in (1, 2):
        torch.manual_seed(caller_seed)
        random.seed(caller_seed)  # timm's random resized crop draws from Python's random
        cancel = threading.Event()
        losses: list[float] = []

        def stop_after_one_batch(e: Any, losses: list[float] = losses, cancel: threading.Event = cancel) -> None:
            if isinstance(e, BatchEvent) and e.stage == "train":
                losses.append(e.loss)  # type: ignore[arg-type]
                cancel.set()

        with pytest.raises(FinetuneCancelled):
            finetune(cfg, on_event=stop_after_one_batch, cancel=cancel)
        first_losses.append(losses[0])
    assert first_losses[0] == first_losses[1]


@pytest.mark.slow
def test_deep_mode_cancel_and_resume(small_shapes: Path, confident_weights: Path, tmp_path: Path) -> None:
    cfg = FinetuneConfig(small_shapes, tmp_path / "deep", model=ARCH, weights=confident_weights, mode="deep",
                         epochs=2, batch_size=8, input_size=SIZE, device="cpu", allow_download=False)
    cancel = threading.Event()
    first: list[Any] = []

    def stop_in_epoch_2(e: Any) -> None:
        first.append(e)
        if isinstance(e, BatchEvent) and e.epoch == 2:
            cancel.set()

    with pytest.raises(FinetuneCancelled) as info:
        finetune(cfg, on_event=stop_in_epoch_2, cancel=cancel)
    assert info.value.epochs_done == 1 and info.value.checkpoint == checkpoint_path(cfg)
    assert info.value.checkpoint.is_file()
    assert not cfg.output_dir.exists()  # type: ignore[union-attr]
    epoch1 = next(e.stats for e in first if isinstance(e, EpochEvent))

    from dataclasses import replace

    second: list[Any] = []
    result = finetune(replace(cfg, resume=True), on_event=second.append)
    assert any(isinstance(e, StageEvent) and "resuming after epoch 1" in e.message for e in second)
    assert {e.epoch for e in second if isinstance(e, BatchEvent) and e.stage == "train"} == {2}
    assert [h.epoch for h in result.history] == [1, 2] and result.history[0] == epoch1
    assert (tmp_path / "deep" / "model.safetensors").is_file()
    assert not checkpoint_path(cfg).exists()


def test_an_untrained_base_is_announced_before_any_training(small_shapes: Path, tmp_path: Path) -> None:
    """Issue 14: the GUI says "no pretrained weights" before training, so the event must come before it,
    marked with its kind (before: a plain WarningEvent, which the window could only list after the run)."""
    from squeezelens.core.finetune import UNTRAINED_BASE, WarningEvent

    events: list[Any] = []
    finetune(FinetuneConfig(small_shapes, tmp_path / "m", model=ARCH, input_size=32, epochs=1,
                            device="cpu", feature_cache_dir=tmp_path / "features", allow_download=False),
             on_event=events.append)
    untrained = [i for i, e in enumerate(events) if isinstance(e, WarningEvent) and e.kind == UNTRAINED_BASE]
    assert len(untrained) == 1 and "no pretrained weights" in events[untrained[0]].message
    first_work = next(i for i, e in enumerate(events) if isinstance(e, BatchEvent))
    assert untrained[0] < first_work
    assert not [e for e in events if isinstance(e, WarningEvent) and e.kind and e.kind != UNTRAINED_BASE]
