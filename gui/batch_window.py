"""The results table for a folder or many files: fills in as results arrive (with thumbnails), sortable,
exportable as CSV (one row per image, or one per image and rank)."""

from __future__ import annotations

import os
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
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.atomic_files import write_text_atomic
from squeezelens.core.class_folders import CopyReport, copy_into_class_folders
from squeezelens.core.errors import SqueezeLensError
from squeezelens.core.report import format_csv, format_csv_per_image, terminal_text

from .batch_thumbs import THUMB_PX, ThumbnailCache
from .tasks import Task, TaskContext, start_task
from .unknown_view import UnknownFilterProxy, filter_box
from .wording import plural

COLUMNS = ("File", "Top-1", "Probability", "Top-5")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: The Export CSV dialog's two layouts (its file-type filters): name -> (filter, formatter).
CSV_PER_IMAGE = "One row per image: path, top-1 label, probability (*.csv)"
CSV_PER_RANK = "One row per image and rank: the CLI's --format csv (*.csv)"
Index = QModelIndex | QPersistentModelIndex


class BatchTableModel(QAbstractTableModel):
    """One row per input; ``None`` until its prediction arrives."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sources: list[str] = []
        self.names: list[str] = []  # what the File column shows: the path below the inputs' common folder
        self.preds: list[Any] = []
        self.done_count = 0  # counted as results arrive: the summary must not rescan 50,000 rows each time
        self.error_count = 0
        self.thumbs: ThumbnailCache | None = None  # the File column's thumbnails, when set

    def set_thumbnails(self, thumbs: ThumbnailCache) -> None:
        self.thumbs = thumbs
        thumbs.ready.connect(self._on_thumbnail)

    def _on_thumbnail(self, path: str) -> None:
        try:
            row = self.sources.index(path)
        except ValueError:
            return
        index = self.index(row, 0)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def reset(self, sources: list[str]) -> None:
        self.beginResetModel()
        self.sources = list(sources)
        self.names = _relative_names(self.sources)
        self.preds = [None] * len(sources)
        self.done_count = self.error_count = 0
        self.endResetModel()

    def set_prediction(self, row: int, pred: Any) -> None:
        if 0 <= row < len(self.preds):
            old = self.preds[row]
            if old is None:
                self.done_count += 1
            elif not old.ok:
                self.error_count -= 1
            self.error_count += 0 if pred.ok else 1
            self.preds[row] = pred
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def done(self) -> list[Any]:
        return [p for p in self.preds if p is not None]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.sources)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        src, pred = self.sources[row], self.preds[row]
        if role == Qt.ItemDataRole.ToolTipRole:
            return terminal_text(pred.error if pred is not None and not pred.ok else src)  # non-UTF-8 names escaped
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.get(src) if col == 0 and self.thumbs is not None and src else None
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role not in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            return None
        sorting = role == SORT_ROLE
        if col == 0:
            return terminal_text(self.names[row])
        if pred is None:
            return (-1.0 if col == 2 else "") if sorting else ("..." if col == 1 else "")
        if not pred.ok:  # sorted after every label
            return {1: "\uffff" if sorting else "error", 2: -1.0 if sorting else "", 3: terminal_text(pred.error)}[col]
        top = pred.top[0]
        if col == 1:
            if pred.unknown and not sorting:
                return f"Unknown (closest: {top.label})"
            return top.label + (" (untrained)" if pred.untrained and not sorting else "")
        if col == 2:
            return top.prob if sorting else f"{top.prob * 100:.1f}%"
        return ", ".join(f"{t.label} {_pct(t.prob)}" for t in pred.top)


def _relative_names(sources: list[str]) -> list[str]:
    """Paths below the common folder of all inputs (``sub/b.jpg``), so names from subfolders stay apart."""
    folders = [os.path.dirname(s) for s in sources if s]
    try:
        root = os.path.commonpath(folders) if folders else ""
    except ValueError:  # different drives on Windows
        root = ""
    return [os.path.relpath(s, root) if root and s else (Path(s).name or s) for s in sources]


def summary_text(total: int, done: int, errors: int, finished: bool, cancelled: bool = False) -> str:
    """The batch's counts: ``"Classifying: 3 of 6 images..."`` while it runs, then
    ``"6 images: 5 classified, 1 could not be read"`` (``errors`` are among ``done``)."""
    if not finished:
        return f"Classifying: {done} of {plural(total, 'image')}..."
    ok = done - errors
    parts = [f"{ok} classified"]
    if errors:
        parts.append(f"{errors} could not be read")
    if cancelled:
        parts.append(f"{total - done} not done (cancelled)" if done < total else "cancelled")
    return f"{plural(total, 'image')}: " + ", ".join(parts)


def _pct(p: float) -> str:
    return f"{p * 100:.0f}%" if p >= 0.095 else f"{p * 100:.1f}%"


class BatchWindow(QWidget):
    """A separate window per batch; closing it cancels the batch if it is still running."""

    cancelRequested = Signal(int)  # req
    openImage = Signal(object)  # double-clicked row's path (a str, kept whole: non-UTF-8 names do not survive QString)

    def __init__(self, req: int, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.req = req
        self.running = True
        self.cancelled = False
        self._cancelling = False
        self.untrained = False
        self.last_folder = ""
        self._copy: Task | None = None  # the copy to class folders going on, if any
        self.setWindowTitle("SqueezeLens - batch results")
        self.resize(900, 560)

        self.model = BatchTableModel(self)
        self.proxy = UnknownFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until the user sorts
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        # a long name keeps its end ("...-0001.jpg" vs "...-0002.jpg" stay apart); the tooltip has the whole path
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        self.thumbs = ThumbnailCache(parent=self)
        self.model.set_thumbnails(self.thumbs)  # only the rows painted ask for theirs
        self.table.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.table.verticalHeader().setDefaultSectionSize(THUMB_PX + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(0, 220 + THUMB_PX)
        self.table.setColumnWidth(1, 200)
        self.table.setColumnWidth(2, 90)
        self.table.doubleClicked.connect(self._open_row)

        self.summary = QLabel("Looking for images...")
        self.summary.setObjectName("batchSummary")
        # the untrained warning and the last action's answer ("Saved results.csv") have lines of their own,
        # so neither replaces the counts
        self.untrained_label = QLabel("UNTRAINED model: these results are random.")
        self.untrained_label.setStyleSheet("background:#f6c343; color:#1d1d1d; border-radius:4px; padding:2px 6px;")
        self.untrained_label.hide()
        self.action_status = QLabel()
        self.action_status.setObjectName("batchActionStatus")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button = QPushButton("Export CSV...")
        self.export_button.setShortcut(QKeySequence.StandardKey.Save)
        self.export_button.clicked.connect(self.export_csv_dialog)
        self.copy_button = QPushButton("Copy to class folders...")
        self.copy_button.clicked.connect(self.copy_dialog)
        for b in (self.export_button, self.copy_button):
            b.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Close this window (Esc, Ctrl+W); a running batch is cancelled")
        self.close_button.clicked.connect(self.close)
        for keys in (QKeySequence(Qt.Key.Key_Escape), QKeySequence(QKeySequence.StandardKey.Close),
                     QKeySequence("Ctrl+W")):
            QShortcut(keys, self, activated=self.close)

        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        self.filter = filter_box(self.proxy)  # all / unknown only / known only
        top.addWidget(self.filter)
        top.addWidget(self.untrained_label)
        top.addWidget(self.progress, 1)
        top.addWidget(self.cancel_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.action_status, 1)
        bottom.addWidget(self.export_button)
        bottom.addWidget(self.copy_button)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

    # -- filled by the main window from the worker's answers -----------------------------------------
    def start(self, sources: list[str]) -> None:
        self.model.reset(sources)
        self.progress.setRange(0, max(len(sources), 1))
        self.progress.setValue(0)
        self._update_summary()

    def add(self, row: int, pred: Any) -> None:
        self.untrained = self.untrained or pred.untrained
        self.model.set_prediction(row, pred)
        self.progress.setValue(self.model.done_count)
        self._update_summary()

    def finish(self, cancelled: bool) -> None:
        self.running = False
        self.cancelled = cancelled
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, max(len(self.model.sources), 1))
        self.progress.setValue(self.model.done_count if cancelled else self.progress.maximum())
        self._update_summary(cancelled)
        self.export_button.setEnabled(self.model.done_count > 0)
        self.copy_button.setEnabled(self.model.done_count > self.model.error_count)
        if self.isHidden():
            self.deleteLater()  # closed while running: nothing left to show

    def _update_summary(self, cancelled: bool = False) -> None:
        self.summary.setText(summary_text(len(self.model.sources), self.model.done_count, self.model.error_count,
                                          finished=not self.running, cancelled=cancelled))
        self.untrained_label.setVisible(self.untrained)
        done, total = self.model.done_count, len(self.model.sources)
        self.setWindowTitle(f"SqueezeLens - {done}/{total} classified")

    def cancel(self) -> None:
        if self.running and not self._cancelling:
            self._cancelling = True
            self.cancelRequested.emit(self.req)
            self.summary.setText(self.summary.text() + " - cancelling...")  # the next count replaces it
        if self._copy is not None:
            self._copy.cancel()

    def _open_row(self, index: QModelIndex) -> None:
        row = self.proxy.mapToSource(index).row()
        self.openImage.emit(self.model.sources[row])

    # -- export and copy ------------------------------------------------------------------------------
    def export_csv(self, path: str, per_image: bool = False) -> None:
        """Write the finished rows as CSV, atomically: one row per input and rank (the CLI's CSV), or with
        ``per_image`` one row per input (path, top-1 label, probability, unknown, error)."""
        done = self.model.done()
        write_text_atomic(path, format_csv_per_image(done) if per_image else format_csv(done, self.untrained))

    def export_csv_dialog(self) -> None:
        start = str(Path(self.last_folder or Path.home()) / "squeezelens-results.csv")
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export results as CSV (choose one row per image, or per image and rank)", start,
            f"{CSV_PER_IMAGE};;{CSV_PER_RANK}", CSV_PER_IMAGE)
        if not path:
            return
        per_image = chosen != CSV_PER_RANK
        try:
            self.export_csv(path, per_image=per_image)
            layout = "one row per image" if per_image else "one row per image and rank"
            self.action_status.setText(f"Saved {Path(path).name} ({layout})")
            self.action_status.setToolTip(path)
        except SqueezeLensError as e:
            self.action_status.setText(str(e))

    def copy_items(self) -> list[tuple[str, str]]:
        return [(src, p.top[0].label) for src, p in zip(self.model.sources, self.model.preds) if p is not None and p.ok]

    def copy_to(self, folder: str) -> None:
        """Copy each classified image into ``folder/<top-1 class>/`` in a background task."""
        items = self.copy_items()
        self.copy_button.setEnabled(False)
        self.progress.setRange(0, max(len(items), 1))
        self.progress.setValue(0)
        self.action_status.setText(f"Copying {plural(len(items), 'image')} into {folder}...")

        def copy(context: TaskContext) -> CopyReport:
            report = CopyReport()
            try:
                report = copy_into_class_folders(
                    items, folder, progress=lambda done, total: context.progress(done), cancel=context.cancel)
            except Exception as e:  # noqa: BLE001 - the window must get its button back whatever happened
                report.failed.append(f"{folder}: {type(e).__name__}: {e}")
            return report

        self._copy = start_task(copy, name="copy-to-class-folders", on_progress=self._on_copy_progress,
                                on_result=self._on_copy_finished, owner=self)

    def copy_dialog(self) -> None:
        """Ask where to sort the images into class folders: never inside the folder they came from by default,
        and with an untrained model only after saying its classes are random."""
        if self.untrained and QMessageBox.question(
                self, "Sort with an untrained model?",
                "This model is untrained: its classes are random, so the folders would sort nothing.\n\n"
                "Copy the images anyway?") != QMessageBox.StandardButton.Yes:
            return
        start = str(Path(self.last_folder).parent) if self.last_folder else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Copy images into class folders under", start)
        if folder:
            self.copy_to(folder)

    def _on_copy_progress(self, done: int) -> None:
        self.progress.setValue(done)

    def _on_copy_finished(self, report: CopyReport) -> None:
        self._copy = None
        self.copy_button.setEnabled(True)
        if self.isHidden():
            self.deleteLater()
        classes = len({dst.parent for _, dst in report.copied})
        text = f"Copied {plural(len(report.copied), 'image')} into {plural(classes, 'class folder')}"
        if report.failed:
            text += f"; {len(report.failed)} failed: {report.failed[0]}"
        if report.cancelled:
            text += " (cancelled)"
        self.action_status.setText(text)

    def wait_for_copies(self, msecs: int = 2000) -> bool:
        """Cancel the copy going on and wait for it (``msecs`` ms at most); True when none is left running."""
        self.thumbs.stop(msecs)
        if self._copy is None:
            return True
        self._copy.cancel()
        return self._copy.wait(msecs)

    def closeEvent(self, event: Any) -> None:
        """Closing cancels; the window is freed now if idle, else when its batch or copy has stopped."""
        self.cancel()
        self.thumbs.stop()
        super().closeEvent(event)
        if not self.running and self._copy is None:
            self.deleteLater()
