"""Review suspicious labels: flipped labels are found, moves and trash never lose a file, retrain sees moves."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from squeezelens import cli
from squeezelens.core.errors import UsageError
from squeezelens.core.finetune import FinetuneConfig, finetune
from squeezelens.core.review import (
    TRASH_DIR,
    confident_learning,
    move_to_class,
    move_to_trash,
    restore_from_trash,
    review_dataset,
    stratified_folds,
)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix == ".png")


def test_confident_learning_flags_the_odd_one() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9],  # the third is labelled 0 but looks like 1
                      [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]])
    flagged, t = confident_learning(probs, labels)
    assert flagged.tolist() == [False, False, True, False, False, False]
    assert t == pytest.approx([0.6, 0.8])


def test_folds_are_stratified() -> None:
    labels = np.array([0] * 10 + [1] * 5)
    folds = stratified_folds(labels, 5, seed=1)
    for f in range(5):
        assert (labels[folds == f] == 0).sum() == 2 and (labels[folds == f] == 1).sum() == 1


def test_moves_never_overwrite_and_trash_is_restorable(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"from a")
    (tmp_path / "b" / "x.png").write_bytes(b"already in b")
    moved = move_to_class(tmp_path / "a" / "x.png", "b")
    assert moved == tmp_path / "b" / "x (2).png" and moved.read_bytes() == b"from a"
    assert (tmp_path / "b" / "x.png").read_bytes() == b"already in b"
    with pytest.raises(UsageError):
        move_to_class(moved, "b")
    with pytest.raises(UsageError):
        move_to_class(moved, "../elsewhere")
    trashed = move_to_trash(tmp_path / "b" / "x.png", tmp_path)
    assert trashed == tmp_path / TRASH_DIR / "b" / "x.png" and not (tmp_path / "b" / "x.png").exists()
    back = restore_from_trash(trashed, tmp_path)
    assert back == tmp_path / "b" / "x.png" and back.read_bytes() == b"already in b"
    assert json.loads((tmp_path / TRASH_DIR / "index.json").read_text()) == {}


@pytest.mark.slow
def test_flipped_labels_are_found_and_moves_reach_the_next_retrain(
        shapes_module: ModuleType, tiny_backbone: Path, tmp_path: Path, capsys: Any) -> None:
    data = shapes_module.make_dataset(tmp_path / "data", per_class=40, size=64, seed=7)
    classes = sorted(p.name for p in data.iterdir())
    rng = np.random.default_rng(0)
    files = _files(data)
    n_flip = round(0.05 * len(files))  # 8 of 160
    flipped = {}
    for i in rng.choice(len(files), n_flip, replace=False):
        src = files[i]
        wrong = rng.choice([c for c in classes if c != src.parent.name])
        flipped[move_to_class(src, str(wrong))] = src.parent.name
    all_before = {p.name for p in _files(data)}

    cache = tmp_path / "features"
    result = review_dataset(data, str(tiny_backbone), device="cpu", input_size=64, feature_cache_dir=cache,
                            allow_download=False)
    top = {s.path for s in result.suspects[: 2 * n_flip]}
    found = sum(p in top for p in flipped)
    assert found >= 0.8 * n_flip, (found, n_flip, [(s.path.name, s.score) for s in result.suspects[:20]])
    suggested = {s.path: s.suggested_label for s in result.suspects}
    assert sum(suggested[p] == true for p, true in flipped.items()) >= 0.8 * n_flip  # the right class, mostly

    # the CLI prints the same ranking (features now all from the cache)
    assert cli.main(["review", str(data), "--model", str(tiny_backbone), "--input-size",
                     "64", "--device", "cpu", "--offline", "--json", "--top", "5"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["images"] == 160 and len(listed["suspects"]) == 5

    # act on the queue: move one back to its true class, trash another; then retrain
    (fix, true_class), (junk, _) = list(flipped.items())[:2]
    fixed = move_to_class(fix, true_class)
    trashed = move_to_trash(junk, data)
    retrain = finetune(FinetuneConfig(data, tmp_path / "model", model=str(tiny_backbone),
                                      input_size=64, device="cpu", feature_cache_dir=cache, allow_download=False,
                                      epochs=3))
    samples = {s.path: retrain.class_names[s.label] for s in retrain.scan.train + retrain.scan.val}
    assert samples[fixed] == true_class
    assert junk not in samples and trashed not in samples  # the trash is not part of the dataset
    assert len(samples) == 159
    # nothing was deleted: every file is somewhere in the dataset folder, the trash included
    assert {p.name for p in _files(data)} == all_before
