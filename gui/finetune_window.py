"""The Finetune window: teach a model the classes of a folder, watch it learn, inspect its mistakes.

On the left the form (:mod:`.finetune_form`: dataset folder with a preview, base model, mode, epochs,
image size, output folder) with Start / Resume / Cancel, per-batch progress with an ETA and a status
line; on the right the results (:mod:`.finetune_results`). This module holds the run's life cycle:
start (after confirming a model is replaced), progress, cancel, resume after a cancelled deep run,
done, and stopping the run when the window or the app closes. "Use this model" switches the main
window to the saved folder.

The run is :func:`squeezelens.core.finetune.finetune` in a background task (:class:`.FinetuneRun`);
the main window imports this module only when the window is first opened (start-up never loads
QtCharts).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QCloseEvent, QIcon, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.errors import SqueezeLensError
from squeezelens.core.finetune import (
    UNTRAINED_BASE,
    BatchEvent,
    DownloadEvent,
    EpochEvent,
    FinetuneConfig,
    FinetuneResult,
    ScanEvent,
    StageEvent,
    WarningEvent,
    describe_event,
)
from squeezelens.core.model_loader import is_saved_model_dir
from squeezelens.core.progress_text import format_seconds

from .finetune_form import FinetuneForm, error_style, warn_style
from .finetune_progress import CHANCE_AFTER_EPOCHS, RunProgress, at_chance, chance_hint
from .finetune_results import FinetuneResults
from .finetune_run import FinetuneRun
from .model_picker import ModelPicker
from .settings import AppSettings
from .version_compare import VersionPanel, replace_question
from .wording import plural


class FinetuneWindow(QWidget):
    """A non-modal window over the main window; ``useModel(folder)`` asks the main window to switch.

    ``run`` is the run going on (None when idle); ``form`` and ``results`` are the two halves.
    """

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
        self.run: FinetuneRun | None = None
        self._run_config: FinetuneConfig | None = None  # of the run on show (Resume reuses it)
        self._resume_after = 0
        self._run_ids = itertools.count(1)
        self._cancelling = False
        self._progress: RunProgress | None = None  # the run's whole-run progress (all epochs and phases)
        self._num_classes = 0  # from the run's scan (the chance-level hint needs it)
        self._untrained_base = False
        self._chance_hinted = False
        self._status_error = False  # the status line shows an error (its colour follows the palette)

        self.form = FinetuneForm(settings, current_model, catalogue)
        self.form.changed.connect(self._on_form_changed)
        self.form.message.connect(self._show_status)
        self.form.previewShown.connect(self._on_preview_shown)
        self.form.previewFailed.connect(self._on_preview_failed)
        self.form.changed.connect(self._update_start)
        self.results = FinetuneResults()
        self.results.use_button.clicked.connect(self.use_model)
        self.versions = VersionPanel()  # previous vs new accuracy, the versions kept, rollback (issue 16)
        self.versions.rolledBack.connect(lambda folder, _n: self.useModel.emit(folder))
        left = self._build_run_controls()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.results)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([370, 850])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(splitter)
        layout.addWidget(self.versions)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Close), self, self.close)
        self.resize(1240, 800)
        self._set_running(False)
        self.form.scan_now()

    def _build_run_controls(self) -> QWidget:
        """The form with Start / Resume / Cancel, the progress bar, the ETA and the status line under it."""
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
        self.untrained_banner = self._warning_label("untrainedBanner")  # shown before training starts
        self.hint_label = self._warning_label("hintLabel")  # e.g. "the loss stays at chance level"
        self.status = QLabel("Choose a folder with one subfolder of images per class, then Start.")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # paths and messages, never markup
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setMinimumHeight(self.fontMetrics().lineSpacing() * 3)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.eta_label)
        panel = QWidget()
        fl = QVBoxLayout(panel)
        fl.setContentsMargins(0, 0, 4, 0)
        fl.addWidget(self.form, 1)
        fl.addWidget(self.untrained_banner)
        fl.addWidget(self.hint_label)
        fl.addLayout(buttons)
        fl.addWidget(self.progress)
        fl.addWidget(self.status)
        panel.setMinimumWidth(340)
        return panel

    @staticmethod
    def _warning_label(name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setWordWrap(True)
        label.hide()  # styled when shown (warn_style of the palette then)
        return label

    @property
    def base_picker(self) -> ModelPicker:
        """The base-model picker (the main window hands it the catalogue once it is listed)."""
        return self.form.base_picker

    @property
    def result(self) -> FinetuneResult | None:
        """The finished run on show (None before one, while one goes, or after one failed)."""
        return self.results.result

    # -- start ----------------------------------------------------------------------------------------
    def start(self, resume: bool = False) -> bool:
        """Start a run from the form (or resume the cancelled deep run); False when it did not start."""
        if self.run is not None:
            return False
        try:
            config = self.form.build_config()
            config.validate()  # the settings and the output folder: the one check core's finetune() makes
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
                    "Replace the saved model?", replace_question(out)):
                return False
        self.form.save_settings()
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
        self.resume_button.hide()
        self.results.clear_for_run(config.resolved_epochs, resume)
        self.eta_label.clear()
        self._progress = RunProgress(config.mode, config.resolved_epochs, config.batch_size)
        self._num_classes = 0
        self._untrained_base = self._chance_hinted = False
        self.untrained_banner.hide()
        self.hint_label.hide()
        self._busy("Starting...")
        run = FinetuneRun(config, next(self._run_ids), self)
        run.progressed.connect(self._on_event)
        run.succeeded.connect(self._on_succeeded)
        run.cancelled.connect(self._on_cancelled)
        run.failed.connect(self._on_failed)
        run.finished.connect(self._on_finished)
        self.run = run
        self._cancelling = False
        self._set_running(True)
        epochs = plural(config.resolved_epochs, "epoch")
        self._log(f"{'Resuming' if resume else 'Starting'}: {config.mode} mode, {epochs}, "
                  f"base {config.model or DEFAULT_MODEL}, saving to {config.output_dir}")
        run.start()

    def cancel(self) -> None:
        """Stop the run at the next batch; the output folder stays as it was."""
        if self.run is None or self._cancelling:
            return
        self._cancelling = True
        self.run.cancel()
        self.cancel_button.setEnabled(False)
        self._show_status("Cancelling at the next batch...")

    @property
    def running(self) -> bool:
        return self.run is not None

    def _set_running(self, running: bool) -> None:
        self.form.set_editable(not running)
        self.start_button.setEnabled(not running and self._folder_ok())
        self.resume_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _busy(self, text: str) -> None:
        self.progress.setRange(0, 0)
        self.progress.setFormat(text)
        self._show_status(text)

    def _on_form_changed(self) -> None:
        """Resume continues the cancelled run as it was: any change to the form withdraws it."""
        if self.run is None and self._resume_after:
            self._resume_after = 0
            self.resume_button.hide()

    def _folder_ok(self) -> bool:
        """The preview has scanned the form's folder and found it trainable (Start is offered only then)."""
        return self.form.scan is not None and not self.form.scan_error

    def _update_start(self) -> None:
        if self.run is None:
            self.start_button.setEnabled(self._folder_ok())

    def _on_preview_shown(self) -> None:
        self._update_start()
        if self.run is None and self.result is None:
            self._show_status("Ready: Start trains on this folder.")

    def _on_preview_failed(self, message: str) -> None:
        self._update_start()
        if self.run is None:
            self._show_status(f"Cannot start: {message}", error=True)

    # -- the run's answers (each checks it comes from the current run) ---------------------------------
    def _current(self, run_id: int) -> bool:
        return self.run is not None and run_id == self.run.run_id

    def _on_event(self, run_id: int, e: Any) -> None:
        if not self._current(run_id):
            return
        if isinstance(e, BatchEvent):
            self._on_batch(e)
            return
        text = describe_event(e)
        if isinstance(e, EpochEvent):
            self.results.add_epoch(e.stats)
            if e.eta_s is not None:
                self.eta_label.setText(f"ETA {format_seconds(e.eta_s)}")
            self._check_chance(e)
        elif isinstance(e, StageEvent):
            if e.stage in ("scan", "load") or self._progress is None:  # nothing to count yet
                self.progress.setRange(0, 0)
            else:  # the bar keeps the whole run's progress through every stage
                if e.stage in ("evaluate", "save"):
                    self._progress.fraction = 1.0
                self._show_fraction()
            self.progress.setFormat(e.message if e.stage == "features" else e.stage)
            self.eta_label.clear()
        elif isinstance(e, ScanEvent):
            self.form.show_scan(e.scan)
            self._num_classes = len(e.scan.class_names)
            if self._progress is not None:
                self._progress.set_val_images(len(e.scan.val))
            text = e.scan.summary().splitlines()[0]
        elif isinstance(e, DownloadEvent):
            if e.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(e.done * 1000 / e.total))
            self.progress.setFormat("downloading weights %p%" if e.total else "downloading weights")
        elif isinstance(e, WarningEvent):
            self.results.add_warning(e.message)
            if e.kind == UNTRAINED_BASE:  # right after loading, before any training: say it now
                self._untrained_base = True
                self.untrained_banner.setText(f"\u26a0 Base model {e.message}. The results will be far worse "
                                              "than with pretrained weights.")  # a model name keeps its case
                self.untrained_banner.setStyleSheet(warn_style(self.palette()))
                self.untrained_banner.show()
                self.results.show_no_model("Training on a base model without pretrained weights...")
        if not self._cancelling:
            self._show_status(text)
        if not isinstance(e, DownloadEvent):
            self._log(text)

    def _on_batch(self, e: BatchEvent) -> None:
        if e.eta_s is not None:
            scope = "features" if e.stage == "features" else "training"
            self.eta_label.setText(f"{scope} ETA {format_seconds(e.eta_s)}")
        if self._progress is not None:
            self._progress.update(e)
            self._show_fraction()
        if e.stage == "train":
            self.progress.setFormat(f"epoch {e.epoch}/{e.epochs}, batch {e.batch}/{e.batches}")
        elif e.stage == "features":  # the slow part of a quick run: its count and time left on the bar
            eta = f", ETA {format_seconds(e.eta_s)}" if e.eta_s is not None else ""
            self.progress.setFormat(f"features, batch {e.batch}/{e.batches}{eta}")
        else:
            self.progress.setFormat(f"epoch {e.epoch}/{e.epochs} validation, batch {e.batch}/{e.batches}")
        if not self._cancelling:
            self._show_status(describe_event(e))

    def _show_fraction(self) -> None:
        """The bar at the whole run's progress (0-1000, so ``%p`` reads in whole percent)."""
        self.progress.setRange(0, 1000)
        self.progress.setValue(round(1000 * (self._progress.fraction if self._progress else 0.0)))

    def _check_chance(self, e: EpochEvent) -> None:
        """A deep run whose training loss is still at ln(classes) after the first epochs gets a hint (once)."""
        config = self._run_config
        if (self._chance_hinted or config is None or config.mode != "deep" or self._num_classes < 2
                or e.stats.epoch < CHANCE_AFTER_EPOCHS or not at_chance(e.stats.train_loss, self._num_classes)):
            return
        self._chance_hinted = True
        hint = chance_hint(e.stats.epoch, self._num_classes, self._untrained_base)
        self.hint_label.setText(f"\u26a0 {hint}")
        self.hint_label.setStyleSheet(warn_style(self.palette()))
        self.hint_label.show()
        self.results.add_warning(hint)
        self._log(f"hint: {hint}")

    def _on_succeeded(self, run_id: int, r: FinetuneResult) -> None:
        if not self._current(run_id):
            return
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")
        self.eta_label.setText(f"took {format_seconds(r.timings.get('total', 0.0))}")
        self.results.show_result(r)
        self.versions.show_folder(r.output_dir, r.previous_version, r.version, staged=r.staged)
        if self._cancelling:  # the cancel came while the model was being saved: it was saved all the same
            self._show_status(f"The run finished before the cancel took effect: the model was saved to "
                              f"{r.output_dir} (validation accuracy {r.val_accuracy:.1%}).")
        else:
            self._show_status(f"Done: validation accuracy {r.val_accuracy:.1%}; saved to {r.output_dir}")
        self._log(f"done: validation accuracy {r.val_accuracy:.1%}, saved to {r.output_dir}")

    def _on_cancelled(self, run_id: int, message: str, epochs_done: int) -> None:
        if not self._current(run_id):
            return
        self._idle_progress("cancelled")
        self._resume_after = epochs_done
        extra = ""
        if epochs_done and self._run_config is not None and self._run_config.mode == "deep":
            extra = f" Resume continues after epoch {epochs_done}."
        self.results.show_no_model("Cancelled: no model was saved; the output folder is as it was.")
        self._show_status(f"Cancelled: {message}.{extra}")
        self._log(f"cancelled: {message}")

    def _on_failed(self, run_id: int, message: str) -> None:
        if not self._current(run_id):
            return
        self._idle_progress("failed")
        self.results.show_no_model("No model was saved.")
        self._show_status(message, error=True)
        self._log(f"error: {message}")

    def _on_finished(self, run_id: int) -> None:
        run = self.run
        if run is None or run.run_id != run_id:
            return
        run.deleteLater()  # its task has stopped; nothing else holds on to it
        self.run = None
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

    def use_model(self) -> None:
        folder = self.results.saved_folder()
        if folder is None:
            return
        self.useModel.emit(folder)
        self._show_status(f"The main window now uses {Path(folder).name}.")

    # -- helpers --------------------------------------------------------------------------------------
    def _show_status(self, text: str, error: bool = False) -> None:
        self._status_error = error
        self.status.setStyleSheet(error_style(self.palette()) if error else "")
        self.status.setText(text)

    def changeEvent(self, event: QEvent) -> None:
        """A new palette (the desktop switched to dark): the warning and error colours follow it."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            for label in (self.untrained_banner, self.hint_label):
                label.setStyleSheet(warn_style(self.palette()))
            self.status.setStyleSheet(error_style(self.palette()) if self._status_error else "")

    def _log(self, text: str) -> None:
        self.results.add_log(text)

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    # -- showing, closing, quitting -------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        """Offer the folders known now (the camera may have set its capture folder since the last time)."""
        super().showEvent(event)
        if self.run is None:
            self.form.refresh_data_folders()

    def confirm_stop(self, action: str = "close the window") -> bool:
        """While training runs (and no cancel is under way), ask whether to stop it and ``action``.

        True when nothing is running or the user said yes (the caller then cancels).
        """
        if self.run is None or self._cancelling:
            return True
        return self._confirm("Stop training?", f"Training is still running. Stop it and {action}?\n\n"
                             "No model is saved (unless it is already being saved); the output folder stays as it was.")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing while training asks first; a stopped run ends by itself within a batch."""
        if not self.confirm_stop():
            event.ignore()
            return
        self.cancel()
        self.form.save_settings()
        event.accept()

    def shutdown(self, timeout_ms: int = 1800) -> bool:
        """The app is closing: save the form, cancel the run, the preview scan and the thumbnails, and wait
        for them (``timeout_ms`` ms in all, at most).

        True when nothing is left running. What still runs after that stays in the task registry, where
        ``app.run`` finds it (see there).
        """
        deadline = time.monotonic() + timeout_ms / 1000

        def ms_left() -> int:
            return max(0, int((deadline - time.monotonic()) * 1000))

        self.form.save_settings()
        self.settings.sync()  # on disk now: the process may end with os._exit (a run stuck in torch)
        self.form.scanner.cancel()
        run = self.run
        if run is not None:
            run.cancel()
        stopped = run is None or run.wait(ms_left())
        idle = (self.form.scanner.wait(ms_left()) and self.results.wait(ms_left())
                and self.versions.wait(ms_left()))
        return stopped and idle
