"""Capturing frames for training: the right files in the right class folders, never overwriting,
class list add/rename with counts, hold-to-record bursts, and a dataset the finetune scan reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest

WAIT_MS = 10_000


def two_colour_frame(w: int = 64, h: int = 48) -> QImage:
    """Left half red, right half blue: shows whether a saved file was mirrored."""
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor(0, 0, 255))
    for y in range(h):
        for x in range(w // 2):
            image.setPixelColor(x, y, QColor(255, 0, 0))
    return image


class Frames:
    """A frame provider that hands out a new QVideoFrame each call (like a running camera)."""

    def __init__(self) -> None:
        from squeezelens.gui.camera_source import multimedia

        self.image = two_colour_frame()
        self.mm = multimedia()
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.mm.QVideoFrame(self.image)


@pytest.fixture
def panel(qtbot: Any, tmp_path: Path) -> Any:
    from squeezelens.gui.capture_panel import CapturePanel
    from squeezelens.gui.settings import AppSettings

    settings = AppSettings()
    settings.capture_folder = str(tmp_path / "dataset")
    p = CapturePanel(settings, Frames())
    qtbot.addWidget(p)
    yield p
    p.shutdown(5000)


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".jpg") if folder.is_dir() else []


def test_save_image_never_overwrites_and_leaves_no_temp_files(tmp_path: Path) -> None:
    from squeezelens.gui.capture_writer import save_image

    (tmp_path / "shot.jpg").write_bytes(b"precious")
    first = save_image(two_colour_frame(), tmp_path, "shot")
    second = save_image(two_colour_frame(), tmp_path, "shot")
    assert (first.name, second.name) == ("shot-1.jpg", "shot-2.jpg")
    assert (tmp_path / "shot.jpg").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot-1.jpg", "shot-2.jpg", "shot.jpg"]
    with Image.open(first) as im:
        assert im.format == "JPEG" and im.size == (64, 48)
    with pytest.raises(ValueError):
        save_image(QImage(), tmp_path, "empty")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_capture_writes_into_the_selected_class_folder(qtbot: Any, panel: Any, tmp_path: Path) -> None:
    from squeezelens.core.dataset_scan import scan_dataset

    dataset = tmp_path / "dataset"
    assert panel.add("cat") and panel.add("dog: small")
    assert not panel.add("cat")  # a class is added once
    saved: list[tuple[str, str]] = []
    panel.writer.saved.connect(lambda c, p: saved.append((c, p)))
    panel.select("cat")
    assert panel.capture_one() and panel.capture_one()
    panel.select("dog: small")
    assert panel.capture_one()
    qtbot.waitUntil(lambda: len(saved) == 3, timeout=WAIT_MS)
    cats, dogs = images_in(dataset / "cat"), images_in(dataset / "dog_ small")  # folder_name() of the label
    assert len(cats) == 2 and len(dogs) == 1
    assert [c for c, _ in saved] == ["cat", "cat", "dog: small"]
    assert {Path(p) for _, p in saved} == set(cats + dogs)
    assert panel.counts == {"cat": 2, "dog: small": 1}
    assert "(2 images)" in panel.classes.item(0).text() and "(1 image)" in panel.classes.item(1).text()
    with Image.open(cats[0]) as im:
        rgb = im.convert("RGB")
        assert im.size == (64, 48)
        # saved as the camera sent it (never mirrored): red on the left, blue on the right
        left, right = rgb.getpixel((4, 24)), rgb.getpixel((60, 24))
        assert left[0] > 200 and left[2] < 60 and right[2] > 200 and right[0] < 60
    scan = scan_dataset(dataset)  # the finetune window's reader takes the folder as it is
    assert scan.class_names == ["cat", "dog_ small"] and len(scan.train) + len(scan.val) == 3


def test_hold_to_record_saves_a_burst(qtbot: Any, panel: Any, tmp_path: Path) -> None:
    from squeezelens.gui.capture_panel import BURST_FPS

    panel.add("hands")
    QTest.mousePress(panel.record, Qt.MouseButton.LeftButton)
    qtbot.wait(int(1000 * 3.5 / BURST_FPS))  # the first at once, then one every 1/BURST_FPS s
    QTest.mouseRelease(panel.record, Qt.MouseButton.LeftButton)
    panel.shutdown(WAIT_MS)
    qtbot.waitUntil(lambda: panel.writer.queued == 0, timeout=WAIT_MS)
    files = images_in(tmp_path / "dataset" / "hands")
    assert 3 <= len(files) <= 5, [f.name for f in files]
    assert len({f.name for f in files}) == len(files)
    n = len(files)
    qtbot.wait(int(2000 / BURST_FPS))
    assert len(images_in(tmp_path / "dataset" / "hands")) == n  # released: no more


def test_burst_saves_a_paused_frame_once(qtbot: Any, panel: Any, tmp_path: Path) -> None:
    frame = Frames()()
    panel.frame_provider = lambda: frame  # paused video: the same frame every time
    panel.add("still")
    panel.start_burst()
    qtbot.wait(700)
    panel.stop_burst()
    panel.shutdown(WAIT_MS)
    qtbot.waitUntil(lambda: panel.writer.queued == 0, timeout=WAIT_MS)
    assert len(images_in(tmp_path / "dataset" / "still")) == 1


def test_rename_class_renames_its_folder_and_refuses_merges(qtbot: Any, panel: Any, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    panel.add("kitten")
    panel.add("dog")
    panel.select("kitten")
    panel.capture_one()
    qtbot.waitUntil(lambda: panel.counts.get("kitten") == 1, timeout=WAIT_MS)
    assert panel.rename("kitten", "cat")
    qtbot.waitUntil(lambda: not panel.counting, timeout=WAIT_MS)
    assert not (dataset / "kitten").exists() and len(images_in(dataset / "cat")) == 1
    assert panel.class_names() == ["cat", "dog"] and panel.counts["cat"] == 1
    assert panel.current_class() == "cat"
    assert not panel.rename("cat", "dog")  # would merge two classes
    assert "already a class" in panel.status.text()
    assert len(images_in(dataset / "cat")) == 1
    assert panel.settings.camera_classes == ["cat", "dog"]


def test_existing_class_folders_are_listed_with_counts(qtbot: Any, panel: Any, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    (dataset / "apple" / "sub").mkdir(parents=True)
    for name in ("a.jpg", "b.png", "sub/c.jpg", "notes.txt"):
        target = dataset / "apple" / name
        if name.endswith("txt"):
            target.write_text("x")
        else:
            Image.new("RGB", (8, 8)).save(target)
    panel.add("pear")
    panel.refresh()
    assert panel.class_names() == ["pear", "apple"]
    assert panel.counting  # counted in the writer's thread, not here
    qtbot.waitUntil(lambda: not panel.counting, timeout=WAIT_MS)
    assert panel.counts == {"pear": 0, "apple": 3}
    assert "(3 images)" in panel.classes.item(1).text()


def test_capture_needs_a_folder_and_a_class(qtbot: Any, panel: Any, tmp_path: Path) -> None:
    panel.set_dataset("")
    assert not panel.capture_one() and "dataset folder" in panel.status.text()
    panel.set_dataset(str(tmp_path / "dataset"))
    assert not panel.capture_one() and "Add a class" in panel.status.text()
    panel.add("x")
    panel.frame_provider = lambda: None
    assert not panel.capture_one() and "no video" in panel.status.text()
    assert not (tmp_path / "dataset" / "x").exists()


def test_unwritable_dataset_is_a_message(qtbot: Any, panel: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    panel.set_dataset(str(blocker))
    panel.add("x")
    failures: list[str] = []
    panel.writer.failed.connect(failures.append)
    assert panel.capture_one()
    qtbot.waitUntil(lambda: bool(failures), timeout=WAIT_MS)
    assert failures[0].startswith("Could not save the capture")
    assert panel.status.text() == failures[0]


def slow_saves(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    import time

    from squeezelens.gui import capture_writer

    real = capture_writer.save_image

    def slow(image: QImage, folder: Path, stem: str) -> Path:
        time.sleep(seconds)  # a slow disk
        return real(image, folder, stem)

    monkeypatch.setattr(capture_writer, "save_image", slow)


def test_rename_waits_for_captures_still_being_written(
        qtbot: Any, panel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Captures queued for a class land before its folder is renamed: the old folder does not come back."""
    dataset = tmp_path / "dataset"
    slow_saves(monkeypatch, 0.2)
    panel.add("kitten")
    assert panel.capture_one() and panel.capture_one()
    assert panel.writer.queued == 2
    assert panel.rename("kitten", "cat")
    panel.shutdown(WAIT_MS)
    qtbot.waitUntil(lambda: panel.writer.queued == 0, timeout=WAIT_MS)
    assert sorted(p.name for p in dataset.iterdir()) == ["cat"]
    assert len(images_in(dataset / "cat")) == 2
    panel.refresh()
    qtbot.waitUntil(lambda: not panel.counting, timeout=WAIT_MS)
    assert panel.class_names() == ["cat"] and panel.counts == {"cat": 2}


