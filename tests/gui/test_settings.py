"""AppSettings round trips through a real QSettings INI file, and survives hand-edited or odd values."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QSettings

from squeezelens.gui.settings import MAX_RECENT_MODELS, AppSettings

_names = itertools.count()


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    # a new name each time: QSettings caches files by name within a process
    return tmp_path / f"settings-{next(_names)}.ini"


def open_settings(path: Path) -> AppSettings:
    return AppSettings(QSettings(str(path), QSettings.Format.IniFormat))


def reopen(path: Path, settings: AppSettings) -> AppSettings:
    """Write ``settings`` to disk and read the file back through a fresh QSettings under a new name."""
    settings.sync()
    copy = path.with_name(f"reread-{next(_names)}.ini")
    copy.write_bytes(path.read_bytes())
    return open_settings(copy)


def write_ini(path: Path, body: str) -> AppSettings:
    path.write_text("[General]\n" + body)
    return open_settings(path)


def test_defaults(ini: Path) -> None:
    s = open_settings(ini)
    assert (s.model, s.device, s.top_k, s.last_folder) == ("", "auto", 5, "")
    assert s.recent_models == []
    assert s.geometry is None and s.window_state is None


def test_default_constructor_uses_the_private_ini_folder(tmp_path: Path) -> None:
    s = AppSettings()
    s.model = "seresnext50_32x4d"
    s.sync()
    written = list((tmp_path / "settings").rglob("*.ini"))
    assert len(written) == 1 and "seresnext50_32x4d" in written[0].read_text()


def test_round_trip(ini: Path) -> None:
    s = open_settings(ini)
    s.model = "/home/me/models/my birds"
    s.device = "cpu"
    s.top_k = 7
    s.last_folder = "/home/me/Pictures, 2024"
    s.geometry = QByteArray(b"\x01\x02\x00geom")
    s.window_state = QByteArray(b"state\xff")
    back = reopen(ini, s)
    assert back.model == "/home/me/models/my birds"
    assert back.device == "cpu"
    assert back.top_k == 7
    assert back.last_folder == "/home/me/Pictures, 2024"
    assert back.geometry == QByteArray(b"\x01\x02\x00geom")
    assert back.window_state == QByteArray(b"state\xff")


def test_recent_models_single_item_round_trip(ini: Path) -> None:
    s = open_settings(ini)
    s.add_recent_model("/models/a, with comma")
    assert reopen(ini, s).recent_models == ["/models/a, with comma"]


def test_recent_models_newest_first_dedup_and_cap(ini: Path) -> None:
    s = open_settings(ini)
    for i in range(MAX_RECENT_MODELS + 3):
        s.add_recent_model(f"/m/{i}")
    s.add_recent_model("/m/5")  # used again: moves to the front, not duplicated
    expected = ["/m/5"] + [f"/m/{i}" for i in range(MAX_RECENT_MODELS + 2, 2, -1) if i != 5]
    expected = expected[:MAX_RECENT_MODELS]
    assert s.recent_models == expected
    assert reopen(ini, s).recent_models == expected
    assert len(expected) == MAX_RECENT_MODELS


def test_remove_last_recent_model_then_restart(ini: Path) -> None:
    """An empty list is stored as @Invalid() and reads back as None: that must not break start-up."""
    s = open_settings(ini)
    s.add_recent_model("/m/a")
    s.add_recent_model("/m/b")
    s.remove_recent_model("/m/a")
    assert s.recent_models == ["/m/b"]
    s.remove_recent_model("/m/b")
    assert s.recent_models == []
    back = reopen(ini, s)
    assert back.recent_models == []
    back.add_recent_model("/m/c")
    assert back.recent_models == ["/m/c"]


@pytest.mark.parametrize(("stored", "expected"), [
    ("@Invalid()", []),
    ("", []),
    ("/a", ["/a"]),
    ("/a, /b, /a, , /c", ["/a", "/b", "/c"]),
    ("42", ["42"]),
])
def test_recent_models_hand_edited(ini: Path, stored: str, expected: list[str]) -> None:
    assert write_ini(ini, f"recent_models={stored}\n").recent_models == expected


@pytest.mark.parametrize(("value", "expected"), [(0, 1), (-3, 1), (1, 1), (10, 10), (11, 10), (100, 10), (3, 3)])
def test_top_k_clamped(ini: Path, value: int, expected: int) -> None:
    s = open_settings(ini)
    s.top_k = value
    assert s.top_k == expected
    assert reopen(ini, s).top_k == expected


@pytest.mark.parametrize(("stored", "expected"), [
    ("abc", 5), ("", 5), ("@Invalid()", 5), ("3.7", 5), ("1, 2", 5), ("8", 8), ("99", 10), ("-1", 1),
])
def test_top_k_bad_stored_values(ini: Path, stored: str, expected: int) -> None:
    assert write_ini(ini, f"top_k={stored}\n").top_k == expected


@pytest.mark.parametrize(("stored", "expected"), [
    ("gpu", "auto"), ("", "auto"), ("cuda", "cuda"), ("mps", "mps"), ("cpu, cuda", "auto"), ("@Invalid()", "auto"),
])
def test_device_bad_stored_values(ini: Path, stored: str, expected: str) -> None:
    assert write_ini(ini, f"device={stored}\n").device == expected


def test_bad_strings_and_geometry_fall_back(ini: Path) -> None:
    ini.write_text("[General]\nmodel=a, b\nlast_folder=@Invalid()\n[window]\ngeometry=garbage\nstate=12\n")
    s = open_settings(ini)
    assert s.model == ""  # a list is not a model name
    assert s.last_folder == ""
    assert s.geometry is None and s.window_state is None


def test_camera_and_finetune_defaults(ini: Path) -> None:
    s = open_settings(ini)
    assert (s.camera_mirror, s.camera_smoothing, s.camera_classes, s.capture_folder) == (True, 3, [], "")
    assert (s.finetune_mode, s.finetune_epochs, s.finetune_input_size, s.finetune_data_folders) == ("quick", 0, 0, [])


@pytest.mark.parametrize(("key", "stored", "attr", "expected"), [
    ("finetune/mode", "deep", "finetune_mode", "deep"),
    ("finetune/mode", "fast", "finetune_mode", "quick"),
    ("finetune/epochs", "-3", "finetune_epochs", 0),
    ("finetune/input_size", "big", "finetune_input_size", 0),
    ("camera/smoothing", "99", "camera_smoothing", 30),
    ("camera/smoothing", "x", "camera_smoothing", 3),
    ("camera/mirror", "false", "camera_mirror", False),
    ("camera/mirror", "1", "camera_mirror", True),
    ("camera/classes", "cat, dog, cat, ", "camera_classes", ["cat", "dog"]),
])
def test_camera_and_finetune_hand_edited(ini: Path, key: str, stored: str, attr: str, expected: object) -> None:
    group, name = key.split("/")
    ini.write_text(f"[{group}]\n{name}={stored}\n")
    assert getattr(open_settings(ini), attr) == expected


def test_camera_settings_round_trip(ini: Path) -> None:
    s = open_settings(ini)
    s.camera_mirror = False
    s.camera_smoothing = 7
    s.camera_classes = ["empty desk", "cat"]
    s.finetune_mode = "deep"
    s.add_finetune_data_folder("/data/a")
    s.add_finetune_data_folder("/data/b")
    back = reopen(ini, s)
    assert (back.camera_mirror, back.camera_smoothing, back.camera_classes) == (False, 7, ["empty desk", "cat"])
    assert back.finetune_mode == "deep" and back.finetune_data_folders == ["/data/b", "/data/a"]
