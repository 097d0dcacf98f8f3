"""Small thumbnails for the batch window's table: decoded off the GUI thread (one background task at a
time, fed from a queue of the rows the table actually paints), kept in a bounded cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from .image_loader import read_for_display, thumbnail
from .tasks import Task, TaskContext, start_task

#: Thumbnail side in the table, in device-independent pixels (rows grow to fit it).
THUMB_PX = 40
#: Thumbnails kept (about 40x40x4 bytes x 2 for 2x screens each: a few MB), least recently shown dropped first.
CACHE_SIZE = 2000
#: Paths decoded per background task before the queue is looked at again (newest requests first).
CHUNK = 16


def _decode(paths: list[str], side: int) -> Callable[[TaskContext], Generator[Any, None, None]]:
    def run(context: TaskContext) -> Generator[Any, None, None]:
        for path in paths:
            if context.cancelled:
                return
            try:
                # JPEGs decode at reduced scale; a 12 MP photo gives its thumbnail in a few ms
                image = thumbnail(read_for_display(path, max_side=side * 4), side)
            except Exception:  # noqa: BLE001 - an unreadable file just has no thumbnail (its row says why)
                image = QImage()
            yield path, image
    return run


class ThumbnailCache(QObject):
    """``get(path)`` returns the cached pixmap or None (and queues the path); ``ready(path)`` when it comes."""

    ready = Signal(str)

    def __init__(self, side: int = THUMB_PX, scale: float = 2.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.scale = scale  # decoded at side * scale pixels: sharp on 2x screens
        self._cache: OrderedDict[str, QPixmap | None] = OrderedDict()
        self._queue: list[str] = []
        self._queued: set[str] = set()
        self._task: Task | None = None

    def get(self, path: str) -> QPixmap | None:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        if path not in self._queued:
            self._queued.add(path)
            self._queue.append(path)
            self._pump()
        return None

    def _pump(self) -> None:
        if self._task is not None or not self._queue:
            return
        chunk, self._queue = self._queue[-CHUNK:], self._queue[:-CHUNK]  # the newest asked for: on screen now
        self._task = start_task(_decode(chunk, round(self.side * self.scale)), name="batch-thumbnails",
                                on_progress=self._on_image, on_finished=self._on_finished, owner=self)

    def _on_image(self, item: tuple[str, QImage]) -> None:
        path, image = item
        self._queued.discard(path)
        pixmap = None
        if not image.isNull():
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self.scale)
        self._cache[path] = pixmap
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self.ready.emit(path)

    def _on_finished(self) -> None:
        self._task = None
        self._pump()

    @property
    def busy(self) -> bool:
        return self._task is not None

    def stop(self, msecs: int = 2000) -> bool:
        """Forget the queue, cancel the decoding going on and wait for it (``msecs`` ms at most)."""
        self._queue.clear()
        self._queued.clear()
        task, self._task = self._task, None
        if task is None:
            return True
        task.cancel()
        return task.wait(msecs)
