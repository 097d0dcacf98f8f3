"""Finetune split folders as timm names them, and "n/a" for a class without validation images (issue 13)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from squeezelens.core import report
from squeezelens.core.dataset_scan import scan_dataset


def fill(folder: Path, classes: dict[str, int]) -> None:
    for name, n in classes.items():
        (folder / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(folder / name / f"{i}.png")


@pytest.mark.parametrize(("train", "val"), [("train", "test"), ("training", "validation"), ("train", "valid"),
                                            ("train", "eval"), ("training", "evaluation")])
def test_timm_split_names(tmp_path: Path, train: str, val: str) -> None:
    fill(tmp_path / train, {"cat": 3, "dog": 3})
    fill(tmp_path / val, {"cat": 1, "dog": 1})
    scan = scan_dataset(tmp_path)
    assert scan.class_names == ["cat", "dog"]  # not ["test", "train"]
    assert scan.layout == "train_val" and scan.splits == (train, val)
    assert (len(scan.train), len(scan.val)) == (6, 2)
    assert f"({train}/ for training, {val}/ held out for validation)" in scan.summary().splitlines()[0]


def test_validation_folder_preferred_over_test(tmp_path: Path) -> None:
    fill(tmp_path / "train", {"cat": 3, "dog": 3})
    fill(tmp_path / "val", {"cat": 1, "dog": 1})
    fill(tmp_path / "test", {"cat": 2, "dog": 2})
    assert scan_dataset(tmp_path).splits == ("train", "val")


def test_class_without_validation_images_reports_na() -> None:
    result = SimpleNamespace(
        output_dir=Path("m"), mode="quick", base_model="b", class_names=["cat", "dog"], untrained_base=False,
        input_size=(3, 224, 224), best_epoch=1, stopped_early=False,
        history=[SimpleNamespace(train_loss=0.5, val_loss=0.5)], confusion=[[3, 0], [0, 0]], val_accuracy=1.0,
        cache_hits=0, cache_misses=0, misclassified=[], skipped=[], warnings=[],
        version=None, previous_version=None, previous_val_accuracy=None,
        per_class=[SimpleNamespace(name="cat", precision=1.0, recall=1.0, support=3),
                   SimpleNamespace(name="dog", precision=0.0, recall=0.0, support=0)],
    )
    lines = report.format_summary(result).splitlines()
    assert "cat       100.0%  100.0%           3" in lines
    assert "dog          n/a     n/a           0" in lines
