"""Finding a finetuning dataset in a folder: classes, images, unreadable files, a validation split.

Two layouts (timm's ImageFolder form):

- ``DATA_DIR/<class>/**/image`` — one subfolder per class; a stratified validation split is drawn.
- ``DATA_DIR/train/<class>/...`` and ``DATA_DIR/val/<class>/...`` — as given. The split folder names
  are timm's (``timm.data.readers.reader_image_folder``'s ``_TRAIN_SYNONYM``/``_EVAL_SYNONYM``):
  ``train`` or ``training``; ``val``, ``validation``, ``valid``, ``eval`` or ``evaluation``; and
  ``test`` as the held-out split when there is no validation folder (CIFAR-style downloads). The
  scan says which folders it used (:attr:`DatasetScan.splits`).

The scan reads each file's header only, with the image loader's own check
(:func:`~squeezelens.core.images.check_image_header`: format allow-list, size guard, PNG checksums)
and the loader's reasons, so a large folder scans in seconds; a file that still fails to decode
later is reported by the finetuner.
Nothing here imports torch.
"""

from __future__ import annotations

import os
import random
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import DatasetError, DatasetTooLarge, ImageLoadError, ScanCancelled
from .image_formats import missing_format_hint
from .images import check_image_header, image_extensions

#: A class with fewer images than this gets a warning (the head will barely learn it).
FEW_IMAGES = 5
DEFAULT_VAL_SPLIT = 0.2
DEFAULT_SEED = 0
#: Split folder names, in the order they are looked for (timm's synonyms; ``test`` last: held out).
TRAIN_FOLDER_NAMES = ("train", "training")
VAL_FOLDER_NAMES = ("val", "validation", "valid", "eval", "evaluation", "test")


@dataclass(frozen=True)
class Sample:
    """One image and its class index."""

    path: Path
    label: int


