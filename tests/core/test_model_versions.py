"""Model versions: successive finetunes into one folder keep every version; rollback; cancel/failure."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import timm

from squeezelens import Classifier, cli
from squeezelens.core.errors import UsageError
from squeezelens.core.finetune import BatchEvent, FinetuneCancelled, FinetuneConfig, finetune
from squeezelens.core.model_versions import (
    format_versions,
    make_current,
    read_index,
    record_current,
    rollback,
    save_version,
    version_dir,
)


def _tops(model_dir: Path, files: list[Path]) -> list[list[tuple[int, float]]]:
    with Classifier.load(str(model_dir), device="cpu", backend="torch") as clf:
        return [[(t.index, t.prob) for t in p.top] for p in clf.classify(files, top_k=3)]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_three_finetunes_rollback_cancel_and_failure(shapes_module: ModuleType, tiny_backbone: Path,
                                                     tmp_path: Path, capsys: Any) -> None:
    data = shapes_module.make_dataset(tmp_path / "data", per_class=10, size=48, seed=3,
                                      classes=("checkerboard", "green_stripes", "red_circles"))
    out = tmp_path / "model"
    cfg = FinetuneConfig(data, out, model=str(tiny_backbone), input_size=48, device="cpu",
                         feature_cache_dir=tmp_path / "features", allow_download=False, epochs=5)
    files = sorted((data / "red_circles").iterdir())[:4]

    first = finetune(cfg)
    assert (first.version, first.previous_version) == (1, None)
    v1_tops = _tops(out, files)
    second = finetune(replace(cfg, seed=1))
    assert (second.version, second.previous_version) == (2, 1)
    assert second.previous_val_accuracy == pytest.approx(first.val_accuracy)
    third = finetune(replace(cfg, seed=2, model=str(version_dir(out, 1)), weights=None))  # from a chosen version
    assert (third.version, third.previous_version) == (3, 2)

    index = read_index(out)
    assert index.current == 3 and [v.number for v in index.versions] == [1, 2, 3]
    assert [v.val_accuracy for v in index.versions] == pytest.approx(
        [first.val_accuracy, second.val_accuracy, third.val_accuracy])
    assert index.versions[2].parent == 1 and index.versions[0].parent is None
    v1 = index.versions[0]
    assert v1.base_model == first.base_model and v1.mode == "quick" and v1.dataset["classes"] == 3
    assert v1.dataset["train_images"] == len(first.scan.train) and v1.unknown and "threshold" in v1.unknown
    table = format_versions(index)
    assert table.count("\n") >= 4 and f"{first.val_accuracy:.1%}" in table
    # the root and every version load in plain timm
    timm.create_model(f"local-dir:{out}", pretrained=True)
    timm.create_model(f"local-dir:{version_dir(out, 2)}", pretrained=True)

    # rollback through the CLI: version 1 current, predictions identical to before
    assert cli.main(["versions", str(out), "--rollback", "1"]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[1].startswith("*  v1")
    assert _tops(out, files) == v1_tops
    assert (out / "model.safetensors").read_bytes() == (version_dir(out, 1) / "model.safetensors").read_bytes()
    assert read_index(out).current == 1 and len(read_index(out).versions) == 3
    assert cli.main(["versions", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["current"] == 1

    # a staged run (the GUI's): the new version waits in versions/, v1 stays current until chosen
    staged = finetune(replace(cfg, seed=4), stage_only=True)
    assert staged.staged and (staged.version, staged.previous_version) == (4, 1)
    assert read_index(out).current == 1 and _tops(out, files) == v1_tops
    assert read_index(out).get(4).val_accuracy == pytest.approx(staged.val_accuracy)
    make_current(out, 4)
    assert read_index(out).current == 4
    assert (out / "model.safetensors").read_bytes() == (version_dir(out, 4) / "model.safetensors").read_bytes()

    # a cancelled run and a failed run, staged or not, change no version (nor anything else in the folder)
    before = _snapshot(out)
    cancel = threading.Event()

    def on_event(e: Any) -> None:
        if isinstance(e, BatchEvent) and e.stage == "train":
            cancel.set()

    with pytest.raises(FinetuneCancelled):
        finetune(replace(cfg, seed=5), on_event=on_event, cancel=cancel)
    assert _snapshot(out) == before
    with pytest.raises(FinetuneCancelled):  # cancel is still set
        finetune(replace(cfg, seed=6), cancel=cancel, stage_only=True)
    assert _snapshot(out) == before
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception):  # noqa: B017 - any failure: no dataset there
        finetune(replace(cfg, data_dir=tmp_path / "empty"))
    assert _snapshot(out) == before
    with pytest.raises(Exception):  # noqa: B017
        finetune(replace(cfg, data_dir=tmp_path / "empty"), stage_only=True)
    assert _snapshot(out) == before

    with pytest.raises(UsageError, match="no version 9"):
        rollback(out, 9)
    assert cli.main(["versions", str(out), "--rollback", "9"]) == 2


def test_a_folder_saved_before_versions_is_kept_as_v1(tiny_dir: Path) -> None:
    assert read_index(tiny_dir).versions == []
    v = record_current(tiny_dir)
    assert v.number == 1 and read_index(tiny_dir).current == 1
    assert record_current(tiny_dir).number == 1  # same weights: not copied twice
    assert (version_dir(tiny_dir, 1) / "config.json").read_bytes() == (tiny_dir / "config.json").read_bytes()


def test_versions_of_a_non_model_folder_is_usage_error(tmp_path: Path, capsys: Any) -> None:
    assert cli.main(["versions", str(tmp_path)]) == 2
    assert "not a model folder" in capsys.readouterr().err


def test_staged_save_keeps_the_current_version_until_chosen(tmp_path: Path) -> None:
    import torch

    folder = tmp_path / "m"
    torch.manual_seed(0)
    first = timm.create_model("test_resnet", num_classes=3)
    assert save_version(first, folder, ["x", "y", "z"], stage_only=True) == (None, 1)  # nothing to keep: current
    before = _snapshot(folder)
    torch.manual_seed(1)
    second = timm.create_model("test_resnet", num_classes=3)
    assert save_version(second, folder, ["x", "y", "z"], stage_only=True) == (1, 2)
    index = read_index(folder)
    assert index.current == 1 and [v.number for v in index.versions] == [1, 2]
    after = _snapshot(folder)
    assert {k: v for k, v in after.items() if not k.startswith("versions")} == {
        k: v for k, v in before.items() if not k.startswith("versions")}  # the root is untouched
    timm.create_model(f"local-dir:{version_dir(folder, 2)}", pretrained=True)
    assert make_current(folder, 2).number == 2
    assert read_index(folder).current == 2
    assert (folder / "model.safetensors").read_bytes() == (version_dir(folder, 2) / "model.safetensors").read_bytes()
