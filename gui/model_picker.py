"""The model picker: catalogue variants (cached or not, with size and timm's published ImageNet top-1),
recently used saved models, and "Open model folder...". An entry that "needs download" says why in its
tooltip, and the picker's context menu (right click) or ``download()`` fetches it through the normal load path."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QPaintEvent
from PySide6.QtWidgets import QComboBox, QStyle, QStyleOptionComboBox, QStylePainter, QWidget

from squeezelens.core.imagenet_results import (
    SOURCE_URL,
    SPEED_MACHINE,
    SPEED_SOURCE_URL,
    CpuSpeed,
    cpu_speed,
    download_mb,
    imagenet_result,
)

OPEN_FOLDER = "\x00open-folder"
#: Item data role of the short label the closed picker shows (the list shows the whole row with its facts).
SHORT_LABEL_ROLE = Qt.ItemDataRole.UserRole + 1


def _speed(entry: object) -> CpuSpeed | None:
    """timm's published CPU speed of a catalogue entry at the size the app runs it at, or None."""
    return cpu_speed(entry.architecture, entry.input_side)  # type: ignore[attr-defined]


class ModelPicker(QComboBox):
    """``modelChosen(name_or_folder)`` when the user picks a model; ``openFolderRequested`` for the dialog."""

    modelChosen = Signal(str)
    openFolderRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # the closed box shows the short label (toolbar room); the open list is as wide as its longest row
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(28)
        self.setToolTip("Model (Ctrl+M)")
        self.setAccessibleName("Model")
        self._catalogue: list = []
        self._recent: list[str] = []
        self._current = ""
        self.activated.connect(self._on_activated)
        self.download_action = QAction("Download weights", self)
        self.download_action.setToolTip("Fetch the chosen model's weights from the Hugging Face Hub now")
        self.download_action.triggered.connect(lambda: self.download(self.currentIndex()))
        self.addAction(self.download_action)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.currentIndexChanged.connect(self._update_download_action)
        self._rebuild()

    @staticmethod
    def display_name(entry: object) -> str:
        name = entry.architecture if entry.is_default_tag else entry.name  # type: ignore[attr-defined]
        facts = imagenet_result(entry.name)  # type: ignore[attr-defined]
        parts = [f"{facts.params_m:.1f}M params", f"{facts.top1:.1f}% top-1"] if facts else []
        speed = _speed(entry)
        if speed is not None:
            parts.append(f"~{speed.ms_per_image:.0f} ms/image")
        size = f"  {', '.join(parts)}" if parts else ""
        return f"{name}{size}  ({'cached' if entry.cached else 'needs download'})"  # type: ignore[attr-defined]

    @staticmethod
    def tooltip(entry: object) -> str:
        """The entry's facts with their source, and what "needs download" means."""
        e: object = entry
        lines = [e.name, f"licence: {e.license or '?'}"]  # type: ignore[attr-defined]
        facts = imagenet_result(e.name)  # type: ignore[attr-defined]
        if facts is not None:
            lines += [f"size: {facts.params_m:.2f} million parameters",
                      f"input size: {facts.img_size} x {facts.img_size} pixels (as evaluated)",
                      f"ImageNet top-1: {facts.top1:.2f}% (timm's published results, {SOURCE_URL})"]
        side = e.input_side  # type: ignore[attr-defined]
        if side:
            lines.append(f"runs here at: {side} x {side} pixels")
        speed = _speed(e)
        if speed is not None:
            lines.append(f"speed: {speed.gmacs:.2f} billion multiply-adds an image; {speed.images_per_s:.1f} images/s "
                         f"({speed.ms_per_image:.0f} ms each) on {SPEED_MACHINE} "
                         f"(timm's published CPU benchmark, {SPEED_SOURCE_URL})")
        if not e.cached:  # type: ignore[attr-defined]
            about = f", about {download_mb(facts):.0f} MB" if facts is not None else ""
            lines.append(f"Needs download: the weights are fetched from the Hugging Face Hub the first time "
                         f"this model is used{about}. Choose it, or right-click > Download weights.")
        return "\n".join(lines)

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
            self.setItemData(self.count() - 1, self.tooltip(e), 3)  # ToolTipRole
            self.setItemData(self.count() - 1, self.short_label(e), SHORT_LABEL_ROLE)
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
        self._update_download_action()
        self.view().setMinimumWidth(self.view().sizeHintForColumn(0) + 2 * self.view().frameWidth() + 24)

    @staticmethod
    def short_label(entry: object) -> str:
        """What the closed picker shows for a catalogue entry: its name, and "needs download" when it does."""
        name = entry.architecture if entry.is_default_tag else entry.name  # type: ignore[attr-defined]
        return name if entry.cached else f"{name}  (needs download)"  # type: ignore[attr-defined]

    def paintEvent(self, event: QPaintEvent) -> None:
        """The closed box: the current row's short label (its facts are in the open list and the tooltip)."""
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        short = self.itemData(self.currentIndex(), SHORT_LABEL_ROLE)
        if short:
            option.currentText = str(short)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)

    def needs_download(self, index: int) -> bool:
        value = self.itemData(index)
        return any((e.architecture if e.is_default_tag else e.name) == value and not e.cached
                   for e in self._catalogue)

    def _update_download_action(self, *_: object) -> None:
        self.download_action.setEnabled(self.needs_download(self.currentIndex()))

    def download(self, index: int) -> bool:
        """Fetch entry ``index``'s weights by loading it (the normal load path downloads, with progress and
        Cancel); False when it needs no download."""
        if not self.needs_download(index):
            return False
        value = self.itemData(index)
        self.setCurrentIndex(index)
        self._current = value
        self.modelChosen.emit(value)  # also for the model on show (its download failed before): load again
        return True

    def _on_activated(self, index: int) -> None:
        value = self.itemData(index)
        if value == OPEN_FOLDER:
            self.setCurrentIndex(max(self.findData(self._current), 0))
            self.openFolderRequested.emit()
        elif value and value != self._current:
            self._current = value
            self.modelChosen.emit(value)
