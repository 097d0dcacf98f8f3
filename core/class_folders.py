"""Sorting images into folders named after their predicted class ("copy to class folders")."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


#: Longest folder name, in UTF-8 bytes (file systems allow 255; leave room to spare).
_MAX_NAME_BYTES = 200


def folder_name(label: str) -> str:
    """A class label as a folder name that is valid on Linux, macOS and Windows."""
    name = _UNSAFE.sub("_", label)
    # Windows drops trailing dots and spaces (so "a ." and "a" would be one folder); cut to fit
    while len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        name = name[:-1]
    name = name.strip().rstrip(". ")
    if not name:
        name = "_"
    # CON, con.txt, "nul .tar" are all the console / null device on Windows
    if name.split(".")[0].rstrip(" ").upper() in _RESERVED:
        name = f"_{name}"
    return name


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while os.path.lexists(target):  # a dangling symlink too: copying onto it would write through it
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


@dataclass
class CopyReport:
    copied: list[tuple[Path, Path]] = field(default_factory=list)  # (source, destination)
    failed: list[str] = field(default_factory=list)  # one line per file that could not be copied
    cancelled: bool = False


def copy_into_class_folders(
    items: Iterable[tuple[str | Path, str]],
    destination: str | Path,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> CopyReport:
    """Copy each ``(image path, class label)`` to ``destination/<label>/``; never overwrites a file.

    Originals are left alone; a name that already exists gets ``-1``, ``-2``... A file that cannot be
    copied is reported and the rest go on.
    """
    items = list(items)
    dest = Path(destination)
    report = CopyReport()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        report.failed.append(f"{dest}: cannot create the folder ({e.strerror or e})")
        return report
    for i, (src, label) in enumerate(items):
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
        src = Path(src)
        try:
            folder = dest / folder_name(label)
            folder.mkdir(exist_ok=True)
            target = _free_name(folder, src.name)
            shutil.copy2(src, target)
            report.copied.append((src, target))
        except OSError as e:
            report.failed.append(f"{src}: {e.strerror or e}")
        if progress is not None:
            progress(i + 1, len(items))
    return report
