"""Issue 13's done-means: a folder mixing a good photo, a bad-EXIF photo, a Latin-1 file name and an
unsupported format gives one result or one error line each, exit 1, in table, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from squeezelens import cli
from squeezelens.core.report import encode_output, terminal_text

LATIN1 = b"caf\xe9.png"  # "café.png" in Latin-1: not valid UTF-8


def bad_exif_jpeg(path: Path) -> None:
    """Orientation 6 and an XResolution stored as text (as some cameras write)."""
    entries = [(0x0112, 3, 1, struct.pack("<H", 6)), (0x011A, 2, 3, b"72\0")]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", t, ty, n) + v.ljust(4, b"\0") for t, ty, n, v in entries) + struct.pack("<I", 0)
    Image.new("RGB", (64, 40), (200, 40, 40)).save(path, exif=b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=3)
    return save_model(net, tmp_path_factory.mktemp("model") / "tiny", ["ant", "bee", "cow"])


@pytest.fixture()
def photo_folder(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(d / "a_good.png")
    bad_exif_jpeg(d / "b_bad_exif.jpg")
    Image.new("RGB", (64, 48), (30, 200, 30)).save(os.fsdecode(os.fsencode(str(d)) + b"/" + LATIN1))
    (d / "d_photo.jxl").write_bytes(b"\xff\x0a" + b"\0" * 64)  # JPEG XL: no reader here
    return d


def classify(folder: Path, model: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "squeezelens", "classify", str(folder), "--model", str(model),
                           "--backend", "torch", "--device", "cpu", "--offline", *args],
                          capture_output=True, timeout=300, env=env)


def test_table_csv_json_one_line_each(tmp_path: Path, photo_folder: Path, tiny_model: Path, capsys) -> None:
    latin1_path = os.fsencode(str(photo_folder)) + b"/" + LATIN1

    table = classify(photo_folder, tiny_model)
    assert table.returncode == 1, table.stderr
    assert b"Traceback" not in table.stderr
    blocks = [b for b in table.stdout.split(b"\n\n") if b.strip()]
    assert len(blocks) == 4
    assert blocks[2].startswith(latin1_path)  # a pipe gets the name's own bytes
    assert b"error:" in blocks[3] and b"JPEG XL" in blocks[3]
    assert b"error" not in blocks[1]  # the bad-EXIF photo has a result

    # CSV and JSON in this process (one subprocess above is enough to show the real stdout)
    common = ["classify", str(photo_folder), "--model", str(tiny_model), "--backend", "torch", "--device", "cpu",
              "--offline"]
    out = tmp_path / "r.csv"
    assert cli.main([*common, "--format", "csv", "-o", str(out)]) == 1
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8", "surrogateescape"))))
    paths = list(dict.fromkeys(r["path"] for r in rows))
    assert len(paths) == 4 and os.fsencode(paths[2]) == latin1_path
    assert os.path.exists(paths[2])  # the CSV names the file that exists
    errors = {r["path"] for r in rows if r["error"]}
    assert errors == {str(photo_folder / "d_photo.jxl")}

    capsys.readouterr()
    assert cli.main([*common, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 4 and os.fsencode(data[2]["path"]) == latin1_path
    assert ["error" in d for d in data] == [False, False, False, True]
    assert "cannot be read by this installation" in data[3]["error"]


def test_terminal_gets_an_escaped_name() -> None:
    name = os.fsdecode(b"/p/caf\xe9.png")
    assert terminal_text(name) == "/p/caf\\xe9.png"
    assert encode_output(name, "utf-8", terminal=True) == b"/p/caf\\xe9.png"
    assert encode_output(name, "utf-8", terminal=False) == b"/p/caf\xe9.png"
    assert terminal_text("/p/café.png") == "/p/café.png"
