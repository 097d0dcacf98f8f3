"""The Finetune window's form: the dataset folder with a preview of its classes, the training options
(base model, mode, epochs, image size) and the output folder; and the preview's background scan.

The form turns into a :class:`~squeezelens.core.finetune.FinetuneConfig` (:meth:`FinetuneForm.build_config`)
and remembers itself in the settings; starting, following and stopping a run is the window's part.
"""

from __future__ import annotations

import html
import itertools
import time
import traceback
from functools import partial
from pathlib import Path
from typing import cast

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.dataset_scan import DatasetScan, scan_dataset
from squeezelens.core.errors import DatasetTooLarge, ScanCancelled, SqueezeLensError
from squeezelens.core.finetune import DEFAULT_EPOCHS, FinetuneConfig
from squeezelens.core.model_loader import is_saved_model_dir
from squeezelens.core.options import FINETUNE_MODES, FinetuneMode

from .contrast import readable_on
from .model_picker import ModelPicker
from .settings import AppSettings
from .tasks import Task, TaskContext, start_task
from .wording import plural

#: The mode menu's words for core's finetune modes.
MODE_NAMES: dict[str, str] = {"quick": "Quick (new head, frozen backbone)", "deep": "Deep (last stage + head)"}
#: The preview visits at most this many files and folders (so ``/`` typed by mistake is not walked to the end).
PREVIEW_MAX_ENTRIES = 50_000
PREVIEW_SKIPPED = 5  # unreadable files listed by name in the preview (all of them in the tooltip)
PREVIEW_HINT = "Press Enter (or Browse...) to list the classes in this folder."
#: Error and warning text colours (Material red 800, a dark orange), made readable on the palette's window
#: colour by :func:`error_style` / :func:`warn_style` (4.5:1, WCAG AA; light and dark palettes).
ERROR_COLOUR = "#c62828"
WARN_COLOUR = "#b26a00"


def _text_style(colour: str, palette: QPalette) -> str:
    """The style sheet of text in ``colour``, made readable on ``palette``'s window colour."""
    return f"color: {readable_on(QColor(colour), palette.color(QPalette.ColorRole.Window)).name()};"


def error_style(palette: QPalette) -> str:
    """The style sheet of error text on ``palette``'s window colour (``#c62828`` on a light window)."""
    return _text_style(ERROR_COLOUR, palette)


def warn_style(palette: QPalette) -> str:
    """The style sheet of warning text on ``palette``'s window colour (``#b26a00`` on a light one, lighter on
    a dark one)."""
    return _text_style(WARN_COLOUR, palette)


def default_output_for(data_folder: str) -> str:
    """``<data folder>-model`` next to the data folder."""
    p = Path(data_folder).expanduser()
    return str(p.parent / f"{p.name}-model") if p.name else ""


def resolve_folders(data_folder: str, output_folder: str) -> tuple[Path, Path]:
    """The dataset and output folders as absolute paths (``~`` expanded); a relative output is put next to
    the dataset folder (a GUI's working directory means nothing to its user).

    Raises:
        SqueezeLensError: the dataset folder is not a full path.
    """
    data = Path(data_folder).expanduser()
    if not data.is_absolute():
        raise SqueezeLensError(f"give the dataset folder's full path (e.g. {Path.home() / data}), not {data_folder}")
    out = Path(output_folder).expanduser()
    return data, out if out.is_absolute() else data.parent / out


def scan_for_preview(token: int, folder: str, max_entries: int | None,
                     context: TaskContext) -> tuple[int, DatasetScan | str] | None:
    """The preview task: ``(token, scan)``, ``(token, message)`` when the folder cannot be used, or None
    when cancelled (it stops at its next file)."""
    try:
        return token, scan_dataset(folder, cancel=context.cancel, max_entries=max_entries)
    except ScanCancelled:
        return None
    except DatasetTooLarge as e:
        return token, f"{e} The preview stops there; Start scans the whole folder."
    except SqueezeLensError as e:
        return token, str(e)
    except OSError as e:  # e.g. permission denied on a subfolder
        return token, f"{folder}: cannot read the folder ({e.strerror or e})"
    except Exception as e:  # noqa: BLE001 - a bug: one line in the preview, the traceback on stderr
        traceback.print_exc()
        return token, f"{type(e).__name__}: {e}"


