"""The confusion matrix (rows: true class, columns: predicted) and the images of one of its cells."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QListWidget, QListWidgetItem, QTableView, QWidget

from .image_loader import placeholder_thumbnail, read_for_display, thumbnail
from .tasks import Task, TaskContext, start_task
from .wording import plural

Index = QModelIndex | QPersistentModelIndex
CELL_THUMB = 96
MAX_CELL_IMAGES = 300  # a cell lists (and loads thumbnails for) at most this many images; the rest are counted
THUMBNAIL_TASKS = 2  # a cell's thumbnails load in this many tasks side by side
RIGHT = QColor(46, 160, 67)
WRONG = QColor(215, 58, 73)


class ConfusionModel(QAbstractTableModel):
    """``counts[true][predicted]`` with class names as headers; colour deepens with the share of the row."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.names: list[str] = []
        self.counts: list[list[int]] = []

    def set_matrix(self, names: list[str], counts: list[list[int]]) -> None:
        self.beginResetModel()
        self.names = list(names)
        self.counts = [list(r) for r in counts]
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.counts)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.counts)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        t, p = index.row(), index.column()
        n = self.counts[t][p]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(n)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignCenter
        if role == Qt.ItemDataRole.BackgroundRole and n:
            share = n / max(1, sum(self.counts[t]))
            colour = QColor(RIGHT if t == p else WRONG)
            colour.setAlpha(int(40 + 200 * share))
            return colour
        if role == Qt.ItemDataRole.ForegroundRole and n:
            share = n / max(1, sum(self.counts[t]))
            return QColor(Qt.GlobalColor.white) if share > 0.45 else None
        if role == Qt.ItemDataRole.ToolTipRole:
            what = "correct" if t == p else f"predicted as {self.names[p]}"
            return f"{plural(n, 'validation image')} of {self.names[t]}: {what}\nclick to see them"
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.names):
            return self.names[section]
        if role == Qt.ItemDataRole.ToolTipRole and 0 <= section < len(self.names):
            kind = "predicted" if orientation == Qt.Orientation.Horizontal else "true"
            return f"{kind} class: {self.names[section]}"
        return None


class ConfusionView(QTableView):
    """The matrix as a table; ``cellChosen(true_index, predicted_index)`` when a cell becomes current
    (clicked, or reached with the arrow keys)."""

    cellChosen = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix = ConfusionModel(self)
        self.setModel(self.matrix)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # cells share the space, but never narrower than the longest class name: then the table scrolls
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setMinimumSectionSize(30)
        self.setCornerButtonEnabled(False)
        self.setAccessibleName("Confusion matrix: rows are true classes, columns predicted classes")
        self.selectionModel().currentChanged.connect(self._on_current)

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.cellChosen.emit(current.row(), current.column())

    def set_matrix(self, names: list[str], counts: list[list[int]]) -> None:
        header = self.horizontalHeader()
        widest = max((header.fontMetrics().horizontalAdvance(n) for n in names), default=0)
        header.setMinimumSectionSize(max(48, widest + 12))
        self.matrix.set_matrix(names, counts)

    def cell_count(self, true_index: int, pred_index: int) -> int:
        """The count shown in a cell (read back from the model, as a user sees it)."""
        return int(self.matrix.data(self.matrix.index(true_index, pred_index)))


def load_thumbnails(generation: int, items: list[tuple[int, Path]],
                    context: TaskContext) -> Iterator[tuple[int, int, QImage]]:
    """A thumbnail task: ``(generation, index, thumbnail)`` for each ``(index, path)`` in turn (a placeholder
    where Qt cannot read the file); stopped between two files when cancelled."""
    for i, path in items:
        try:
            image = thumbnail(read_for_display(str(path), CELL_THUMB * 2), CELL_THUMB)
        except OSError:
            image = placeholder_thumbnail(CELL_THUMB)
        yield generation, i, image


class ThumbnailLoader(QObject):
    """Thumbnails of image files in :data:`THUMBNAIL_TASKS` background tasks; answers carry the request's
    generation. A new request cancels the thumbnails of the one before that are not loaded yet."""

    loaded = Signal(int, int, QImage)  # generation, index, thumbnail (a placeholder if Qt cannot read it)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: list[Task] = []

    @property
    def running(self) -> bool:
        return any(not t.done for t in self._tasks)

    def load(self, generation: int, paths: list[Path]) -> None:
        self.cancel()
        items = list(enumerate(paths))
        for part in range(min(THUMBNAIL_TASKS, len(items))):
            self._tasks.append(start_task(partial(load_thumbnails, generation, items[part::THUMBNAIL_TASKS]),
                                          name="confusion-thumbnails", on_progress=self._on_thumbnail,
                                          owner=self))

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = [t for t in self._tasks if not t.done]

    def wait(self, msecs: int = 2000) -> bool:
        """Cancel the loads and wait for them (``msecs`` ms in all, at most); True when none is left running."""
        self.cancel()
        deadline = time.monotonic() + msecs / 1000
        for task in self._tasks:
            task.wait(int((deadline - time.monotonic()) * 1000))
        self._tasks = [t for t in self._tasks if not t.done]
        return not self._tasks

    def _on_thumbnail(self, answer: tuple[int, int, QImage]) -> None:
        self.loaded.emit(*answer)


class CellImages(QListWidget):
    """The images of one confusion-matrix cell: thumbnails (loaded off the GUI thread) with file names."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(CELL_THUMB, CELL_THUMB))
        self.setGridSize(QSize(CELL_THUMB + 36, CELL_THUMB + 34))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.loader = ThumbnailLoader(self)
        self.loader.loaded.connect(self._on_thumb)
        self._generation = 0
        self._blank = QIcon(QPixmap.fromImage(placeholder_thumbnail(CELL_THUMB)))

    def show_paths(self, paths: list[Path]) -> None:
        """List ``paths`` (the first :data:`MAX_CELL_IMAGES`, then a "... and N more" entry)."""
        self._generation += 1
        self.clear()
        shown = list(paths[:MAX_CELL_IMAGES])
        for p in shown:
            item = QListWidgetItem(self._blank, p.name)
            item.setToolTip(str(p))
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            self.addItem(item)
        if len(paths) > len(shown):
            more = QListWidgetItem(f"... and {len(paths) - len(shown)} more")
            more.setFlags(Qt.ItemFlag.NoItemFlags)
            self.addItem(more)
        self.loader.load(self._generation, shown)

    def paths(self) -> list[str]:
        """The image paths listed (not the "... more" entry)."""
        items = (self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count()))
        return [p for p in items if p is not None]

    def _on_thumb(self, generation: int, index: int, image: QImage) -> None:
        if generation == self._generation and index < self.count():
            self.item(index).setIcon(QIcon(QPixmap.fromImage(image)))
