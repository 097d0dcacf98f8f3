"""Dataset scan and split (no torch): classes, counts, unreadable files, warnings, clear errors."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from squeezelens.core.dataset_scan import DatasetError, scan_dataset
from squeezelens.core.finetune.metrics import accuracy, class_metrics, confusion_matrix


def _png(path: Path, colour: tuple[int, int, int] = (200, 10, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)
    return path


def test_class_folders_split_stratified_and_repeatable(shapes_module: ModuleType, tmp_path: Path) -> None:
    root = shapes_module.make_dataset(tmp_path / "d", per_class=10, size=24)
    (root / "red_circles" / "extra").mkdir()
    _png(root / "red_circles" / "extra" / "nested.png")  # images below a class folder count for it
    scan = scan_dataset(root)
    assert scan.layout == "class_folders"
    assert scan.class_names == ["blue_squares", "checkerboard", "green_stripes", "red_circles"]
    counts = {c.name: (c.train, c.val) for c in scan.counts()}
    assert counts == {"blue_squares": (8, 2), "checkerboard": (8, 2), "green_stripes": (8, 2), "red_circles": (9, 2)}
    assert not {s.path for s in scan.train} & {s.path for s in scan.val}
    assert all(s.path.parent.name == scan.class_names[s.label] or s.path.parent.name == "extra" for s in scan.train)
    assert scan.skipped == [] and scan.warnings == []

    again = scan_dataset(root)
    assert again.val == scan.val and again.train == scan.train  # fixed seed: same split every time
    other = scan_dataset(root, seed=1)
    assert {s.path for s in other.val} != {s.path for s in scan.val}
    assert [c.val for c in scan_dataset(root, val_split=0.5).counts()] == [5, 5, 5, 6]


def test_small_classes_still_get_one_validation_image(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "few" / f"{i}.png")
    for i in range(20):
        _png(tmp_path / "many" / f"{i}.png", (0, 0, 200))
    _png(tmp_path / "single" / "only.png", (0, 200, 0))
    scan = scan_dataset(tmp_path, val_split=0.1)
    counts = {c.name: (c.train, c.val) for c in scan.counts()}
    assert counts == {"few": (2, 1), "many": (18, 2), "single": (1, 0)}
    text = " ".join(scan.warnings)
    assert "fewer than 5 images in: few (3), single (1)" in text
    assert "'single' has a single image" in text


def test_unreadable_files_are_listed_and_skipped(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        for i in range(3):
            _png(tmp_path / cls / f"{i}.png")
    (tmp_path / "a" / "notes.txt").write_text("not a picture")
    (tmp_path / "a" / "fake.jpg").write_text("this is text, not a JPEG")
    (tmp_path / "b" / "empty.png").write_bytes(b"")
    good = (tmp_path / "b" / "0.png").read_bytes()
    (tmp_path / "b" / "cut.png").write_bytes(good[: len(good) // 2])
    huge = tmp_path / "b" / "huge.png"
    Image.new("L", (70_000, 1)).save(huge)  # header says 70000 px wide: refused before decoding
    (tmp_path / "a" / ".hidden.png").write_text("hidden files are ignored")
    _png(tmp_path / "loose.png")  # not in a class folder

    scan = scan_dataset(tmp_path)
    reasons = {p.path.name: p.reason for p in scan.skipped}
    assert set(reasons) == {"notes.txt", "fake.jpg", "empty.png", "cut.png", "huge.png"}
    assert reasons["empty.png"] == "empty file"
    assert "not an image" in reasons["fake.jpg"]
    assert "too large" in reasons["huge.png"]
    assert "truncated" in reasons["cut.png"] or "broken" in reasons["cut.png"]
    assert "not an image file type" in reasons["notes.txt"]
    assert sorted(c.total for c in scan.counts()) == [3, 3]
    assert any("in no class folder" in w for w in scan.warnings)


def test_fewer_than_two_classes_is_a_clear_error(tmp_path: Path) -> None:
    for i in range(6):
        _png(tmp_path / "cats" / f"{i}.png")
    (tmp_path / "dogs").mkdir()  # a class folder without readable images does not count
    (tmp_path / "dogs" / "broken.jpg").write_text("no")
    with pytest.raises(DatasetError, match=r"found 1 class folder with images \('cats'\).*at least 2 classes"):
        scan_dataset(tmp_path)
    with pytest.raises(DatasetError, match="found no class folders"):
        scan_dataset(tmp_path / "cats")
    with pytest.raises(DatasetError, match="folder not found"):
        scan_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="between 0 and 1"):
        scan_dataset(tmp_path, val_split=1.0)


def test_train_and_val_folders_are_used_as_given(tmp_path: Path) -> None:
    for cls in ("x", "y"):
        for i in range(6):
            _png(tmp_path / "train" / cls / f"{i}.png")
    _png(tmp_path / "val" / "x" / "v0.png")
    _png(tmp_path / "val" / "x" / "v1.png")
    _png(tmp_path / "val" / "zebra" / "z.png")  # not a training class
    scan = scan_dataset(tmp_path)
    assert scan.layout == "train_val" and scan.val_split is None
    assert scan.class_names == ["x", "y"]
    assert [(c.train, c.val) for c in scan.counts()] == [(6, 2), (6, 0)]
    assert [s.path.name for s in scan.val] == ["v0.png", "v1.png"]
    assert [s.path.name for s in scan.skipped] == ["z.png"]
    assert any("zebra is not a class in train/" in w for w in scan.warnings)
    assert any("no validation images for: y" in w for w in scan.warnings)


def test_confusion_matrix_precision_recall() -> None:
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = confusion_matrix(y_true, y_pred, 4)
    assert cm == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert accuracy(cm) == pytest.approx(4 / 6)
    m = class_metrics(cm, ["a", "b", "c", "d"])
    assert (m[0].precision, m[0].recall) == (1.0, pytest.approx(2 / 3))
    assert (m[1].precision, m[1].recall) == (0.5, 0.5)
    assert (m[2].precision, m[2].recall, m[2].support, m[2].predicted) == (0.5, 1.0, 1, 2)
    assert (m[3].precision, m[3].recall, m[3].f1) == (0.0, 0.0, 0.0)  # no images, never predicted
    assert m[1].f1 == pytest.approx(0.5)
    with pytest.raises(ValueError):
        confusion_matrix([0], [0, 1], 2)


def test_shapes_are_distinct_images(shapes_module: ModuleType) -> None:
    rng = np.random.default_rng(0)
    a = np.asarray(shapes_module.make_image("red_circles", rng, 32), np.float32)
    b = np.asarray(shapes_module.make_image("red_circles", rng, 32), np.float32)
    assert a.shape == (32, 32, 3) and np.abs(a - b).mean() > 1  # random positions, sizes and noise


def test_a_damaged_feature_cache_file_is_started_again(tmp_path: Path) -> None:
    from squeezelens.core.feature_cache import FeatureCache

    (tmp_path / "k.sqlite").write_bytes(b"this is not a database" * 100)
    with FeatureCache("k", tmp_path) as cache:
        assert len(cache) == 0
        cache.put_many({"a|1|2": np.arange(4, dtype=np.float32)})
    with FeatureCache("k", tmp_path) as cache:
        assert cache.get_many(["a|1|2", "b|1|2"])["a|1|2"].tolist() == [0.0, 1.0, 2.0, 3.0]