class DatasetScanner(QObject):
    """Scans a folder for the dataset preview as a background task; answers by token.

    A new scan cancels the one before, and a cancelled scan answers nothing. At most ``max_entries``
    files and folders are visited (``DatasetTooLarge`` beyond: reported through ``failed``).
    """

    scanned = Signal(int, object)  # token, DatasetScan
    failed = Signal(int, str)  # token, message

    def __init__(self, max_entries: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.max_entries = max_entries
        self._tasks: dict[int, Task] = {}  # token -> scan: the current one, and cancelled ones still running

    @property
    def running(self) -> bool:
        return any(not t.done for t in self._tasks.values())

    def scan(self, token: int, folder: str) -> None:
        """Scan ``folder`` in the background, cancelling any earlier scan."""
        self.cancel()
        self._tasks[token] = start_task(partial(scan_for_preview, token, folder, self.max_entries),
                                        name="finetune-preview-scan", on_result=self._answer, owner=self)

    def cancel(self) -> None:
        """Stop every scan still running (each stops at its next file, without answering)."""
        for task in self._tasks.values():
            task.cancel()
        self._tasks = {token: t for token, t in self._tasks.items() if not t.done}

    def wait(self, msecs: int = 2000) -> bool:
        """Cancel the scans and wait for them (``msecs`` ms in all, at most); True when none is left running."""
        self.cancel()
        deadline = time.monotonic() + msecs / 1000
        for task in self._tasks.values():
            task.wait(int((deadline - time.monotonic()) * 1000))
        self._tasks = {token: t for token, t in self._tasks.items() if not t.done}
        return not self._tasks

    def _answer(self, answer: tuple[int, DatasetScan | str] | None) -> None:
        if answer is None:
            return  # cancelled
        token, outcome = answer
        task = self._tasks.pop(token, None)
        if task is None or task.cancelled:
            return  # superseded or shutting down: nobody waits for this answer
        if isinstance(outcome, str):
            self.failed.emit(token, outcome)
        else:
            self.scanned.emit(token, outcome)


class FinetuneForm(QWidget):
    """Dataset folder (+ preview), base model, mode, epochs, image size and output folder.

    ``changed`` comes with every edit that makes the form describe another run (the window then withdraws
    Resume); ``message(text, is_error)`` is a line for the window's status; ``previewShown`` follows a
    finished preview scan.
    """

    changed = Signal()
    message = Signal(str, bool)
    previewShown = Signal()
    previewFailed = Signal(str)  # the folder cannot be trained on: why (Start stays disabled)

    def __init__(self, settings: AppSettings, current_model: str = "", catalogue: list | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.scan: DatasetScan | None = None
        self.scan_error = ""
        self._scan_ids = itertools.count(1)
        self._scan_token = 0
        self._scanned_folder: str | None = None  # the text the preview was last asked for (None: stale)
        self.scanner = DatasetScanner(PREVIEW_MAX_ENTRIES, self)
        self.scanner.scanned.connect(self._on_scanned)
        self.scanner.failed.connect(self._on_scan_failed)
        self._build(current_model, catalogue or [])

    def _build(self, current_model: str, catalogue: list) -> None:
        s = self.settings
        self.data_combo = QComboBox()
        self.data_combo.setEditable(True)
        self.data_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.data_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.data_combo.setMinimumContentsLength(20)
        data_edit = self.data_combo.lineEdit()
        assert data_edit is not None  # editable: the combo made it
        data_edit.setPlaceholderText("a folder with one subfolder of images per class")
        self.data_combo.setToolTip("One subfolder of images per class, or train/ and val/ of that form")
        self.data_combo.setAccessibleName("Dataset folder")
        self.refresh_data_folders()
        self.data_browse = QPushButton("Browse...")
        self.data_browse.clicked.connect(self.browse_data)
        self.data_combo.editTextChanged.connect(self._on_data_text)
        # the preview scans a folder once it is chosen (Enter, leaving the field, a listed folder), not while typing
        data_edit.editingFinished.connect(self._scan_if_changed)
        self.data_combo.textActivated.connect(self._scan_if_changed)

        self.preview = QTreeWidget()
        self.preview.setColumnCount(3)
        self.preview.setHeaderLabels(["Class", "Train", "Val"])
        self.preview.setRootIsDecorated(False)
        self.preview.setUniformRowHeights(True)
        self.preview.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.preview.header().setStretchLastSection(False)
        for c in (1, 2):
            self.preview.header().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.preview.setMinimumHeight(90)
        self.preview.setAccessibleName("Classes found in the dataset folder")
        self.preview_note = QLabel()
        self.preview_note.setWordWrap(True)
        self.preview_note.setTextFormat(Qt.TextFormat.RichText)
        self.preview_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.base_picker = ModelPicker()
        self.base_picker.setMinimumContentsLength(16)
        self.base_picker.set_catalogue(catalogue)
        self.base_picker.set_recent(s.recent_models)
        main_model = current_model if current_model and not Path(current_model).is_absolute() else ""
        self.base_picker.set_current(s.finetune_model or main_model or DEFAULT_MODEL)  # the remembered one first
        self.base_picker.setToolTip("The model whose features are reused (a saved model folder works too)")
        self.base_picker.modelChosen.connect(self._on_base_chosen)
        self.base_picker.openFolderRequested.connect(self.browse_base_model)

        self.mode = QComboBox()
        for value in FINETUNE_MODES:
            self.mode.addItem(MODE_NAMES.get(value, value), value)
        self.mode.setCurrentIndex(max(0, self.mode.findData(s.finetune_mode)))
        self.mode.setToolTip("Quick trains only a new head on cached features (seconds on a second run);\n"
                             "deep also trains the last stage on augmented images (slower; can resume)")
        self._mode_value = self.mode_value()
        self.mode.currentIndexChanged.connect(self._on_mode)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(s.finetune_epochs or DEFAULT_EPOCHS[self._mode_value])
        self.epochs.setToolTip("Most epochs to train (quick mode stops early when validation stops improving)")
        self.input_size = QSpinBox()
        self.input_size.setRange(0, 1024)
        self.input_size.setSingleStep(32)
        self.input_size.setSpecialValueText("model's own")
        self.input_size.setSuffix(" px")
        self.input_size.setValue(s.finetune_input_size)
        self.input_size.setToolTip("Square input side; smaller trains faster (recorded in the saved model)")

        self.output_edit = QLineEdit(s.finetune_output_folder)
        self.output_edit.setPlaceholderText("folder to save the model in")
        self.output_edit.setToolTip("The model folder to write; a name alone is put next to the dataset folder")
        self.output_edit.setAccessibleName("Output model folder")
        self.output_browse = QPushButton("Browse...")
        self.output_browse.clicked.connect(self.browse_output)
        if not self.output_edit.text() and self.data_folder():
            self.output_edit.setText(default_output_for(self.data_folder()))
        self._default_output = default_output_for(self.data_folder()) if self.data_folder() else ""

        data_box = QGroupBox("Dataset")
        dl = QVBoxLayout(data_box)
        row = QHBoxLayout()
        row.addWidget(self.data_combo, 1)
        row.addWidget(self.data_browse)
        dl.addLayout(row)
        dl.addWidget(self.preview, 1)
        dl.addWidget(self.preview_note)

        train_box = QGroupBox("Training")
        form = QFormLayout(train_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Base model", self.base_picker)
        form.addRow("Mode", self.mode)
        form.addRow("Epochs", self.epochs)
        form.addRow("Image size", self.input_size)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_edit, 1)
        out_row.addWidget(self.output_browse)
        form.addRow("Save to", out_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(data_box, 1)
        layout.addWidget(train_box)
        self._inputs: list[QWidget] = [self.data_combo, self.data_browse, self.base_picker, self.mode, self.epochs,
                                       self.input_size, self.output_edit, self.output_browse]
        # any change to the form makes it another run (the base model and the dataset folder: _on_base_chosen,
        # _on_data_text)
        self.mode.currentIndexChanged.connect(self.changed)
        self.epochs.valueChanged.connect(self.changed)
        self.input_size.valueChanged.connect(self.changed)
        self.output_edit.textChanged.connect(self.changed)

    # -- values ---------------------------------------------------------------------------------------
    def refresh_data_folders(self) -> None:
        """Offer the camera's capture folder and the recent dataset folders (the folder on show stays)."""
        capture = self.settings.capture_folder
        recent = self.settings.finetune_data_folders
        current = self.data_folder()
        self.data_combo.blockSignals(True)
        self.data_combo.clear()
        if capture:
            self.data_combo.addItem(QIcon.fromTheme("camera-photo"), capture)
            self.data_combo.setItemData(0, "The camera's capture folder", Qt.ItemDataRole.ToolTipRole)
        for folder in recent:
            if folder != capture:
                self.data_combo.addItem(folder)
        self.data_combo.setCurrentText(current or (recent[0] if recent else capture))
        self.data_combo.blockSignals(False)

    def data_folder(self) -> str:
        return self.data_combo.currentText().strip()

    def set_data_folder(self, folder: str) -> None:
        self.data_combo.setCurrentText(folder)  # editTextChanged -> output default
        self.scan_now()

    def mode_value(self) -> FinetuneMode:
        mode = str(self.mode.currentData())
        return cast(FinetuneMode, mode) if mode in FINETUNE_MODES else FINETUNE_MODES[0]

    def set_editable(self, editable: bool) -> None:
        """Enable the fields (idle) or lock them (a run uses them)."""
        for w in self._inputs:
            w.setEnabled(editable)

    def build_config(self) -> FinetuneConfig:
        """The form as a run configuration (checked by core when the run starts).

        Raises:
            SqueezeLensError: a folder is missing, or the dataset folder is not a full path.
        """
        folder, out = self.data_folder(), self.output_edit.text().strip()
        if not folder:
            raise SqueezeLensError("choose a dataset folder first (one subfolder of images per class)")
        if not out:
            raise SqueezeLensError("choose a folder to save the model in")
        data_dir, output_dir = resolve_folders(folder, out)
        size = self.input_size.value()
        return FinetuneConfig(
            data_dir=str(data_dir), output_dir=str(output_dir),
            model=self.base_picker.current_name() or None, mode=self.mode_value(),
            epochs=self.epochs.value(), input_size=max(size, 32) if size else None, device=self.settings.device,
        )

    def save_settings(self) -> None:
        """Remember the options and the output folder (the dataset folder is remembered when a run starts)."""
        s = self.settings
        s.finetune_mode = self.mode_value()
        s.finetune_epochs = 0 if self.epochs.value() == DEFAULT_EPOCHS[self.mode_value()] else self.epochs.value()
        s.finetune_input_size = self.input_size.value()
        s.finetune_output_folder = self.output_edit.text().strip()
        s.finetune_model = self.base_picker.current_name()

    # -- dialogs and edits ----------------------------------------------------------------------------
    def browse_data(self) -> None:
        start = self.data_folder() or self.settings.last_folder
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder (one subfolder per class)", start)
        if folder:
            self.set_data_folder(folder)

    def browse_output(self) -> None:
        start = self.output_edit.text() or str(Path(self.data_folder() or ".").parent)
        folder = QFileDialog.getExistingDirectory(self, "Save the model in", start)
        if folder:
            self.output_edit.setText(folder)

    def browse_base_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Base model: a saved model folder", self.settings.last_folder)
        if not folder:
            return
        if not is_saved_model_dir(folder):
            self.message.emit(f"{Path(folder).name} is not a saved model: it has no config.json.", True)
            return
        self.base_picker.set_current(folder)
        self._on_base_chosen(folder)

    def _on_base_chosen(self, name: str) -> None:
        self.settings.finetune_model = name
        self.changed.emit()

    def _on_mode(self) -> None:
        new = self.mode_value()
        if self.epochs.value() == DEFAULT_EPOCHS.get(self._mode_value):
            self.epochs.setValue(DEFAULT_EPOCHS[new])
        self._mode_value = new

    def _on_data_text(self, text: str) -> None:
        new_default = default_output_for(text.strip()) if text.strip() else ""
        if self.output_edit.text() in ("", self._default_output):
            self.output_edit.setText(new_default)
        self._default_output = new_default
        self.changed.emit()
        if text.strip() != self._scanned_folder:  # the preview no longer shows this text's folder
            self.scanner.cancel()
            self._scan_token = next(self._scan_ids)
            self._scanned_folder = None
            self.scan, self.scan_error = None, ""
            self.preview.clear()
            self.preview_note.setText(PREVIEW_HINT if text.strip() else "")

    # -- dataset preview ------------------------------------------------------------------------------
    def _scan_if_changed(self) -> None:
        if self.data_folder() != self._scanned_folder:
            self.scan_now()

    def scan_now(self) -> None:
        """List the classes of the folder in the form (in the background, bounded, cancelled by the next)."""
        text = self.data_folder()
        self._scanned_folder = text
        self._scan_token = next(self._scan_ids)
        self.scanner.cancel()
        self.scan, self.scan_error = None, ""
        self.preview.clear()
        if not text:
            self.preview_note.setText("")
            return
        try:
            folder, _ = resolve_folders(text, "")
        except SqueezeLensError as e:
            self._on_scan_failed(self._scan_token, str(e))
            return
        self.preview_note.setText("Scanning...")
        self.scanner.scan(self._scan_token, str(folder))

    def _on_scanned(self, token: int, scan: DatasetScan) -> None:
        if token == self._scan_token:
            self.show_scan(scan)

    def _on_scan_failed(self, token: int, message: str) -> None:
        if token != self._scan_token:
            return
        self.scan, self.scan_error = None, message
        self.preview.clear()
        self.preview_note.setText(f'<span style="{error_style(self.palette())}">{html.escape(message)}</span>')
        self.previewFailed.emit(message)

    def show_scan(self, scan: DatasetScan) -> None:
        """Show ``scan``'s classes and counts, its warnings and the files it will skip."""
        self.scan, self.scan_error = scan, ""
        self.preview.clear()
        for c in scan.counts():
            item = QTreeWidgetItem([c.name, str(c.train), str(c.val)])
            for col in (1, 2):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.preview.addTopLevelItem(item)
        split = f"{scan.val_split:.0%} held out for validation" if scan.val_split is not None else "val/ folder"
        lines = [f"{scan.num_classes} classes, {len(scan.train)} training and {len(scan.val)} validation "
                 f"images ({split})"]
        warn = warn_style(self.palette())
        lines += [f'<span style="{warn}">{html.escape(w)}</span>' for w in scan.warnings]
        if scan.skipped:
            names = [f"{html.escape(s.path.name)}: {html.escape(s.reason)}" for s in scan.skipped[:PREVIEW_SKIPPED]]
            extra = len(scan.skipped) - PREVIEW_SKIPPED
            more = f"<br>... and {extra} more" if extra > 0 else ""
            lines.append(f'<span style="{warn}">{plural(len(scan.skipped), "file")} will be skipped:</span><br>'
                         + "<br>".join(names) + more)
        self.preview_note.setText("<br>".join(lines))
        self.previewShown.emit()
        self.preview_note.setToolTip("\n".join(f"{s.path}: {s.reason}" for s in scan.skipped[:200]))
