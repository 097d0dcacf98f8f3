"""folder_name, copy_into_class_folders and write_text_atomic: plain file-system code, no Qt."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from squeezelens.core.atomic_files import write_text_atomic
from squeezelens.core.class_folders import copy_into_class_folders, folder_name
from squeezelens.core.errors import SqueezeLensError

WINDOWS_BAD = set('\\/:*?"<>|') | {chr(c) for c in range(32)}


def valid_everywhere(name: str) -> bool:
    base = name.split(".")[0].strip().upper()
    return (bool(name) and name not in (".", "..") and not (set(name) & WINDOWS_BAD)
            and not name.endswith((".", " ")) and not name.startswith(" ")
            and base not in {"CON", "PRN", "AUX", "NUL"} | {f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10)}
            and len(name.encode("utf-8")) <= 255)


@pytest.mark.parametrize(("label", "expected"), [
    ("tabby, tabby cat", "tabby, tabby cat"),
    ("great white shark", "great white shark"),
    ("AC/DC", "AC_DC"),
    ("a\\b:c*d?e\"f<g>h|i", "a_b_c_d_e_f_g_h_i"),
    ("tab\there", "tab_here"),
    ("..", "_"),
    (".", "_"),
    ("", "_"),
    ("   ", "_"),
    ("../../etc", ".._.._etc"),
    ("trailing dot.", "trailing dot"),
    ("dots and space . .", "dots and space"),
    ("CON", "_CON"),
    ("con", "_con"),
    ("Lpt9", "_Lpt9"),
    ("nul.txt", "_nul.txt"),
    ("COM10", "COM10"),
    ("CONSOLE", "CONSOLE"),
    ("ca\u0301fe\u0301 \u732b", "ca\u0301fe\u0301 \u732b"),
])
def test_folder_name(label: str, expected: str) -> None:
    assert folder_name(label) == expected
    assert valid_everywhere(folder_name(label))


@pytest.mark.parametrize("label", ["x" * 400, "\u732b" * 150, "a" * 199 + " b", "\U0001F408" * 100])
def test_folder_name_long_labels_fit(label: str, tmp_path: Path) -> None:
    name = folder_name(label)
    assert valid_everywhere(name)
    assert label.startswith(name)
    (tmp_path / name).mkdir()  # the file system takes it


def test_folder_name_never_escapes(tmp_path: Path) -> None:
    for label in ("..", "../x", "/abs/path", "a/../../b", "~"):
        target = (tmp_path / folder_name(label)).resolve()
        assert target.parent == tmp_path.resolve()


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = [src / "a.jpg", src / "b.png", src / "sub" / "a.jpg"]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * (100 + i))
        os.utime(f, (1_600_000_000 + i, 1_600_000_000 + i))
    return files


def test_copies_with_metadata(photos: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "out" / "nested"  # created
    report = copy_into_class_folders([(photos[0], "tabby"), (str(photos[1]), "AC/DC")], dest)
    assert report.failed == [] and not report.cancelled
    assert report.copied == [(photos[0], dest / "tabby" / "a.jpg"), (photos[1], dest / "AC_DC" / "b.png")]
    for src, dst in report.copied:
        assert dst.read_bytes() == src.read_bytes()
        assert dst.stat().st_mtime == src.stat().st_mtime  # copy2 keeps the time stamps
        assert src.exists()  # originals stay


def test_never_overwrites(photos: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "out"
    (dest / "cat").mkdir(parents=True)
    (dest / "cat" / "a.jpg").write_bytes(b"already here")
    report = copy_into_class_folders([(photos[0], "cat"), (photos[2], "cat"), (photos[0], "cat")], dest)
    assert [dst.name for _, dst in report.copied] == ["a-1.jpg", "a-2.jpg", "a-3.jpg"]
    assert (dest / "cat" / "a.jpg").read_bytes() == b"already here"
    assert (dest / "cat" / "a-2.jpg").read_bytes() == photos[2].read_bytes()
    # a second run adds more copies rather than replacing the first
    again = copy_into_class_folders([(photos[1], "cat"), (photos[1], "cat")], dest)
    assert [dst.name for _, dst in again.copied] == ["b.png", "b-1.png"]


def test_never_writes_through_a_dangling_symlink(photos: list[Path], tmp_path: Path) -> None:
    dest = tmp_path / "out"
    (dest / "cat").mkdir(parents=True)
    outside = tmp_path / "outside.jpg"
    (dest / "cat" / "a.jpg").symlink_to(outside)
    report = copy_into_class_folders([(photos[0], "cat")], dest)
    assert [dst.name for _, dst in report.copied] == ["a-1.jpg"]
    assert not outside.exists()


def test_missing_source_is_reported_and_the_rest_continue(photos: list[Path], tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    missing = tmp_path / "src" / "gone.jpg"
    items = [(photos[0], "a"), (missing, "b"), (photos[1], "c")]
    report = copy_into_class_folders(items, tmp_path / "out", progress=lambda d, t: calls.append((d, t)))
    assert [src for src, _ in report.copied] == [photos[0], photos[1]]
    assert len(report.failed) == 1 and report.failed[0].startswith(f"{missing}: ")
    assert "No such file" in report.failed[0]
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert not report.cancelled


def test_destination_that_cannot_be_made(photos: list[Path], tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    report = copy_into_class_folders([(photos[0], "cat")], blocker / "out")
    assert report.copied == [] and len(report.failed) == 1
    assert report.failed[0].startswith(f"{blocker / 'out'}: cannot create the folder")


def test_cancel_stops_between_files(photos: list[Path], tmp_path: Path) -> None:
    cancel = threading.Event()
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 1:
            cancel.set()

    report = copy_into_class_folders([(p, "cat") for p in photos], tmp_path / "out", progress, cancel)
    assert report.cancelled
    assert len(report.copied) == 1 and calls == [(1, 3)]
    assert sorted(os.listdir(tmp_path / "out" / "cat")) == ["a.jpg"]


def test_cancelled_before_start(photos: list[Path], tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    report = copy_into_class_folders(iter([(photos[0], "cat")]), tmp_path / "out", cancel=cancel)
    assert report.cancelled and report.copied == [] and report.failed == []


# -- write_text_atomic ------------------------------------------------------------------------------

def test_write_text_atomic_creates_and_replaces(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    write_text_atomic(out, "a,b\n1,\u00e9\n")
    assert out.read_bytes() == "a,b\n1,\u00e9\n".encode()
    write_text_atomic(str(out), "new\r\n")
    assert out.read_bytes() == b"new\r\n"  # no newline translation
    assert os.listdir(tmp_path) == ["results.csv"]  # no temp file left behind


def test_write_text_atomic_permissions(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    write_text_atomic(out, "x")
    mode = stat.S_IMODE(out.stat().st_mode)
    assert mode & stat.S_IRGRP or os.name == "nt"  # not mkstemp's owner-only 0600
    out.chmod(0o640)
    write_text_atomic(out, "y")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # an existing file keeps its permissions


def test_write_text_atomic_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SqueezeLensError, match="cannot write"):
        write_text_atomic(tmp_path / "no such folder" / "out.csv", "x")
    assert os.listdir(tmp_path) == []


def test_write_text_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    out.write_text("old")
    with pytest.raises(SqueezeLensError):
        write_text_atomic(out, "\ud800 lone surrogate")  # cannot be encoded as UTF-8
    assert out.read_text() == "old"
    assert os.listdir(tmp_path) == ["results.csv"]
    target_is_dir = tmp_path / "a folder"
    target_is_dir.mkdir()
    with pytest.raises(SqueezeLensError):
        write_text_atomic(target_is_dir, "x")
    assert target_is_dir.is_dir() and sorted(os.listdir(tmp_path)) == ["a folder", "results.csv"]
