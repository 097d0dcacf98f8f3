"""The Finetune window: teach a model the classes of a folder, watch it learn, inspect its mistakes.

A form (dataset folder with a preview, base model, mode, epochs, image size, output folder), Start /
Cancel / Resume, per-batch progress with an ETA, loss and accuracy curves per epoch (QtCharts), then
the validation accuracy, per-class precision/recall, a confusion matrix whose cells list their
images, and what was skipped. "Use this model" switches the main window to the saved folder.

The run is :func:`squeezelens.core.finetune.finetune` in a :class:`FinetuneWorker` thread; the
main window imports this module only when the window is first opened (start-up never loads QtCharts).
"""

from __future__ import annotations

import html
import itertools
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QIcon, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.dataset_scan import DatasetScan
from squeezelens.core.errors import SqueezeLensError
from squeezelens.core.finetune import (
    DEFAULT_EPOCHS,
    BatchEvent,
    DownloadEvent,
    EpochEvent,
    FinetuneConfig,
    FinetuneResult,
    ScanEvent,
    StageEvent,
    WarningEvent,
    check_output_dir,
    describe_event,
    format_seconds,
)
from squeezelens.core.model_loader import is_saved_model_dir

from .confusion_view import MAX_CELL_IMAGES, CellImages, ConfusionView
from .finetune_worker import DatasetScanner, FinetuneWorker, wait_in_background
from .model_picker import ModelPicker
from .settings import AppSettings
from .training_chart import TrainingChart

MODE_ITEMS = (
    ("Quick (new head, frozen backbone)", "quick"),
    ("Deep (last stage + head)", "deep"),
)
#: The preview visits at most this many files and folders (so ``/`` typed by mistake is not walked to the end).
PREVIEW_MAX_ENTRIES = 50_000
PREVIEW_SKIPPED = 5  # unreadable files listed by name in the preview (all of them in the tooltip)
MAX_ISSUES = 500  # skipped files and warnings listed after a run; the rest are counted
PREVIEW_HINT = "Press Enter (or Browse...) to list the classes in this folder."
ERROR_STYLE = "color: #c62828;"
WARN_STYLE = "color: #b26a00;"


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


