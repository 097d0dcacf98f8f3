"""Saving camera frames into a finetuning dataset (``<dataset>/<class folder>/``), off the GUI thread.

Files are written whole to a temp file beside the target and then linked into place under a name
that does not exist yet, so a capture never overwrites a file and readers never see half a JPEG.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from squeezelens.core.class_folders import folder_name
from squeezelens.core.images import iter_image_files

from .late_signals import emit_unless_deleted

JPEG_QUALITY = 92
#: Saves allowed to wait for the writer; more (a very slow disk) are skipped and reported.
MAX_QUEUED = 16
#: Camera frames allowed to wait unconverted (each holds one of the camera's few buffers); more are skipped.
MAX_WAITING_FRAMES = 3


def class_folder(dataset: str | Path, class_name: str) -> Path:
    return Path(dataset) / folder_name(class_name)


def count_images(folder: Path) -> int:
    """Image files below ``folder`` (recursively, as the dataset scan reads a class folder)."""
    if not folder.is_dir():
        return 0
    return sum(1 for _ in iter_image_files(folder))


def save_image(image: QImage, folder: Path, stem: str) -> Path:
    """Write ``image`` as ``folder/stem.jpg`` (or ``stem-1.jpg``, ... when taken); never overwrites."""
    if image.isNull():
        raise ValueError("the frame has no image data")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".capture-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        if not image.save(tmp, "JPEG", JPEG_QUALITY):
            raise OSError(f"could not write a JPEG into {folder}")
        os.chmod(tmp, 0o644)
        n = 0
        while True:
            target = folder / (f"{stem}.jpg" if n == 0 else f"{stem}-{n}.jpg")
            try:
                os.link(tmp, target)  # fails if the name is taken: the existing file stays as it was
                return target
            except FileExistsError:
                n += 1
            except OSError:  # a file system without hard links (FAT, some network shares)
                if os.path.lexists(target):
                    n += 1
                    continue
                os.replace(tmp, target)
                tmp = ""
                return target
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)


class _Save(QRunnable):
    def __init__(self, writer: CaptureWriter, frame: Any, folder: Path, class_name: str, stem: str) -> None:
        super().__init__()
        self.writer, self.frame, self.folder, self.class_name, self.stem = writer, frame, folder, class_name, stem

    def run(self) -> None:
        w = self.writer
        try:
            # converted here, never in the GUI thread: QVideoFrame.toImage() holds the GIL and the frame's
            # lock, and its first call in a thread may re-enter Python (see camera_source.warm_frame_conversion)
            frame, self.frame = self.frame, None
            try:
                image = frame.toImage() if hasattr(frame, "toImage") else frame
            finally:
                del frame  # the camera's buffer goes back now, before the JPEG is encoded
                w._frame_converted()
            path = save_image(image, self.folder, self.stem)
        except Exception as e:  # noqa: BLE001 - a full disk or a read-only folder: say it, keep going
            w._done(self.class_name, "", f"Could not save the capture: {getattr(e, 'strerror', None) or e}")
        else:
            w._done(self.class_name, str(path), "")


class _Count(QRunnable):
    def __init__(self, writer: CaptureWriter, token: int, folders: dict[str, Path]) -> None:
        super().__init__()
        self.writer, self.token, self.folders = writer, token, folders

    def run(self) -> None:
        counts = {name: count_images(f) for name, f in self.folders.items()}
        emit_unless_deleted(self.writer, "counted", self.token, counts)


class CaptureWriter(QObject):
    """Encodes and writes captures in one background thread, in the order they were taken.

    ``saved(class_name, path)`` or ``failed(message)`` arrives in the GUI thread for each capture.
    ``count()`` counts class folders' images in the same thread, so ``counted(token, counts)`` includes
    exactly the captures whose ``saved`` came before it.
    """

    saved = Signal(str, str)
    failed = Signal(str)
    counted = Signal(int, object)  # token, {class name: images}
    _finished = Signal(str, str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._queued = 0
        self._count = 0
        self._lock = threading.Lock()
        self._waiting_frames = 0  # queued QVideoFrames not yet converted (written by both threads)
        self._finished.connect(self._on_finished)

    def save(self, frame: Any, dataset: str, class_name: str) -> bool:
        """Queue ``frame`` (a QVideoFrame or QImage) for ``dataset/<class>/``; False when too many wait."""
        video = hasattr(frame, "toImage")
        with self._lock:
            frames_waiting = self._waiting_frames
        if self._queued >= MAX_QUEUED or (video and frames_waiting >= MAX_WAITING_FRAMES):
            self.failed.emit("Captures are being taken faster than the disk saves them; some were skipped.")
            return False
        if video:
            with self._lock:
                self._waiting_frames += 1
        # the frame itself is queued (converted in the writer's thread, not here): at most MAX_QUEUED frames
        # wait, so the camera's buffers are held only briefly
        self._count += 1
        stem = time.strftime("capture-%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}-{self._count:04d}"
        self._queued += 1
        self._pool.start(_Save(self, frame, class_folder(dataset, class_name), class_name, stem))
        return True

    def count(self, token: int, folders: dict[str, Path]) -> None:
        """Count the images in ``folders`` ({class name: folder}) off the GUI thread; answers ``counted``."""
        self._pool.start(_Count(self, token, folders))

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def busy(self) -> bool:
        """Captures are queued or being written (or written, with their answer not yet delivered)."""
        return self._queued > 0

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _frame_converted(self) -> None:  # in the pool thread
        with self._lock:
            self._waiting_frames = max(0, self._waiting_frames - 1)

    @property
    def waiting_frames(self) -> int:
        """Camera frames queued and not yet converted to images (at most MAX_WAITING_FRAMES)."""
        with self._lock:
            return self._waiting_frames

    def _done(self, class_name: str, path: str, error: str) -> None:  # in the pool thread
        emit_unless_deleted(self, "_finished", class_name, path, error)

    def _on_finished(self, class_name: str, path: str, error: str) -> None:
        self._queued -= 1
        if error:
            self.failed.emit(error)
        else:
            self.saved.emit(class_name, path)
