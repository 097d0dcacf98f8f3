"""scan_dataset's bounds for a preview: a cancel event and a most number of files and folders visited."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from squeezelens.core.dataset_scan import DatasetError, DatasetTooLarge, ScanCancelled, scan_dataset


def _dataset(root: Path, classes: tuple[str, ...] = ("cats", "dogs"), per_class: int = 3) -> Path:
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (16, 16), (40 * i, 10, 10)).save(root / name / f"{i}.png")
    return root


class _CancelAfter(threading.Event):
    """An event that sets itself on its ``n``-th check: a cancel arriving in the middle of a scan."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.checks, self.n = 0, n

    def is_set(self) -> bool:
        self.checks += 1
        if self.checks >= self.n:
            self.set()
        return super().is_set()


def test_a_bound_at_the_folder_size_changes_nothing_one_less_stops(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d")  # 2 class folders + 6 images = 8 entries
    full = scan_dataset(root)
    bounded = scan_dataset(root, max_entries=8, cancel=threading.Event())
    assert (bounded.class_names, bounded.train, bounded.val) == (full.class_names, full.train, full.val)
    with pytest.raises(DatasetTooLarge, match="more than 7 files and folders; is this the dataset folder"):
        scan_dataset(root, max_entries=7)
    assert issubclass(DatasetTooLarge, DatasetError)  # callers that show a DatasetError show this too


def test_nested_folders_count_and_the_train_val_layout_is_bounded_too(tmp_path: Path) -> None:
    deep = tmp_path / "tree"
    for i in range(30):  # folders without a single file (a home folder's caches) still count
        (deep / "a" / f"sub{i}").mkdir(parents=True)
    with pytest.raises(DatasetTooLarge):
        scan_dataset(deep, max_entries=20)
    tv = tmp_path / "tv"
    _dataset(tv / "train")
    _dataset(tv / "val", per_class=1)
    assert scan_dataset(tv, max_entries=12).layout == "train_val"  # 8 in train/, 4 in val/
    with pytest.raises(DatasetTooLarge):
        scan_dataset(tv, max_entries=11)


def test_cancel_stops_the_scan_before_and_during(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", per_class=20)
    done = threading.Event()
    done.set()
    with pytest.raises(ScanCancelled):
        scan_dataset(root, cancel=done)
    late = _CancelAfter(10)  # 10 of the 42 entries in
    with pytest.raises(ScanCancelled):
        scan_dataset(root, cancel=late)
    assert late.checks == 10  # it stopped at once, not at the end


def test_scan_errors_keep_the_folder_apart_from_the_reason(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d")
    with pytest.raises(DatasetTooLarge) as info:
        scan_dataset(root, max_entries=7)
    assert info.value.path == str(root) and str(root) not in info.value.reason
    assert str(info.value).startswith(f"{root}: more than 7 files and folders")
    with pytest.raises(DatasetError) as missing:
        scan_dataset(tmp_path / "nowhere")
    assert (missing.value.reason, missing.value.path) == ("folder not found", str(tmp_path / "nowhere"))