def test_rename_refused_while_a_slow_disk_still_writes(
        qtbot: Any, panel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from squeezelens.gui import capture_panel

    monkeypatch.setattr(capture_panel, "RENAME_WAIT_MS", 50)
    slow_saves(monkeypatch, 0.5)
    panel.add("kitten")
    assert panel.capture_one()
    assert not panel.rename("kitten", "cat")
    assert "still being saved" in panel.status.text()
    panel.shutdown(WAIT_MS)
    qtbot.waitUntil(lambda: panel.writer.queued == 0, timeout=WAIT_MS)
    assert panel.rename("kitten", "cat")  # done writing: now it can
    assert sorted(p.name for p in (tmp_path / "dataset").iterdir()) == ["cat"]


@pytest.mark.parametrize("name", [".hidden", ".git", " .cat"])
def test_class_names_that_would_be_hidden_folders_are_refused(panel: Any, name: str) -> None:
    """The finetune scan skips folders starting with '.', so captures there would never be trained on."""
    assert not panel.add(name)
    assert "cannot start with '.'" in panel.status.text()
    panel.add("cat")
    assert not panel.rename("cat", name)
    assert "cannot start with '.'" in panel.status.text()
    assert panel.class_names() == ["cat"]


def test_case_only_rename_on_a_case_insensitive_file_system(
        qtbot: Any, panel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cat -> Cat where the file system ignores case (macOS, Windows): "Cat" already "exists" (it is
    "cat" itself), so the folder is renamed through a temporary name. Emulated here on a case-sensitive
    file system by making path checks ignore case."""
    import os

    from squeezelens.gui import capture_panel

    dataset = tmp_path / "dataset"
    panel.add("cat")
    panel.add("dog")
    panel.select("cat")
    panel.capture_one()
    qtbot.waitUntil(lambda: panel.counts.get("cat") == 1, timeout=WAIT_MS)

    def find(path: Any) -> Path | None:
        path = Path(path)
        return next((p for p in path.parent.iterdir() if p.name.lower() == path.name.lower()), None)

    fake_os = type("os", (), {})()
    fake_os.getpid = os.getpid
    fake_os.path = type("path", (), {})()
    fake_os.path.lexists = lambda p: find(p) is not None
    fake_os.path.samefile = lambda a, b: find(a) is not None and find(a) == find(b)
    monkeypatch.setattr(capture_panel, "os", fake_os)
    assert panel.rename("cat", "Cat")
    assert sorted(p.name for p in dataset.iterdir()) == ["Cat"] and len(images_in(dataset / "Cat")) == 1
    assert not panel.rename("Cat", "DOG")  # another class's folder: still refused
    assert "already a class" in panel.status.text()
    assert sorted(p.name for p in dataset.iterdir()) == ["Cat"] and panel.class_names() == ["Cat", "dog"]


def test_captures_are_converted_off_the_gui_thread_and_few_frames_wait(
        qtbot: Any, panel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """QVideoFrame.toImage() in the GUI thread could wait, holding the GIL, on the worker converting the same
    frame (issue 14: the app hung under X11): the writer's thread converts. A frame waiting in the queue
    keeps one of the camera's few buffers, so only MAX_WAITING_FRAMES may wait; more captures are skipped."""
    import threading

    from squeezelens.gui.capture_writer import MAX_WAITING_FRAMES

    converted_in: list[str] = []
    base = panel.writer

    class Counting:
        def __init__(self, frame: Any) -> None:
            self.frame = frame

        def toImage(self) -> QImage:
            converted_in.append(threading.current_thread().name)
            return self.frame.toImage()

    frames = Frames()
    monkeypatch.setattr(panel, "frame_provider", lambda: Counting(frames()))
    queued: list[Any] = []
    monkeypatch.setattr(base._pool, "start", lambda job: queued.append(job))
    panel.add("cat")
    taken = [panel.capture_one() for _ in range(MAX_WAITING_FRAMES + 2)]
    assert taken == [True] * MAX_WAITING_FRAMES + [False, False]
    assert converted_in == [], "a capture was converted in the GUI thread"
    assert base.waiting_frames == MAX_WAITING_FRAMES
    for job in [j for j in queued if hasattr(j, "frame")]:
        job.run()  # as the pool would, here: the conversion happens in run(), not in capture_one()
    assert len(converted_in) == MAX_WAITING_FRAMES and base.waiting_frames == 0
    qtbot.waitUntil(lambda: not base.busy, timeout=5000)


def test_closing_the_panel_while_it_counts_is_quiet(
        qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A count (or save) finishing after the panel was destroyed has nobody to tell: no error."""
    import time

    from squeezelens.gui import capture_writer
    from squeezelens.gui.capture_panel import CapturePanel
    from squeezelens.gui.settings import AppSettings

    real = capture_writer.count_images
    monkeypatch.setattr(capture_writer, "count_images", lambda folder: time.sleep(0.2) or real(folder))
    settings = AppSettings()
    settings.capture_folder = str(tmp_path)
    settings.camera_classes = ["a"]
    p = CapturePanel(settings, Frames())
    p.refresh()
    p.deleteLater()  # while the counts run in the writer's thread
    qtbot.wait(700)
