"""The strip of recent images under the main view: a thumbnail and its top-1 each; click to see it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

MAX_ENTRIES = 60


@dataclass
class HistoryEntry:
    """One classified image: what to show again without running the model."""

    title: str
    source: str | QImage  # a path, or the image data itself (paste, drop)
    image: QImage  # the display image
    prediction: Any = None  # core Prediction once it arrives
    thumb: QImage = field(default_factory=QImage)  # set when it enters the history
    pixels_dropped: bool = False  # old pasted data: only the thumbnail and the result are kept


class HistoryStrip(QListWidget):
    """Newest first. ``entryActivated`` carries the clicked entry."""

    entryActivated = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(72, 72))
        self.setGridSize(QSize(120, 112))
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setFixedHeight(118)
        self.setHorizontalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setAccessibleName("History")
        self._clicked: QListWidgetItem | None = None
        self.itemClicked.connect(self._on_clicked)
        self.itemActivated.connect(self._on_activated)

    def _on_clicked(self, item: QListWidgetItem) -> None:
        # where the style activates on a single click, Qt sends itemClicked *and* itemActivated for it
        self._clicked = item
        QTimer.singleShot(0, self._forget_click)
        self.entryActivated.emit(item.data(Qt.ItemDataRole.UserRole))

    def _forget_click(self) -> None:
        self._clicked = None

    def _on_activated(self, item: QListWidgetItem) -> None:
        if item is self._clicked:
            self._clicked = None
            return
        self.entryActivated.emit(item.data(Qt.ItemDataRole.UserRole))

    def add(self, entry: HistoryEntry, thumb: QImage) -> None:
        """Put ``entry`` first (the oldest beyond :data:`MAX_ENTRIES` drop off) and show the strip."""
        item = QListWidgetItem(QIcon(QPixmap.fromImage(thumb)), _caption(entry))
        item.setData(Qt.ItemDataRole.UserRole, entry)
        item.setToolTip(entry.title)
        self.insertItem(0, item)
        self.show()
        while self.count() > MAX_ENTRIES:
            self.takeItem(self.count() - 1)

    def update_entry(self, entry: HistoryEntry) -> None:
        for i in range(self.count()):
            item = self.item(i)
            if item.data(Qt.ItemDataRole.UserRole) is entry:
                item.setText(_caption(entry))
                return

    def entries(self) -> list[HistoryEntry]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]


def _caption(entry: HistoryEntry) -> str:
    pred = entry.prediction
    if pred is None:
        return "..."
    if not pred.ok:
        return "error"
    top = pred.top[0]
    label = top.label if len(top.label) <= 16 else top.label[:15] + "\u2026"
    if getattr(pred, "unknown", None):  # issue 16: none of the model's classes
        return f"Unknown\n({label} {top.prob * 100:.0f}%)"
    return f"{label}\n{top.prob * 100:.0f}%"
