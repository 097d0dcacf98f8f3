"""The model picker: catalogue variants (cached or not), recently used saved models, and "Open model folder..."."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QWidget

OPEN_FOLDER = "\x00open-folder"


class ModelPicker(QComboBox):
    """``modelChosen(name_or_folder)`` when the user picks a model; ``openFolderRequested`` for the dialog."""

    modelChosen = Signal(str)
    openFolderRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setMinimumContentsLength(24)
        self.setToolTip("Model (Ctrl+M)")
        self.setAccessibleName("Model")
        self._catalogue: list = []
        self._recent: list[str] = []
        self._current = ""
        self.activated.connect(self._on_activated)
        self._rebuild()

    @staticmethod
    def display_name(entry: object) -> str:
        name = entry.architecture if entry.is_default_tag else entry.name  # type: ignore[attr-defined]
        return f"{name}  ({'cached' if entry.cached else 'needs download'})"  # type: ignore[attr-defined]

    def set_catalogue(self, entries: list) -> None:
        self._catalogue = list(entries)
        self._rebuild()

    def catalogue(self) -> list:
        """The catalogue entries shown (another picker, e.g. the Finetune window's, can show the same)."""
        return list(self._catalogue)

    def set_recent(self, folders: list[str]) -> None:
        self._recent = list(folders)
        self._rebuild()

    def set_current(self, name: str) -> None:
        """Show ``name`` (catalogue name or folder) as selected, adding it if unknown."""
        self._current = name
        self._rebuild()

    def current_name(self) -> str:
        return self._current

    def _rebuild(self) -> None:
        self.blockSignals(True)
        self.clear()
        seen: set[str] = set()
        for e in self._catalogue:
            value = e.architecture if e.is_default_tag else e.name
            self.addItem(self.display_name(e), value)
            self.setItemData(self.count() - 1, f"{e.name}\nlicence: {e.license or '?'}", 3)  # ToolTipRole
            seen.add(value)
        if self._recent:
            if self.count():  # no separator as the first row
                self.insertSeparator(self.count())
            for folder in self._recent:
                self.addItem(f"{Path(folder).name}  (saved model)", folder)
                self.setItemData(self.count() - 1, folder, 3)
                seen.add(folder)
        if self._current and self._current not in seen:
            label = self._current if not Path(self._current).is_absolute() else f"{Path(self._current).name}  (saved)"
            self.insertItem(0, label, self._current)
        if self.count():
            self.insertSeparator(self.count())
        self.addItem("Open model folder...", OPEN_FOLDER)
        index = self.findData(self._current) if self._current else -1
        self.setCurrentIndex(max(index, 0))
        self.blockSignals(False)

    def _on_activated(self, index: int) -> None:
        value = self.itemData(index)
        if value == OPEN_FOLDER:
            self.setCurrentIndex(max(self.findData(self._current), 0))
            self.openFolderRequested.emit()
        elif value and value != self._current:
            self._current = value
            self.modelChosen.emit(value)