@dataclass(frozen=True)
class SkippedFile:
    """A file left out, and why (unreadable, not an image, class unknown to train/)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ClassCount:
    """Images of one class in each split."""

    name: str
    train: int
    val: int

    @property
    def total(self) -> int:
        return self.train + self.val


@dataclass
class DatasetScan:
    """What :func:`scan_dataset` found: classes (sorted), train and validation samples, what was skipped."""

    root: Path
    layout: Literal["class_folders", "train_val"]
    class_names: list[str]
    train: list[Sample]
    val: list[Sample]
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    val_split: float | None = None  # the fraction drawn, or None when val/ was given
    seed: int = DEFAULT_SEED
    splits: tuple[str, str] | None = None  # (training folder, validation folder) names when given as folders

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> list[ClassCount]:
        """Per class: images in train and in validation."""
        tr = [0] * self.num_classes
        va = [0] * self.num_classes
        for s in self.train:
            tr[s.label] += 1
        for s in self.val:
            va[s.label] += 1
        return [ClassCount(n, t, v) for n, t, v in zip(self.class_names, tr, va)]

    def summary(self) -> str:
        """A few lines for a person: classes with counts, skipped files, warnings."""
        lines = [
            f"{self.root}: {self.num_classes} classes, {len(self.train)} training and "
            f"{len(self.val)} validation images"
            + (f" ({self.val_split:.0%} split, seed {self.seed})" if self.val_split is not None
               else f" ({self.splits[0] if self.splits else 'train'}/ for training, "
                    f"{self.splits[1] if self.splits else 'val'}/ held out for validation)")
        ]
        for c in self.counts():
            lines.append(f"  {c.name}: {c.train} train, {c.val} val")
        if self.skipped:
            lines.append(f"  {len(self.skipped)} file(s) skipped")
        return "\n".join(lines)


def scan_dataset(
    root: str | os.PathLike,
    val_split: float = DEFAULT_VAL_SPLIT,
    seed: int = DEFAULT_SEED,
    *,
    check_images: bool = True,
    cancel: threading.Event | None = None,
    max_entries: int | None = None,
) -> DatasetScan:
    """Scan ``root`` for class folders and images, and split off validation images if needed.

    Args:
        root: the dataset folder (class subfolders, or train/ and val/ of that form).
        val_split: fraction of each class held out for validation when there is no val/ folder
            (at least one image per class with two or more images).
        seed: seed of the split, so the same folder always splits the same way.
        check_images: read each file's header and skip those that are not usable images.
        cancel: when set, the scan stops at the next file with :class:`ScanCancelled`.
        max_entries: stop with :class:`DatasetTooLarge` after this many files and folders (a preview's
            bound, so a path such as ``/`` is not walked to the end); None scans everything.

    Raises:
        DatasetError: missing folder, bad ``val_split``, or fewer than two classes with images.
        DatasetTooLarge: more than ``max_entries`` files and folders.
        ScanCancelled: ``cancel`` was set.
    """
    path = Path(root)
    if not path.exists():
        raise DatasetError("folder not found", str(path))
    if not path.is_dir():
        raise DatasetError("not a folder; give a folder with one subfolder per class", str(path))
    if not 0.0 < val_split < 1.0:
        raise DatasetError(f"validation split must be between 0 and 1 (exclusive), not {val_split}")

    budget = _Budget(path, cancel, max_entries)
    train_dir = next((path / n for n in TRAIN_FOLDER_NAMES if (path / n).is_dir()), None)
    val_dir = next((path / n for n in VAL_FOLDER_NAMES if (path / n).is_dir()), None)
    if train_dir is not None and val_dir is not None:
        return _scan_train_val(path, train_dir, val_dir, seed, check_images, budget)

    skipped: list[SkippedFile] = []
    notes: list[str] = []
    per_class = _scan_class_folders(path, skipped, notes, check_images, budget)
    names = _usable_classes(path, per_class, notes)
    train: list[Sample] = []
    val: list[Sample] = []
    rng = random.Random(seed)
    for label, name in enumerate(names):
        files = list(per_class[name])
        rng.shuffle(files)
        n = len(files)
        n_val = 0 if n < 2 else min(n - 1, max(1, round(n * val_split)))
        if n < 2:
            notes.append(f"class '{name}' has a single image: it is used for training only, none for validation")
        val += [Sample(p, label) for p in sorted(files[:n_val])]
        train += [Sample(p, label) for p in sorted(files[n_val:])]
    _warn_small(names, per_class, notes)
    return DatasetScan(path, "class_folders", names, train, val, skipped, notes, val_split, seed)


def _scan_train_val(
    root: Path, train_dir: Path, val_dir: Path, seed: int, check: bool, budget: _Budget
) -> DatasetScan:
    skipped: list[SkippedFile] = []
    notes: list[str] = []
    per_train = _scan_class_folders(train_dir, skipped, notes, check, budget)
    names = _usable_classes(train_dir, per_train, notes)
    per_val = _scan_class_folders(val_dir, skipped, notes, check, budget)
    index = {n: i for i, n in enumerate(names)}
    val: list[Sample] = []
    for name, files in per_val.items():
        if name not in index:
            notes.append(f"{val_dir.name}/{name} is not a class in {train_dir.name}/; "
                         f"its {len(files)} image(s) are left out")
            skipped += [SkippedFile(p, f"class '{name}' is not in {train_dir.name}/") for p in files]
            continue
        val += [Sample(p, index[name]) for p in files]
    missing = [n for n in names if not per_val.get(n)]
    if missing:
        notes.append(f"no validation images for: {', '.join(missing)}")
    if not val:
        raise DatasetError(f"no validation images of the training classes ({', '.join(names)})", str(val_dir))
    train = [Sample(p, index[n]) for n in names for p in per_train[n]]
    val.sort(key=lambda s: (s.label, s.path))
    _warn_small(names, per_train, notes)
    return DatasetScan(root, "train_val", names, train, val, skipped, notes, None, seed,
                       splits=(train_dir.name, val_dir.name))


class _Budget:
    """Counts the files and folders a scan visits against ``max_entries``, and watches ``cancel``."""

    def __init__(self, root: Path, cancel: threading.Event | None, max_entries: int | None) -> None:
        self.root, self.cancel, self.max_entries = root, cancel, max_entries
        self.seen = 0

    def tick(self, n: int = 1) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise ScanCancelled("scan cancelled", str(self.root))
        self.seen += n
        if self.max_entries is not None and self.seen > self.max_entries:
            raise DatasetTooLarge(
                f"more than {self.max_entries:,} files and folders; is this the dataset folder? "
                "(a dataset folder holds one subfolder of images per class)", str(self.root),
            )


def _scan_class_folders(
    folder: Path, skipped: list[SkippedFile], notes: list[str], check: bool, budget: _Budget | None = None
) -> dict[str, list[Path]]:
    """``{class name: sorted usable image paths}`` for each non-hidden subfolder of ``folder``."""
    budget = budget or _Budget(folder, None, None)
    exts = image_extensions()
    per_class: dict[str, list[Path]] = {}
    loose = 0
    for entry in sorted(os.scandir(folder), key=lambda e: natural_key(e.name)):
        budget.tick()
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in exts:
                loose += 1
            continue
        files: list[Path] = []
        for dirpath, dirs, names in os.walk(entry.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            budget.tick(len(dirs))
            for name in names:
                budget.tick()
                if name.startswith("."):
                    continue
                p = Path(dirpath) / name
                if os.path.splitext(name)[1].lower() not in exts:  # a photo format nothing here reads is named
                    hint = missing_format_hint(os.path.splitext(name)[1])
                    skipped.append(SkippedFile(p, hint or "not an image file type this app reads"))
                    continue
                if check:
                    try:
                        check_image_header(p)
                    except ImageLoadError as e:
                        skipped.append(SkippedFile(p, e.reason))
                        continue
                files.append(p)
        per_class[entry.name] = sorted(files, key=lambda q: natural_key(str(q)))
    if loose:
        notes.append(f"{loose} image(s) directly in {folder} are in no class folder and were ignored")
    return per_class


def _usable_classes(folder: Path, per_class: dict[str, list[Path]], notes: list[str]) -> list[str]:
    empty = [n for n, f in per_class.items() if not f]
    for n in empty:
        notes.append(f"class folder '{n}' has no readable images and is left out")
    names = [n for n, f in per_class.items() if f]
    if len(names) < 2:
        found = f"found 1 class folder with images ('{names[0]}')" if names else "found no class folders with images"
        raise DatasetError(
            f"{found}; finetuning needs at least 2 classes, one subfolder of images per class "
            f"(e.g. {folder}/cats/*.jpg and {folder}/dogs/*.jpg)", str(folder),
        )
    return names


def _warn_small(names: Sequence[str], per_class: dict[str, list[Path]], notes: list[str]) -> None:
    small = [f"{n} ({len(per_class[n])})" for n in names if len(per_class[n]) < FEW_IMAGES]
    if small:
        notes.append(f"fewer than {FEW_IMAGES} images in: {', '.join(small)}; expect a weak model for these classes")


def natural_key(text: str) -> list[int | str]:
    """Sort key that puts ``img2`` before ``img10`` (as timm's ImageFolder does)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]