class FinetuneWindow(QWidget):
    """A non-modal window over the main window; ``useModel(folder)`` asks the main window to switch."""

    useModel = Signal(str)

    def __init__(
        self,
        settings: AppSettings,
        current_model: str = "",
        catalogue: list | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Finetune - SqueezeLens")
        self.settings = settings
        self.worker: FinetuneWorker | None = None
        self.result: FinetuneResult | None = None
        self.scan: DatasetScan | None = None
        self.scan_error = ""
        self._run_config: FinetuneConfig | None = None  # of the run on show (Resume reuses it)
        self._resume_after = 0
        self._scan_ids = itertools.count(1)
        self._run_ids = itertools.count(1)
        self._scan_token = 0
        self._cancelling = False
        self._scanned_folder: str | None = None  # the text the preview was last asked for (None: stale)
        self.scanner = DatasetScanner(PREVIEW_MAX_ENTRIES, self)
        self.scanner.scanned.connect(self._on_scanned)
        self.scanner.failed.connect(self._on_scan_failed)

        self._build_form(current_model, catalogue or [])
        self._build_results()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.form_panel)
        splitter.addWidget(self.results_panel)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([370, 850])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(splitter)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Close), self, activated=self.close)
        self.resize(1240, 800)
        self._set_running(False)
        self._scan_now()

    # -- construction -------------------------------------------------------------------------------
    def _build_form(self, current_model: str, catalogue: list) -> None:
        s = self.settings
        self.data_combo = QComboBox()
        self.data_combo.setEditable(True)
        self.data_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.data_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.data_combo.setMinimumContentsLength(20)
        self.data_combo.lineEdit().setPlaceholderText("a folder with one subfolder of images per class")
        self.data_combo.setToolTip("One subfolder of images per class, or train/ and val/ of that form")
        self.data_combo.setAccessibleName("Dataset folder")
        self._fill_data_folders()
        self.data_browse = QPushButton("Browse...")
        self.data_browse.clicked.connect(self.browse_data)
        self.data_combo.editTextChanged.connect(self._on_data_text)
        # the preview scans a folder once it is chosen (Enter, leaving the field, a listed folder), not while typing
        self.data_combo.lineEdit().editingFinished.connect(self._scan_if_changed)
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
        for text, value in MODE_ITEMS:
            self.mode.addItem(text, value)
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

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.setIcon(QIcon.fromTheme("media-playback-start"))
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the cancelled deep run from its last finished epoch")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.resume_button.hide()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.eta_label = QLabel()
        self.eta_label.setObjectName("etaLabel")
        self._idle_progress("")
        self.status = QLabel("Choose a folder with one subfolder of images per class, then Start.")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # paths and messages, never markup
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setMinimumHeight(self.fontMetrics().lineSpacing() * 3)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

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

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.eta_label)

        self.form_panel = QWidget()
        fl = QVBoxLayout(self.form_panel)
        fl.setContentsMargins(0, 0, 4, 0)
        fl.addWidget(data_box, 1)
        fl.addWidget(train_box)
        fl.addLayout(buttons)
        fl.addWidget(self.progress)
        fl.addWidget(self.status)
        self.form_panel.setMinimumWidth(340)
        self._inputs: list[QWidget] = [self.data_combo, self.data_browse, self.base_picker, self.mode, self.epochs,
                                       self.input_size, self.output_edit, self.output_browse]
        # Resume continues the cancelled run as it was: any change to the form withdraws it (the base model
        # and the dataset folder: _on_base_chosen, _on_data_text)
        self.mode.currentIndexChanged.connect(self._on_form_changed)
        self.epochs.valueChanged.connect(self._on_form_changed)
        self.input_size.valueChanged.connect(self._on_form_changed)
        self.output_edit.textChanged.connect(self._on_form_changed)

    def _build_results(self) -> None:
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
        self.use_button.clicked.connect(self.use_model)
        head = QHBoxLayout()
        head.addWidget(self.summary, 1)
        head.addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignTop)

        self.confusion = ConfusionView()
        self.confusion.cellChosen.connect(self.show_cell)
        self.cell_label = QLabel("Click a cell of the matrix to see its validation images.")
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
        self.results_panel = QSplitter(Qt.Orientation.Vertical)
        self.results_panel.addWidget(charts)
        self.results_panel.addWidget(bottom)
        self.results_panel.setSizes([300, 480])
        self.results_panel.setChildrenCollapsible(False)

    # -- form ---------------------------------------------------------------------------------------
    def _fill_data_folders(self) -> None:
        capture = self.settings.capture_folder
        recent = self.settings.finetune_data_folders
        self.data_combo.blockSignals(True)
        self.data_combo.clear()
        if capture:
            self.data_combo.addItem(QIcon.fromTheme("camera-photo"), capture)
            self.data_combo.setItemData(0, "The camera's capture folder", Qt.ItemDataRole.ToolTipRole)
        for folder in recent:
            if folder != capture:
                self.data_combo.addItem(folder)
        self.data_combo.setCurrentText(recent[0] if recent else capture)
        self.data_combo.blockSignals(False)

    def data_folder(self) -> str:
        return self.data_combo.currentText().strip()

    def set_data_folder(self, folder: str) -> None:
        self.data_combo.setCurrentText(folder)  # editTextChanged -> output default
        self._scan_now()

    def mode_value(self) -> str:
        return str(self.mode.currentData())

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
            self._show_status(f"{Path(folder).name} is not a saved model: it has no config.json.", error=True)
            return
        self.base_picker.set_current(folder)
        self._on_base_chosen(folder)

    def _on_base_chosen(self, name: str) -> None:
        self.settings.finetune_model = name
        self._on_form_changed()

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
        self._on_form_changed()
        if text.strip() != self._scanned_folder:  # the preview no longer shows this text's folder
            self.scanner.cancel()
            self._scan_token = next(self._scan_ids)
            self._scanned_folder = None
            self.scan, self.scan_error = None, ""
            self.preview.clear()
            self.preview_note.setText(PREVIEW_HINT if text.strip() else "")

    def _on_form_changed(self) -> None:
        if self.worker is None and self._resume_after:
            self._resume_after = 0
            self.resume_button.hide()

    def _save_form(self) -> None:
        s = self.settings
        s.finetune_mode = self.mode_value()
        s.finetune_epochs = 0 if self.epochs.value() == DEFAULT_EPOCHS[self.mode_value()] else self.epochs.value()
        s.finetune_input_size = self.input_size.value()
        s.finetune_output_folder = self.output_edit.text().strip()
        s.finetune_model = self.base_picker.current_name()

    # -- dataset preview ------------------------------------------------------------------------------
    def _scan_if_changed(self) -> None:
        if self.data_folder() != self._scanned_folder:
            self._scan_now()

    def _scan_now(self) -> None:
        """List the classes of the folder in the form (in the scanner's thread, bounded, cancelled by the next)."""
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
            self._show_scan(scan)

    def _on_scan_failed(self, token: int, message: str) -> None:
        if token != self._scan_token:
            return
        self.scan, self.scan_error = None, message
        self.preview.clear()
        self.preview_note.setText(f'<span style="{ERROR_STYLE}">{html.escape(message)}</span>')

    def _show_scan(self, scan: DatasetScan) -> None:
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
        lines += [f'<span style="{WARN_STYLE}">{html.escape(w)}</span>' for w in scan.warnings]
        if scan.skipped:
            names = [f"{html.escape(s.path.name)}: {html.escape(s.reason)}" for s in scan.skipped[:PREVIEW_SKIPPED]]
            extra = len(scan.skipped) - PREVIEW_SKIPPED
            more = f"<br>... and {extra} more" if extra > 0 else ""
            lines.append(f'<span style="{WARN_STYLE}">{len(scan.skipped)} file(s) will be skipped:</span><br>'
                         + "<br>".join(names) + more)
        self.preview_note.setText("<br>".join(lines))
        if self.worker is None and self.result is None:
            self._show_status("Ready: Start trains on this folder.")
        self.preview_note.setToolTip("\n".join(f"{s.path}: {s.reason}" for s in scan.skipped[:200]))

    # -- run ------------------------------------------------------------------------------------------
    def build_config(self) -> FinetuneConfig:
        """The form as a run configuration (checked by core when the run starts)."""
        folder, out = self.data_folder(), self.output_edit.text().strip()
        if not folder:
            raise SqueezeLensError("choose a dataset folder first (one subfolder of images per class)")
        if not out:
            raise SqueezeLensError("choose a folder to save the model in")
        data_dir, output_dir = resolve_folders(folder, out)
        size = self.input_size.value()
        return FinetuneConfig(
            data_dir=str(data_dir), output_dir=str(output_dir),
            model=self.base_picker.current_name() or None, mode=self.mode_value(),  # type: ignore[arg-type]
            epochs=self.epochs.value(), input_size=max(size, 32) if size else None, device=self.settings.device,
        )

    def start(self, resume: bool = False) -> bool:
        """Start a run from the form (or resume the cancelled deep run); False when it did not start."""
        if self.worker is not None:
            return False
        try:
            config = self.build_config()
            check_output_dir(config.output_dir, config.data_dir)
        except SqueezeLensError as e:
            self._show_status(str(e), error=True)
            return False
        if resume:
            if not self.can_resume(config):  # the form changed since (Resume is hidden then; a stale click)
                self._on_form_changed()
                self._show_status("The settings changed since the run was cancelled, so it cannot be resumed: "
                                  "Start begins a new run.", error=True)
                return False
            config = replace(config, resume=True)
        else:
            out = Path(config.output_dir)
            if is_saved_model_dir(out) and not self._confirm(
                    "Replace the saved model?",
                    f"{out} already holds a saved model. Replace it with the new one?\n\n"
                    "It is replaced only when training finishes; a cancelled or failed run leaves it as it is."):
                return False
        self._save_form()
        self.settings.add_finetune_data_folder(str(config.data_dir))
        self._begin(config, resume)
        return True

    def can_resume(self, config: FinetuneConfig) -> bool:
        """Whether ``config`` (the form) is the cancelled deep run's, which can go on after its last epoch."""
        last = self._run_config
        return (self._resume_after > 0 and last is not None and last.mode == "deep"
                and replace(last, resume=False) == replace(config, resume=False))

    def _begin(self, config: FinetuneConfig, resume: bool) -> None:
        self._run_config = config
        self._resume_after = 0
        self.result = None
        self.use_button.setEnabled(False)
        self.resume_button.hide()
        if not resume:
            self.loss_chart.reset(config.resolved_epochs)
            self.acc_chart.reset(config.resolved_epochs)
            self.log.clear()
        self.issues.clear()
        self.tabs.setTabText(2, "Skipped && warnings")
        self.summary.setText("Training...")
        self.confusion.set_matrix([], [])
        self.per_class.setRowCount(0)
        self.cell_images.show_paths([])
        self.cell_label.setText("Click a cell of the matrix to see its validation images.")
        self.eta_label.clear()
        self._busy("Starting...")
        worker = FinetuneWorker(config, next(self._run_ids))
        worker.progressed.connect(self._on_event)
        worker.succeeded.connect(self._on_succeeded)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._cancelling = False
        self._set_running(True)
        self._log(f"{'Resuming' if resume else 'Starting'}: {config.mode} mode, {config.resolved_epochs} epoch(s), "
                  f"base {config.model or DEFAULT_MODEL}, saving to {config.output_dir}")
        worker.start_run()

    def cancel(self) -> None:
        """Stop the run at the next batch; the output folder stays as it was."""
        if self.worker is None or self._cancelling:
            return
        self._cancelling = True
        self.worker.cancel()
        self.cancel_button.setEnabled(False)
        self._show_status("Cancelling at the next batch...")

    @property
    def running(self) -> bool:
        return self.worker is not None

    def _set_running(self, running: bool) -> None:
        for w in self._inputs:
            w.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _busy(self, text: str) -> None:
        self.progress.setRange(0, 0)
        self.progress.setFormat(text)
        self._show_status(text)

    # -- worker answers (each checks it comes from the current run) ------------------------------------
    def _current(self, run_id: int) -> bool:
        return self.worker is not None and run_id == self.worker.run_id

    def _on_event(self, run_id: int, e: Any) -> None:
        if not self._current(run_id):
            return
        if isinstance(e, BatchEvent):
            self._on_batch(e)
            return
        text = describe_event(e)
        if isinstance(e, EpochEvent):
            s = e.stats
            self.loss_chart.add_point(s.epoch, s.train_loss, s.val_loss)
            self.acc_chart.add_point(s.epoch, s.train_acc, s.val_acc)
            if e.eta_s is not None:
                self.eta_label.setText(f"ETA {format_seconds(e.eta_s)}")
        elif isinstance(e, StageEvent):
            if e.stage != "train":
                self.progress.setRange(0, 0)
                self.progress.setFormat(e.stage)
            self.eta_label.clear()
        elif isinstance(e, ScanEvent):
            self._show_scan(e.scan)
            text = e.scan.summary().splitlines()[0]
        elif isinstance(e, DownloadEvent):
            if e.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(e.done * 1000 / e.total))
            self.progress.setFormat("downloading weights %p%" if e.total else "downloading weights")
        elif isinstance(e, WarningEvent):
            self.issues.addItem(f"Warning: {e.message}")
        if not self._cancelling:
            self._show_status(text)
        if not isinstance(e, DownloadEvent):
            self._log(text)

    def _on_batch(self, e: BatchEvent) -> None:
        if e.eta_s is not None:
            scope = "features" if e.stage == "features" else "training"
            self.eta_label.setText(f"{scope} ETA {format_seconds(e.eta_s)}")
        if e.stage == "train":
            self.progress.setFormat(f"epoch {e.epoch}/{e.epochs}, batch {e.batch}/{e.batches}")
            self.progress.setRange(0, max(1, e.epochs * e.batches))
            self.progress.setValue((e.epoch - 1) * e.batches + e.batch)
        else:
            what = "features" if e.stage == "features" else f"epoch {e.epoch}/{e.epochs} validation"
            self.progress.setFormat(f"{what}, batch {e.batch}/{e.batches}")
            self.progress.setRange(0, max(1, e.batches))
            self.progress.setValue(e.batch)
        if not self._cancelling:
            self._show_status(describe_event(e))

    def _on_succeeded(self, run_id: int, r: FinetuneResult) -> None:
        if not self._current(run_id):
            return
        self.result = r
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")
        self.eta_label.setText(f"took {format_seconds(r.timings.get('total', 0.0))}")
        self.loss_chart.reset(max(len(r.history), r.history[-1].epoch if r.history else 1))
        self.acc_chart.reset(max(len(r.history), r.history[-1].epoch if r.history else 1))
        for h in r.history:
            self.loss_chart.add_point(h.epoch, h.train_loss, h.val_loss)
            self.acc_chart.add_point(h.epoch, h.train_acc, h.val_acc)
        epochs = f"best epoch {r.best_epoch} of {len(r.history)}" + (" (stopped early)" if r.stopped_early else "")
        untrained = (f'<br><span style="{WARN_STYLE}">The base model had no pretrained weights: these numbers '
                     'come from random features.</span>') if r.untrained_base else ""
        self.summary.setText(
            f'<span style="font-size: 15pt; font-weight: 600;">Validation accuracy {r.val_accuracy:.1%}</span>'
            f"&nbsp;&nbsp;{len(r.val_predictions)} validation images, {len(r.misclassified)} wrong; {epochs}<br>"
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
        self.tabs.setTabText(2, f"Skipped && warnings ({len(r.skipped) + len(r.warnings)})")
        self.use_button.setEnabled(True)
        wrong = [(t, p) for t in range(len(r.confusion)) for p in range(len(r.confusion))
                 if t != p and r.confusion[t][p]]
        if wrong:  # the biggest mistake first: what a person wants to look at
            t, p = max(wrong, key=lambda c: r.confusion[c[0]][c[1]])
            self.confusion.setCurrentIndex(self.confusion.matrix.index(t, p))  # -> cellChosen -> show_cell
        else:
            self.cell_label.setText("No validation image was misclassified. Click a cell to see its images.")
        if self._cancelling:  # the cancel came while the model was being saved: it was saved all the same
            self._show_status(f"The run finished before the cancel took effect: the model was saved to "
                              f"{r.output_dir} (validation accuracy {r.val_accuracy:.1%}).")
        else:
            self._show_status(f"Done: validation accuracy {r.val_accuracy:.1%}; saved to {r.output_dir}")
        self._log(f"done: validation accuracy {r.val_accuracy:.1%}, saved to {r.output_dir}")

    def _fill_per_class(self, r: FinetuneResult) -> None:
        self.per_class.setSortingEnabled(False)
        self.per_class.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # class order first
        self.per_class.setRowCount(len(r.per_class))
        for row, m in enumerate(r.per_class):
            cells = [(m.name, m.name), (f"{m.precision:.1%}", m.precision), (f"{m.recall:.1%}", m.recall),
                     (f"{m.f1:.2f}", m.f1), (str(m.support), m.support)]
            for col, (text, value) in enumerate(cells):
                item = _SortItem(text)
                item.setData(Qt.ItemDataRole.UserRole, value)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(row, col, item)
        self.per_class.setSortingEnabled(True)

    def _on_cancelled(self, run_id: int, message: str, epochs_done: int) -> None:
        if not self._current(run_id):
            return
        self._idle_progress("cancelled")
        self._resume_after = epochs_done
        extra = ""
        if epochs_done and self._run_config is not None and self._run_config.mode == "deep":
            extra = f" Resume continues after epoch {epochs_done}."
        self.summary.setText("Cancelled: no model was saved; the output folder is as it was.")
        self._show_status(f"Cancelled: {message}.{extra}")
        self._log(f"cancelled: {message}")

    def _on_failed(self, run_id: int, message: str) -> None:
        if not self._current(run_id):
            return
        self._idle_progress("failed")
        self.summary.setText("No model was saved.")
        self._show_status(message, error=True)
        self._log(f"error: {message}")

    def _on_finished(self) -> None:
        if self.worker is None or self.sender() is not self.worker:
            return
        self.worker = None
        self._cancelling = False
        self._set_running(False)
        can_resume = self._resume_after > 0 and self._run_config is not None and self._run_config.mode == "deep"
        self.resume_button.setText(f"Resume (after epoch {self._resume_after})" if can_resume else "Resume")
        self.resume_button.setVisible(can_resume)

    def _idle_progress(self, text: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(text)
        self.eta_label.clear()

    # -- results --------------------------------------------------------------------------------------
    def show_cell(self, true_index: int, pred_index: int) -> None:
        """List the validation images of one confusion-matrix cell."""
        r = self.result
        if r is None or not (0 <= true_index < len(r.class_names) and 0 <= pred_index < len(r.class_names)):
            return
        paths = r.images_in_cell(true_index, pred_index)
        t, p = r.class_names[true_index], r.class_names[pred_index]
        what = f"{t}, predicted correctly" if true_index == pred_index else f"{t} predicted as {p}"
        shown = f" (the first {MAX_CELL_IMAGES} shown)" if len(paths) > MAX_CELL_IMAGES else ""
        self.cell_label.setText(f"{len(paths)} image(s): {what}{shown}")
        self.cell_images.show_paths(paths)

    def use_model(self) -> None:
        if self.result is None:
            return
        folder = str(Path(self.result.output_dir).resolve())
        self.useModel.emit(folder)
        self._show_status(f"The main window now uses {Path(folder).name}.")

    # -- helpers --------------------------------------------------------------------------------------
    def _show_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(ERROR_STYLE if error else "")
        self.status.setText(text)

    def _log(self, text: str) -> None:
        self.log.appendPlainText(text)

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def showEvent(self, event: QShowEvent) -> None:
        """Offer the folders known now (the camera may have set its capture folder since the last time)."""
        super().showEvent(event)
        if self.worker is None:
            current = self.data_folder()
            self._fill_data_folders()
            if current:
                self.data_combo.blockSignals(True)
                self.data_combo.setCurrentText(current)
                self.data_combo.blockSignals(False)

    def confirm_stop(self, action: str = "close the window") -> bool:
        """While training runs (and no cancel is under way), ask whether to stop it and ``action``.

        True when nothing is running or the user said yes (the caller then cancels).
        """
        if self.worker is None or self._cancelling:
            return True
        return self._confirm("Stop training?", f"Training is still running. Stop it and {action}?\n\n"
                             "No model is saved (unless it is already being saved); the output folder stays as it was.")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing while training asks first; a stopped run ends by itself within a batch."""
        if not self.confirm_stop():
            event.ignore()
            return
        self.cancel()
        self._save_form()
        event.accept()

    def shutdown(self, timeout_ms: int = 1800) -> bool:
        """The app is closing: save the form, cancel the run and the preview scan, and wait for them (bounded).

        True when nothing is left running. A preview scan still running after that is a non-daemon Python
        thread, so ``app.run`` ends the process instead of waiting for it.
        """
        deadline = time.monotonic() + timeout_ms / 1000

        def ms_left() -> int:
            return max(0, int((deadline - time.monotonic()) * 1000))

        self._save_form()
        self.settings.sync()  # on disk now: the process may end with os._exit (a run or a scan still going)
        self.scanner.cancel()
        worker = self.worker
        if worker is not None:
            worker.cancel()
        stopped = worker is None or worker.wait(ms_left())
        if not stopped:
            wait_in_background(worker)  # app.run then ends the process instead of destroying a running thread
        idle = self.scanner.wait(ms_left()) and self.cell_images.loader.wait(ms_left())
        return stopped and idle


class _SortItem(QTableWidgetItem):
    """Sorts by its value (UserRole), not its text: 9.5% before 10.0%."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        return a < b if type(a) is type(b) and a is not None else super().__lt__(other)
