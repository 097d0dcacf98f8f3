"""The review queue: training images whose folder label looks wrong, with keep / move / remove, then retrain.

The ranking is core's (:func:`squeezelens.core.review.review_dataset`, run as a background task:
features come from the finetune feature cache where they are there). Moving and removing are
core's too: a move never overwrites (``name (2).png``), "Remove" moves the file to the dataset's
``.squeezelens-trash/`` folder (restorable with Undo), nothing is deleted.

Keys: K keep, M move to the suggested class, Delete remove, Ctrl+Z undo the last action.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QKeyEvent, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.errors import SqueezeLensError

from .tasks import Task, TaskContext, start_task

COLUMNS = ("Image", "File", "Given label", "Suggested", "Score", "Done")
THUMB = 64


class ReviewWindow(QWidget):
    """One dataset folder's review queue. ``retrainRequested(folder)`` asks for the Finetune window."""

    retrainRequested = Signal(str)

    def __init__(self, data_dir: str = "", model: str | None = None, weights: str | None = None,
                 input_size: int | None = None, device: str = "auto", parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Review labels - SqueezeLens")
        self.model, self.weights, self.input_size, self.device = model, weights, input_size, device
        self.result: Any = None
        self.rows: list[Any] = []  # Suspect per table row
        self.current_paths: list[Path] = []  # where each row's file is now
        self.undo_stack: list[tuple[int, str, Path, Path]] = []  # (row, action, from, to)
        self._task: Task | None = None
        self._thumb_task: Task | None = None  # decoding the queue's thumbnails

        self.folder_edit = QLineEdit(data_dir)
        self.folder_edit.setPlaceholderText("Dataset folder (one subfolder per class)")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        self.find_button = QPushButton("Find suspicious labels")
        self.find_button.setDefault(True)
        self.find_button.clicked.connect(self.start)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.summary = QLabel("Looks for images whose folder disagrees with what the rest of the data says.")
        self.summary.setWordWrap(True)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, THUMB + 8)
        self.table.setColumnWidth(1, 240)

        self.keep_button = QPushButton("Keep (K)")
        self.keep_button.clicked.connect(self.keep_selected)
        self.move_button = QPushButton("Move to suggested (M)")
        self.move_button.clicked.connect(lambda: self.move_selected(None))
        self.class_box = QComboBox()
        self.class_box.setToolTip("Move the selected image to this class")
        self.class_box.setMinimumContentsLength(14)
        self.class_box.activated.connect(lambda _i: self.move_selected(self.class_box.currentText()))
        self.remove_button = QPushButton("Remove from dataset (Del)")
        self.remove_button.setToolTip("Moves the file to the dataset's .squeezelens-trash folder; Undo puts it back")
        self.remove_button.clicked.connect(self.remove_selected)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo)
        self.retrain_button = QPushButton("Retrain...")
        self.retrain_button.setToolTip("Open the Finetune window on this folder")
        self.retrain_button.clicked.connect(lambda: self.retrainRequested.emit(self.folder_edit.text()))

        top = QHBoxLayout()
        top.addWidget(self.folder_edit, 1)
        top.addWidget(browse)
        top.addWidget(self.find_button)
        actions = QHBoxLayout()
        for w in (self.keep_button, self.move_button, QLabel("or move to"), self.class_box, self.remove_button,
                  self.undo_button):
            actions.addWidget(w)
        actions.addStretch(1)
        actions.addWidget(self.retrain_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        # K, M and Delete while the list has the focus (a QShortcut would lose them to the list's type-ahead search)
        self.table.installEventFilter(self)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Undo), self, self.undo)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Close), self, self.close)
        self._enable_actions(False)
        self.resize(1000, 680)

    # -- ranking --------------------------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def start(self) -> bool:
        """Rank the folder's images in a background task; False when one is already running."""
        if self._task is not None:
            return False
        folder = self.folder_edit.text().strip()
        self.find_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.summary.setText(f"Reading features of the images in {folder}...")
        model, weights, size, device = self.model, self.weights, self.input_size, self.device

        def work(context: TaskContext) -> Any:
            from squeezelens.core.review import review_dataset

            return review_dataset(folder, model, weights, device=device, input_size=size, cancel=context.cancel,
                                  on_progress=lambda stage, done, total: context.progress((stage, done, total)))

        self._task = start_task(work, name="review-labels", on_result=self._on_result, on_error=self._on_error,
                                on_progress=self._on_progress, on_finished=self._on_finished, owner=self)
        return True

    def _on_progress(self, value: tuple[str, int, int]) -> None:
        stage, done, total = value
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        what = "images read" if stage == "features" else "folds judged"
        self.summary.setText(f"{done} of {total} {what}")

    def _on_error(self, e: Exception) -> None:
        self.summary.setText(str(e) if isinstance(e, SqueezeLensError) else f"{type(e).__name__}: {e}")

    def _on_finished(self) -> None:
        self._task = None
        self.find_button.setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)

    def _on_result(self, result: Any) -> None:
        self.show_result(result)

    def show_result(self, result: Any) -> None:
        """Fill the queue: the flagged images, at least 20 of the most suspicious, most suspicious first."""
        self.result = result
        n = max(len(result.flagged), min(20, len(result.suspects)))
        self.rows = list(result.suspects[:n])
        self.current_paths = [s.path for s in self.rows]
        self.undo_stack.clear()
        self.class_box.clear()
        self.class_box.addItems(result.class_names)
        self.table.setRowCount(len(self.rows))
        for r, s in enumerate(self.rows):
            self.table.setItem(r, 0, QTableWidgetItem())  # the thumbnail arrives from _load_thumbnails
            cells = (s.path.name, s.given_label, f"{s.suggested_label} ({s.p_suggested:.0%})", f"{s.score:.2f}", "")
            for c, text in enumerate(cells, 1):
                item = QTableWidgetItem(text)
                if c == 1:
                    item.setToolTip(str(s.path))
                self.table.setItem(r, c, item)
        self.summary.setText(f"{len(result.flagged)} of {len(result.suspects)} images look mislabelled "
                             f"({result.folds}-fold check). Showing the {len(self.rows)} most suspicious.")
        self._enable_actions(bool(self.rows))
        if self.rows:
            self.table.selectRow(0)
        self._load_thumbnails([s.path for s in self.rows])

    def _load_thumbnails(self, paths: list[Path]) -> None:
        """Decode and scale the rows' images in a background task (QImage is thread-safe; QPixmap is made
        here, in the GUI thread, as each one arrives), so a long queue of big photos never freezes the window."""
        if self._thumb_task is not None:
            self._thumb_task.cancel()
        rows = list(self.rows)

        def work(context: TaskContext) -> None:
            for r, path in enumerate(paths):
                if context.cancelled:
                    return
                image = QImage(str(path))
                if not image.isNull():
                    context.progress((r, image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                      Qt.TransformationMode.SmoothTransformation)))

        def shown(value: tuple[int, QImage]) -> None:
            r, image = value
            if self.rows is rows or self.rows == rows:  # still the same queue
                item = self.table.item(r, 0)
                if item is not None:
                    item.setIcon(QIcon(QPixmap.fromImage(image)))

        def finished() -> None:
            if self._thumb_task is task:
                self._thumb_task = None

        task = start_task(work, name="review-thumbnails", on_progress=shown, on_finished=finished,
                          owner=self)
        self._thumb_task = task

    # -- actions ----------------------------------------------------------------------------------------
    def _enable_actions(self, on: bool) -> None:
        for w in (self.keep_button, self.move_button, self.class_box, self.remove_button):
            w.setEnabled(on)

    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].row() if rows else None

    def _mark(self, row: int, text: str) -> None:
        self.table.item(row, 5).setText(text)
        if row + 1 < self.table.rowCount():
            self.table.selectRow(row + 1)  # on to the next suspect

    def _act(self, action: Any) -> None:
        row = self.selected_row()
        if row is None:
            return
        try:
            action(row)
        except SqueezeLensError as e:
            self.summary.setText(str(e))

    def keep_selected(self) -> None:
        self._act(lambda row: self._mark(row, "kept"))

    def move_selected(self, class_name: str | None) -> None:
        """Move the selected image to ``class_name`` (None: its suggested class)."""
        from squeezelens.core.review import move_to_class

        def move(row: int) -> None:
            target = class_name or self.rows[row].suggested_label
            src = self.current_paths[row]
            dest = move_to_class(src, target)
            self.current_paths[row] = dest
            self.undo_stack.append((row, "move", src, dest))
            self._mark(row, f"moved to {target}")

        self._act(move)

    def remove_selected(self) -> None:
        from squeezelens.core.review import move_to_trash

        root = Path(self.folder_edit.text())

        def remove(row: int) -> None:
            src = self.current_paths[row]
            dest = move_to_trash(src, root)
            self.current_paths[row] = dest
            self.undo_stack.append((row, "trash", src, dest))
            self._mark(row, "removed (in .squeezelens-trash)")

        self._act(remove)

    def undo(self) -> None:
        """Put the file of the last move or removal back where it was."""
        if not self.undo_stack:
            return
        from squeezelens.core.review import move_to_class, restore_from_trash

        row, action, src, dest = self.undo_stack.pop()
        try:
            back = (restore_from_trash(dest, Path(self.folder_edit.text())) if action == "trash"
                    else move_to_class(dest, src.parent.name))
        except SqueezeLensError as e:
            self.summary.setText(str(e))
            return
        self.current_paths[row] = back
        self.table.item(row, 5).setText("")
        self.table.selectRow(row)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.table and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier):
                key = event.key()
                if key == Qt.Key.Key_K:
                    self.keep_selected()
                    return True
                if key == Qt.Key.Key_M:
                    self.move_selected(None)
                    return True
                if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
                    self.remove_selected()
                    return True
        return super().eventFilter(obj, event)

    def wait(self, msecs: int) -> bool:
        """Cancel a ranking (and thumbnails) going on and wait for them; True when none is left running."""
        thumbs = self._thumb_task
        if thumbs is not None:
            thumbs.cancel()
        if self._task is not None:
            self._task.cancel()
            if not self._task.wait(msecs):
                return False
        return thumbs is None or thumbs.wait(msecs)

    def closeEvent(self, event: Any) -> None:
        if self._thumb_task is not None:
            self._thumb_task.cancel()
        if self._task is not None:
            self._task.cancel()
        super().closeEvent(event)
