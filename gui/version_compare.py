"""The Finetune window's "Model versions" panel: the previous and the new validation accuracy side by
side after a run into an existing model folder, the versions kept there, and rolling back.

The versions live in core (:mod:`squeezelens.core.model_versions`); a rollback copies files, so it
runs as a background task (:func:`.tasks.start_task`) and the window never freezes.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.errors import SqueezeLensError
from squeezelens.core.model_versions import ModelVersion, VersionIndex, read_index, rollback

from .tasks import Task, start_task

COLUMNS = ("Version", "Created (UTC)", "Validation accuracy", "Unknown below", "Images (train/val)")
BETTER, WORSE = "#2e7d32", "#c62828"


def _pct(v: float | None) -> str:
    return "?" if v is None else f"{v:.1%}"


def comparison_html(previous: ModelVersion | None, new: ModelVersion, staged: bool = False) -> str:
    """Two columns, previous and new: version, validation accuracy (the better one in green), its change."""
    if previous is None:
        return f"<b>v{new.number}</b>: validation accuracy <b>{_pct(new.val_accuracy)}</b> (the first version)"
    colour = ""
    delta = ""
    if previous.val_accuracy is not None and new.val_accuracy is not None:
        d = (new.val_accuracy - previous.val_accuracy) * 100
        colour = BETTER if d >= 0 else WORSE
        delta = f" ({d:+.1f} points)"
    old_name, new_state = ("Current", "not yet current") if staged else ("Previous", "current")
    return (
        "<table cellspacing='12'><tr>"
        f"<td align='center'>{old_name} (v{previous.number})<br><span style='font-size:18pt'>"
        f"{_pct(previous.val_accuracy)}</span></td>"
        "<td align='center' style='font-size:18pt'>&rarr;</td>"
        f"<td align='center'>New (v{new.number}, {new_state})<br><span style='font-size:18pt; color:{colour}'>"
        f"<b>{_pct(new.val_accuracy)}</b></span>{html.escape(delta)}</td>"
        "</tr></table>"
    )


def keep_question(previous: ModelVersion, new: ModelVersion) -> str:
    """The staged run's question: ``Keep new (v2, 93.8%) or keep current (v1, 87.5%)?``."""
    return (f"Keep new (v{new.number}, {_pct(new.val_accuracy)}) or keep current "
            f"(v{previous.number}, {_pct(previous.val_accuracy)})?")


def replace_question(folder: str | Path) -> str:
    """The text of "Replace the saved model?": what the folder holds now (version, accuracy) and that it is kept."""
    try:
        index = read_index(folder)
    except SqueezeLensError:
        index = VersionIndex()
    current = next((v for v in index.versions if v.number == index.current), None)
    now = (f"It holds v{current.number}, validation accuracy {_pct(current.val_accuracy)}."
           if current is not None else "It holds a saved model.")
    return (f"{folder} already holds a saved model. {now}\n\nTrain a new version there? The current one is kept "
            "in its versions/ folder: after training you see both accuracies side by side and can go back.\n"
            "A cancelled or failed run leaves the folder as it is.")


