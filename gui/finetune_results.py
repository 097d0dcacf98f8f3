"""The Finetune window's results: loss and accuracy curves, the validation accuracy, per-class metrics, a
confusion matrix whose cells list their images, what was skipped and the warnings, and the run's log."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.finetune import EpochStats, FinetuneResult

from .confusion_view import MAX_CELL_IMAGES, CellImages, ConfusionView
from .finetune_form import warn_style
from .training_chart import TrainingChart
from .wording import plural

MAX_ISSUES = 500  # skipped files and warnings listed after a run; the rest are counted
CELL_HINT = "Click a cell of the matrix to see its validation images."
ISSUES_TAB = 2


class FinetuneResults(QSplitter):
    """Charts on top; below, the summary with "Use this model" and the tabs (matrix, per class, skipped
    and warnings, log). ``result`` is the run on show (None while a run goes or after one failed)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.result: FinetuneResult | None = None
        self.loss_chart = TrainingChart("Loss")
        self.acc_chart = TrainingChart("Accuracy", percent=True)
        charts = QWidget()
        cl = QHBoxLayout(charts)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.loss_chart)
        cl.addWidget(self.acc_chart)

        self.summary = QLabel("No results yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Switch the main window to the model just saved")
        self.use_button.setEnabled(False)
        head = QHBoxLayout()
        head.addWidget(self.summary, 1)
        head.addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignTop)

        self.confusion = ConfusionView()
        self.confusion.cellChosen.connect(self.show_cell)
        self.cell_label = QLabel(CELL_HINT)
        self.cell_label.setTextFormat(Qt.TextFormat.PlainText)  # class names come from folder names
        self.cell_label.setWordWrap(True)
        self.cell_images = CellImages()
        cm_left = QWidget()
        cml = QVBoxLayout(cm_left)
        cml.setContentsMargins(0, 0, 0, 0)
        cml.addWidget(QLabel("Rows: true class · columns: predicted class"))
        cml.addWidget(self.confusion, 1)
        cm_right = QWidget()
        cmr = QVBoxLayout(cm_right)
        cmr.setContentsMargins(0, 0, 0, 0)
        cmr.addWidget(self.cell_label)
        cmr.addWidget(self.cell_images, 1)
        cm_split = QSplitter(Qt.Orientation.Horizontal)
        cm_split.addWidget(cm_left)
        cm_split.addWidget(cm_right)
        cm_split.setSizes([540, 300])
        cm_split.setChildrenCollapsible(False)

        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Val images"])
        self.per_class.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.per_class.verticalHeader().hide()
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.setSortingEnabled(True)
        self.issues = QListWidget()
        self.issues.setWordWrap(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.tabs = QTabWidget()
        self.tabs.addTab(cm_split, "Confusion matrix")
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(self.issues, "Skipped && warnings")
        self.tabs.addTab(self.log, "Log")

        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addLayout(head)
        bl.addWidget(self.tabs, 1)
        self.addWidget(charts)
        self.addWidget(bottom)
        self.setSizes([300, 480])
        self.setChildrenCollapsible(False)

    # -- while a run goes -----------------------------------------------------------------------------
    def clear_for_run(self, epochs: int, resume: bool) -> None:
        """Empty the results for a new run of ``epochs`` epochs; a resumed run keeps its curves and log."""
        self.result = None
        self.use_button.setEnabled(False)
        if not resume:
            self.loss_chart.reset(epochs)
            self.acc_chart.reset(epochs)
            self.log.clear()
        self.issues.clear()
        self.tabs.setTabText(ISSUES_TAB, "Skipped && warnings")
        self.summary.setText("Training...")
        self.confusion.set_matrix([], [])
        self.per_class.setRowCount(0)
        self.cell_images.show_paths([])
        self.cell_label.setText(CELL_HINT)

    def add_epoch(self, stats: EpochStats) -> None:
        self.loss_chart.add_point(stats.epoch, stats.train_loss, stats.val_loss)
        self.acc_chart.add_point(stats.epoch, stats.train_acc, stats.val_acc)

    def add_warning(self, message: str) -> None:
        self.issues.addItem(f"Warning: {message}")

    def add_log(self, text: str) -> None:
        self.log.appendPlainText(text)

    def show_no_model(self, summary: str) -> None:
        """The run ended without a model (cancelled, failed): say so in the summary."""
        self.summary.setText(summary)

    # -- a finished run -------------------------------------------------------------------------------
    def show_result(self, r: FinetuneResult) -> None:
        """Curves, accuracy, per-class metrics, the matrix (its biggest mistake chosen) and the issues of ``r``."""
        self.result = r
        epochs = max(len(r.history), r.history[-1].epoch if r.history else 1)
        self.loss_chart.reset(epochs)
        self.acc_chart.reset(epochs)
        for h in r.history:
            self.add_epoch(h)
        best = f"best epoch {r.best_epoch} of {len(r.history)}" + (" (stopped early)" if r.stopped_early else "")
        warn = warn_style(self.palette())
        untrained = (f'<br><span style="{warn}">The base model had no pretrained weights: these numbers '
                     'come from random features.</span>') if r.untrained_base else ""
        self.summary.setText(
            f'<span style="font-size: 15pt; font-weight: 600;">Validation accuracy {r.val_accuracy:.1%}</span>'
            f"&nbsp;&nbsp;{len(r.val_predictions)} validation images, {len(r.misclassified)} wrong; {best}<br>"
            f"Saved to {html.escape(str(r.output_dir))}{untrained}")
        self.confusion.set_matrix(r.class_names, r.confusion)
        self._fill_per_class(r)
        self.issues.clear()
        issues = [f"Warning: {w}" for w in r.warnings[:MAX_ISSUES]]
        issues += [f"Skipped {s.path}: {s.reason}" for s in r.skipped[:MAX_ISSUES - len(issues)]]
        self.issues.addItems(issues)
        if len(r.warnings) + len(r.skipped) > len(issues):
            self.issues.addItem(f"... and {len(r.warnings) + len(r.skipped) - len(issues)} more")
        if not (r.warnings or r.skipped):
            self.issues.addItem("Nothing was skipped, no warnings.")
        self.tabs.setTabText(ISSUES_TAB, f"Skipped && warnings ({len(r.skipped) + len(r.warnings)})")
        self.use_button.setEnabled(True)
        wrong = [(t, p) for t in range(len(r.confusion)) for p in range(len(r.confusion))
                 if t != p and r.confusion[t][p]]
        if wrong:  # the biggest mistake first: what a person wants to look at
            t, p = max(wrong, key=lambda c: r.confusion[c[0]][c[1]])
            self.confusion.setCurrentIndex(self.confusion.matrix.index(t, p))  # -> cellChosen -> show_cell
        else:
            self.cell_label.setText("No validation image was misclassified. Click a cell to see its images.")

    def _fill_per_class(self, r: FinetuneResult) -> None:
        self.per_class.setSortingEnabled(False)
        self.per_class.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # class order first
        self.per_class.setRowCount(len(r.per_class))
        for row, m in enumerate(r.per_class):
            if m.support:
                cells = [(m.name, m.name), (f"{m.precision:.1%}", m.precision), (f"{m.recall:.1%}", m.recall),
                         (f"{m.f1:.2f}", m.f1), (str(m.support), m.support)]
            else:  # no validation image of this class: nothing was measured (as the CLI summary says)
                cells = [(m.name, m.name), ("n/a", -1.0), ("n/a", -1.0), ("n/a", -1.0), ("0", 0)]
            for col, (text, value) in enumerate(cells):
                item = _SortItem(text)
                item.setData(Qt.ItemDataRole.UserRole, value)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(row, col, item)
        self.per_class.setSortingEnabled(True)

    def show_cell(self, true_index: int, pred_index: int) -> None:
        """List the validation images of one confusion-matrix cell."""
        r = self.result
        if r is None or not (0 <= true_index < len(r.class_names) and 0 <= pred_index < len(r.class_names)):
            return
        paths = r.images_in_cell(true_index, pred_index)
        t, p = r.class_names[true_index], r.class_names[pred_index]
        what = f"{t}, predicted correctly" if true_index == pred_index else f"{t} predicted as {p}"
        shown = f" (the first {MAX_CELL_IMAGES} shown)" if len(paths) > MAX_CELL_IMAGES else ""
        self.cell_label.setText(f"{plural(len(paths), 'image')}: {what}{shown}")
        self.cell_images.show_paths(paths)

    def saved_folder(self) -> str | None:
        """The folder of the model on show, resolved (None without one)."""
        return str(Path(self.result.output_dir).resolve()) if self.result is not None else None

    def wait(self, msecs: int) -> bool:
        """Stop loading the cell's thumbnails and wait for that (``msecs`` ms at most); True when idle."""
        return self.cell_images.loader.wait(msecs)


class _SortItem(QTableWidgetItem):
    """Sorts by its value (UserRole), not its text: 9.5% before 10.0%."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        return a < b if type(a) is type(b) and a is not None else super().__lt__(other)
