"""Capturing camera frames for training: a dataset folder, a class list (add, rename, remove, per-class counts),
a Capture button and a hold-to-record burst, written as ``<dataset>/<class folder>/capture-*.jpg``
(the layout the finetune window reads)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.class_folders import folder_name

from .capture_writer import CaptureWriter, class_folder
from .settings import AppSettings

#: Frames a second saved while "Hold to record" is held down.
BURST_FPS = 5
#: Held down while the camera page is shown (and focus is not in a text field), records like "Hold to record".
RECORD_KEY = Qt.Key.Key_R
#: How long a rename waits for captures still being written into the class folder.
RENAME_WAIT_MS = 2000


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a class (its folder would be hidden from the finetune scan), or None."""
    if folder_name(name).startswith("."):
        return (f"A class name cannot start with '.': the folder '{folder_name(name)}' would be hidden, "
                "and finetuning skips hidden folders.")
    return None


def _key(name: str) -> str:
    """Two class names with this in common would share a folder (case is ignored: macOS and Windows do)."""
    return folder_name(name).casefold()


def rename_folder(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; a change of case only (cat -> Cat) also works where the file system
    ignores case (``dst`` then "exists" as ``src`` itself), via a temporary name. Raises FileExistsError
    when ``dst`` is another folder or file."""
    if os.path.lexists(dst):
        try:
            same = os.path.samefile(src, dst)
        except OSError:
            same = False
        if not same:
            raise FileExistsError(f"{dst} already exists")
        tmp = src.with_name(f".rename-{os.getpid()}-{src.name}")
        src.rename(tmp)
        try:
            tmp.rename(dst)
        except OSError:
            tmp.rename(src)
            raise
        return
    src.rename(dst)


class CapturePanel(QWidget):
    """The capture controls under the video. ``frame_provider()`` returns the frame to save (or None)."""

    message = Signal(str)

    def __init__(self, settings: AppSettings, frame_provider: Callable[[], Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.frame_provider = frame_provider
        self.writer = CaptureWriter(self)
        self.writer.saved.connect(self._on_saved)
        self.writer.failed.connect(self._say)
        self.writer.counted.connect(self._on_counted)
        self.counts: dict[str, int] = {}
        self._count_token = 0  # the newest count asked for; older answers are ignored
        self._counted_token = 0
        self._last_burst_frame: Any = None

        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choose_folder = QPushButton("Dataset folder...")
        self.choose_folder.setToolTip("Where captures go: one subfolder per class")
        self.classes = QListWidget()
        self.classes.setObjectName("captureClasses")
        self.classes.setMaximumHeight(110)
        self.add_class = QPushButton("Add class...")
        self.rename_class = QPushButton("Rename...")
        self.remove_class = QPushButton("Remove...")
        self.remove_class.setToolTip("Remove the selected class from this list (its folder and images stay on disk)")
        self.capture = QPushButton("Capture")
        self.capture.setToolTip("Save the frame on show into the selected class (Space)")
        self.capture.setShortcut(Qt.Key.Key_Space)
        self.record = QPushButton("Hold to record")
        self.record.setToolTip(f"Save {BURST_FPS} frames a second while held down (or hold the R key)")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self._burst = QTimer(self, interval=1000 // BURST_FPS)
        self._burst.timeout.connect(self._burst_tick)

        top = QHBoxLayout()
        top.addWidget(QLabel("Capture to"))
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.choose_folder)
        side = QVBoxLayout()
        for b in (self.add_class, self.rename_class, self.remove_class, self.capture, self.record):
            side.addWidget(b)
        side.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.classes, 1)
        row.addLayout(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.status)

        self.choose_folder.clicked.connect(self.choose_dataset)
        self.add_class.clicked.connect(self._ask_add)
        self.rename_class.clicked.connect(self._ask_rename)
        self.remove_class.clicked.connect(self._ask_remove)
        self._capture_tips = (self.capture.toolTip(), self.record.toolTip())
        self.no_video: str | None = None  # why there is nothing to capture (set by the camera page)
        self.capture.clicked.connect(self.capture_one)
        self.record.pressed.connect(self.start_burst)
        self.record.released.connect(self.stop_burst)
        self.refresh()

    # -- dataset and classes -----------------------------------------------------------------------
    @property
    def dataset(self) -> str:
        return self.settings.capture_folder

    def set_dataset(self, folder: str) -> None:
        self.settings.capture_folder = folder
        self.refresh()

    def choose_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder for captures",
                                                  self.dataset or self.settings.last_folder)
        if folder:
            self.set_dataset(folder)

    def class_names(self) -> list[str]:
        """The saved class list, then class folders already in the dataset that it lacks."""
        names = self.settings.camera_classes
        removed = set(self.settings.camera_removed_classes)
        known = {folder_name(n) for n in names} | removed
        if self.dataset and Path(self.dataset).is_dir():
            try:
                folders = sorted(p.name for p in Path(self.dataset).iterdir()
                                 if p.is_dir() and not p.name.startswith("."))
            except OSError:
                folders = []
            names += [f for f in folders if f not in known]
        return names

    def refresh(self) -> None:
        """Re-read the class list; each class folder's images are counted in the writer's thread."""
        self.folder_label.setText(self.dataset or "(no folder chosen)")
        current = self.current_class()
        self.classes.clear()
        names = self.class_names()
        self.counts = {name: self.counts.get(name, 0) for name in names}  # until the new count comes
        self._count_token += 1
        if self.dataset:
            self.writer.count(self._count_token, {n: class_folder(self.dataset, n) for n in names})
        for name in names:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.classes.addItem(item)
            self._label(item)
        self.select(current or (names[0] if names else None))

    @property
    def counting(self) -> bool:
        """A count asked for by ``refresh()`` has not come back yet."""
        return self._counted_token != self._count_token and bool(self.dataset)

    def _on_counted(self, token: int, counts: dict[str, int]) -> None:
        if token != self._count_token:
            return
        self._counted_token = token
        self.counts.update(counts)
        for i in range(self.classes.count()):
            self._label(self.classes.item(i))

    def _label(self, item: QListWidgetItem) -> None:
        name = item.data(Qt.ItemDataRole.UserRole)
        n = self.counts.get(name, 0)
        item.setText(f"{name}  ({n} image{'' if n == 1 else 's'})")

    def current_class(self) -> str | None:
        item = self.classes.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def select(self, name: str | None) -> None:
        for i in range(self.classes.count()):
            if self.classes.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.classes.setCurrentRow(i)
                return

    def add(self, name: str) -> bool:
        """Add a class (its folder is made with the first capture); False with a message when not possible."""
        name = name.strip()
        if not name:
            return False
        problem = name_problem(name)
        if problem:
            self._say(problem)
            return False
        if _key(name) in {_key(n) for n in self.class_names()}:
            self._say(f"There is already a class '{name}'.")
            self.select(name)
            return False
        self.settings.camera_classes = [*self.settings.camera_classes, name]
        self.settings.camera_removed_classes = [n for n in self.settings.camera_removed_classes
                                                if n != folder_name(name)]
        self.refresh()
        self.select(name)
        return True

    def rename(self, old: str, new: str) -> bool:
        """Rename a class and its folder (if it has one); never merges into another class's folder."""
        new = new.strip()
        if not new or new == old:
            return False
        problem = name_problem(new)
        if problem:
            self._say(problem)
            return False
        others = {_key(n) for n in self.class_names() if n != old}
        if _key(new) in others:
            self._say(f"There is already a class '{new}'.")
            return False
        if self.dataset:
            # captures still queued would recreate the old folder: let them land first (bounded)
            self.stop_burst()
            if self.writer.busy and not self.writer.wait(RENAME_WAIT_MS):
                self._say("Captures are still being saved; try renaming again in a moment.")
                return False
            src, dst = class_folder(self.dataset, old), class_folder(self.dataset, new)
            if src.is_dir() and src != dst:
                try:
                    rename_folder(src, dst)
                except FileExistsError:
                    self._say(f"Cannot rename: {dst} already exists.")
                    return False
                except OSError as e:
                    self._say(f"Cannot rename the folder {src.name}: {e.strerror or e}")
                    return False
        names = self.settings.camera_classes
        self.settings.camera_classes = [new if n == old else n for n in names] if old in names else [*names, new]
        self.refresh()
        self.select(new)
        return True

    def remove(self, name: str) -> bool:
        """Take a class off the list. Never deletes anything on disk: its folder (and the images in it)
        stays where it is and the Finetune window still reads it; adding the class again brings it back."""
        if name not in self.class_names():
            return False
        self.settings.camera_classes = [n for n in self.settings.camera_classes if n != name]
        self.settings.camera_removed_classes = [*self.settings.camera_removed_classes, folder_name(name)]
        self.refresh()
        self._say(f"Removed '{name}' from the list; its folder and images were left on disk.")
        return True

    def remove_question(self, name: str) -> str:
        """The confirmation's text: what is removed and what is not."""
        n = self.counts.get(name, 0)
        where = class_folder(self.dataset, name) if self.dataset else None
        kept = (f"Its folder {where} and the {n} image{'' if n == 1 else 's'} in it stay on disk "
                "(nothing is deleted; the Finetune window still reads that folder)."
                if where is not None and where.is_dir() else "Nothing is deleted from disk.")
        return f"Remove the class '{name}' from this list?\n\n{kept}"

    def _ask_remove(self) -> None:
        name = self.current_class()
        if name is None:
            return
        answer = QMessageBox.question(self, "Remove class", self.remove_question(name),
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.remove(name)

    def set_video(self, reason: str | None) -> None:
        """``reason`` why there is no video to capture (buttons disabled, reason as tooltip), or None."""
        self.no_video = reason
        if reason is not None:
            self.stop_burst()
        for button, tip in zip((self.capture, self.record), self._capture_tips):
            button.setEnabled(reason is None)
            button.setToolTip(tip if reason is None else f"{reason}\n({tip})")

    def _ask_add(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Class name:")
        if ok:
            self.add(name)

    def _ask_rename(self) -> None:
        old = self.current_class()
        if old is None:
            return
        new, ok = QInputDialog.getText(self, "Rename class", "New name:", text=old)
        if ok:
            self.rename(old, new)

    # -- capturing ----------------------------------------------------------------------------------
    def capture_one(self) -> bool:
        """Save the frame on show into the selected class; False (with a message) when it cannot."""
        if not self.dataset:
            self._say("Choose a dataset folder first (Dataset folder...).")
            return False
        name = self.current_class()
        if name is None:
            self._say("Add a class first (Add class...).")
            return False
        frame = self.frame_provider()
        if frame is None:
            self._say("There is no video to capture: the camera is stopped or failed.")
            return False
        return self.writer.save(frame, self.dataset, name)

    def start_burst(self) -> None:
        self._last_burst_frame = None
        if self._burst_tick():
            self._burst.start()

    def stop_burst(self) -> None:
        self._burst.stop()

    def _burst_tick(self) -> bool:
        frame = self.frame_provider()
        if frame is not None and frame is self._last_burst_frame:
            return True  # the video is paused or stalled: the same frame once is enough
        self._last_burst_frame = frame
        ok = self.capture_one()
        if not ok:
            self._burst.stop()
        return ok

    def _on_saved(self, class_name: str, path: str) -> None:
        self.counts[class_name] = self.counts.get(class_name, 0) + 1
        for i in range(self.classes.count()):
            item = self.classes.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == class_name:
                self._label(item)
        self.status.setText(f"Saved {Path(path).parent.name}/{Path(path).name}")

    def _say(self, text: str) -> None:
        """A message on the panel's own status line (under the buttons that caused it), shown once:
        ``message`` lets a listener log it, the camera page no longer repeats it in the window's notice bar."""
        self.status.setText(text)
        self.message.emit(text)

    def shutdown(self, msecs: int = 1000) -> bool:
        """Stop the burst and wait (bounded) for captures still being written."""
        self._burst.stop()
        return self.writer.wait(msecs)