class VersionPanel(QGroupBox):
    """Versions of one model folder; ``rolledBack(folder, number)`` after a rollback succeeded."""

    rolledBack = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model versions", parent)
        self.folder: Path | None = None
        self.index = VersionIndex()
        self._task: Task | None = None
        self.compare = QLabel()
        self.compare.setObjectName("versionComparison")
        self.compare.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(150)
        self.keep_button = QPushButton("Keep the new version")
        self.keep_button.clicked.connect(self._keep)
        self.back_button = QPushButton("Go back to the previous version")
        self.back_button.clicked.connect(self._back)
        self.current_button = QPushButton("Make selected current")
        self.current_button.setToolTip("Roll back (or forward) to the version selected in the list")
        self.current_button.clicked.connect(self._make_selected_current)
        self.message = QLabel()
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.keep_button, self.back_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.current_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.compare)
        layout.addLayout(buttons)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        self._previous: int | None = None
        self._staged: int | None = None  # a new version waiting for "Keep new" (not current yet)
        self.hide()

    def show_folder(self, folder: str | Path, previous: int | None = None, new: int | None = None,
                    staged: bool = False) -> None:
        """Show the versions of ``folder``; with ``previous`` and ``new`` the two are compared side by side.

        ``staged``: ``new`` is not current yet (a finetune with ``stage_only``); the panel asks which
        to keep and only "Keep new" makes it current.
        """
        self.folder = Path(folder)
        try:
            self.index = read_index(self.folder)
        except SqueezeLensError as e:
            self.index = VersionIndex()
            self.message.setText(str(e))
        self._previous = previous
        new_v = self._find(new)
        prev_v = self._find(previous)
        self._staged = new if staged and new_v is not None and prev_v is not None else None
        self.compare.setText(comparison_html(prev_v, new_v, self._staged is not None) if new_v is not None else "")
        self.compare.setVisible(new_v is not None)
        for b in (self.keep_button, self.back_button):
            b.setVisible(previous is not None and new_v is not None)
        if self._staged is not None and prev_v is not None and new_v is not None:
            self.message.setText(keep_question(prev_v, new_v))
            self.keep_button.setText(f"Keep new (v{new_v.number}, {_pct(new_v.val_accuracy)})")
            self.back_button.setText(f"Keep current (v{prev_v.number}, {_pct(prev_v.val_accuracy)})")
        else:
            self.keep_button.setText("Keep the new version")
            if previous is not None:
                self.back_button.setText(f"Go back to v{previous}")
        self._fill_table()
        self.setVisible(bool(self.index.versions))

    def _find(self, number: int | None) -> ModelVersion | None:
        return next((v for v in self.index.versions if v.number == number), None)

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.index.versions))
        for row, v in enumerate(reversed(self.index.versions)):  # newest first
            d = v.dataset or {}
            thr = (v.unknown or {}).get("threshold")
            cells = (f"v{v.number}" + ("  (current)" if v.number == self.index.current else ""),
                     v.created.replace("T", " ").replace("+00:00", ""), _pct(v.val_accuracy),
                     "-" if thr is None else f"{thr:.0%}", f"{d.get('train_images', '?')}/{d.get('val_images', '?')}")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, v.number)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()

    def _keep(self) -> None:
        if self._staged is not None:  # only now does the new version become current
            self.rollback_to(self._staged)
            return
        self.keep_button.hide()
        self.back_button.hide()
        self.message.setText("Keeping the new version. The previous one stays in the list.")

    def _back(self) -> None:
        if self._staged is not None:  # keep current: nothing changes on disk; the new one stays in the list
            number, self._staged = self._staged, None
            self.keep_button.hide()
            self.back_button.hide()
            self.message.setText(f"v{self._previous} stays current; v{number} is kept in the list.")
            return
        if self._previous is not None:
            self.rollback_to(self._previous)

    def _make_selected_current(self) -> None:
        items = self.table.selectedItems()
        if items:
            self.rollback_to(int(items[0].data(Qt.ItemDataRole.UserRole)))

    def rollback_to(self, number: int) -> None:
        """Make version ``number`` current, in a background task; the list updates when it is done."""
        if self.folder is None or self._task is not None:
            return
        folder = self.folder
        for b in (self.keep_button, self.back_button, self.current_button):
            b.setEnabled(False)
        self.message.setText(f"Making v{number} current...")

        def work(_context: Any) -> int:
            return rollback(folder, number).number

        def done(n: int) -> None:
            staged, self._staged = self._staged, None
            self.message.setText(f"v{n} is current now; the other versions are kept." if staged == n
                                 else f"v{n} is current again; the other versions are kept.")
            self.show_folder(folder)
            self.rolledBack.emit(str(folder), n)

        def failed(e: Exception) -> None:
            self.message.setText(str(e) if isinstance(e, SqueezeLensError) else f"{type(e).__name__}: {e}")

        def finished() -> None:
            self._task = None
            for b in (self.keep_button, self.back_button, self.current_button):
                b.setEnabled(True)

        self._task = start_task(work, name="model-version-rollback", on_result=done, on_error=failed,
                                on_finished=finished, owner=self)

    def wait(self, msecs: int) -> bool:
        """Wait for a rollback going on (``msecs`` ms at most); True when none is left running."""
        return self._task is None or self._task.wait(msecs)
