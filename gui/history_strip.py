"""The strip of recent images under the main view: a thumbnail and its top-1 each; click to see it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from .wording import format_prob

MAX_ENTRIES = 60
ICON_SIDE = 72  # logical pixels; the thumbnails carry twice that (image_loader.THUMB_SIDE) for 2x screens
CELL_WIDTH = 120
CAPTION_LINES = 2
PADDING = 10  # around icon and caption inside a cell
NOTE_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass
class HistoryEntry:
    """One classified image: what to show again without running the model."""

    title: str
    source: str | QImage  # a path, or the image data itself (paste, drop)
    image: QImage  # the display image
    prediction: Any = None  # core Prediction once it arrives
    thumb: QImage = field(default_factory=QImage)  # set when it enters the history
    pixels_dropped: bool = False  # old pasted data: only the thumbnail and the result are kept
    error: str | None = None  # why it could not be classified (no prediction will come)


class HistoryStrip(QListWidget):
    """Newest first. ``entryActivated`` carries the clicked entry.

    One row, scrolled sideways; each cell is tall enough for the icon and a two-line caption. Beyond
    :data:`MAX_ENTRIES` the oldest drop off and a last cell says so.
    """

    entryActivated = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(ICON_SIDE, ICON_SIDE))
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # one row: nothing to scroll
        self.setHorizontalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setAccessibleName("History")
        self._note: QListWidgetItem | None = None
        self._fit_height()
        self._clicked: QListWidgetItem | None = None
        self.itemClicked.connect(self._on_clicked)
        self.itemActivated.connect(self._on_activated)

    def _fit_height(self) -> None:
        """Cells hold the icon and :data:`CAPTION_LINES` caption lines; the strip holds a cell and its scroll bar."""
        cell_h = ICON_SIDE + CAPTION_LINES * self.fontMetrics().lineSpacing() + PADDING
        self.setGridSize(QSize(CELL_WIDTH, cell_h))
        bar = self.style().pixelMetric(self.style().PixelMetric.PM_ScrollBarExtent)
        self.setFixedHeight(cell_h + bar + 2 * self.frameWidth() + 2)

    def changeEvent(self, event: Any) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.FontChange:
            self._fit_height()

    def _on_clicked(self, item: QListWidgetItem) -> None:
        # where the style activates on a single click, Qt sends itemClicked *and* itemActivated for it
        entry = item.data(Qt.ItemDataRole.UserRole)
        if entry is None:  # the "showing the last 60" note
            return
        self._clicked = item
        QTimer.singleShot(0, self._forget_click)
        self.entryActivated.emit(entry)

    def _forget_click(self) -> None:
        self._clicked = None

    def _on_activated(self, item: QListWidgetItem) -> None:
        if item is self._clicked:
            self._clicked = None
            return
        entry = item.data(Qt.ItemDataRole.UserRole)
        if entry is not None:
            self.entryActivated.emit(entry)

    def _icon(self, thumb: QImage) -> QIcon:
        """``thumb`` with up to twice the icon's pixels (or this screen's ratio, if higher) and that device
        pixel ratio set, so the icon stays sharp on a 2x screen (also after the window moves to one)."""
        dpr = max(2.0, self.devicePixelRatioF())
        side = round(ICON_SIDE * dpr)
        pixmap = QPixmap.fromImage(thumb)
        if max(pixmap.width(), pixmap.height()) > side:
            pixmap = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        pixmap.setDevicePixelRatio(max(1.0, max(pixmap.width(), pixmap.height()) / ICON_SIDE))
        return QIcon(pixmap)

    def add(self, entry: HistoryEntry, thumb: QImage) -> None:
        """Put ``entry`` first (the oldest beyond :data:`MAX_ENTRIES` drop off, and a note says so) and show
        the strip."""
        item = QListWidgetItem(self._icon(thumb), _caption(entry))
        item.setData(Qt.ItemDataRole.UserRole, entry)
        item.setToolTip(_tooltip(entry))
        self.insertItem(0, item)
        self.show()
        dropped = False
        while len(self.entries()) > MAX_ENTRIES:
            last = self.count() - (2 if self._note is not None else 1)
            self.takeItem(last)
            dropped = True
        if dropped and self._note is None:
            self._note = QListWidgetItem(f"showing the\nlast {MAX_ENTRIES}")
            self._note.setData(NOTE_ROLE, True)
            self._note.setFlags(Qt.ItemFlag.NoItemFlags)
            self._note.setToolTip(f"The history keeps the {MAX_ENTRIES} most recent images; older ones "
                                  "were dropped from this strip.")
            self._note.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.addItem(self._note)

    def update_entry(self, entry: HistoryEntry) -> None:
        for i in range(self.count()):
            item = self.item(i)
            if item.data(Qt.ItemDataRole.UserRole) is entry:
                item.setText(_caption(entry))
                item.setToolTip(_tooltip(entry))
                return

    def mark_failed(self, entry: HistoryEntry, message: str) -> None:
        """``entry`` will get no prediction (the model failed, the job stopped): its caption says so."""
        entry.error = message
        self.update_entry(entry)

    def entries(self) -> list[HistoryEntry]:
        found = (self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count()))
        return [e for e in found if e is not None]

    def dropped_note(self) -> str | None:
        """The visible note that older entries were dropped (None while all are kept)."""
        return self._note.text() if self._note is not None else None


def _caption(entry: HistoryEntry) -> str:
    pred = entry.prediction
    if pred is None:
        return "not classified" if entry.error else "..."
    if not pred.ok:
        return "error"
    top = pred.top[0]
    label = top.label if len(top.label) <= 16 else top.label[:15] + "\u2026"
    if getattr(pred, "unknown", None):  # issue 16: none of the model's classes
        return f"Unknown\n({label} {format_prob(top.prob)})"
    return f"{label}\n{format_prob(top.prob)}"


def _tooltip(entry: HistoryEntry) -> str:
    pred = entry.prediction
    if pred is None and entry.error:
        return f"{entry.title}\nNot classified: {entry.error}"
    if pred is not None and not pred.ok:
        reason = getattr(pred, "error_reason", None) or getattr(pred, "error", None)
        return f"{entry.title}\n{reason}" if reason else entry.title
    return entry.title
