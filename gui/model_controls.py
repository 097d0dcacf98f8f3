"""The main window's model controls: loading a model on a device, download progress, keeping the model
that worked when another fails, the catalogue, and the Finetune window's entry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.progress_text import format_bytes

from .settings import DEFAULT_DEVICE
from .worker import ModelSpec, ModelState

if TYPE_CHECKING:
    from .main_window import MainWindow

    _Base = MainWindow
else:
    _Base = object


class ModelControls(_Base):
    """Mixed into :class:`MainWindow`: the methods behind the model picker, Model > Device and the status bar."""

    def load_model(self, name: str | None) -> None:
        """Load ``name`` on the chosen device in the worker; the image on show is classified again with it."""
        self.model_state = None
        self._trying = (name or "", self.settings.device)
        self.client.load_model(ModelSpec(name=name, device=self.settings.device, precision=self.settings.precision))
        self.status_label.setText(f"Loading {short_name(name or DEFAULT_MODEL)}...")
        # the corner label keeps naming where the model that answers runs: the worker keeps it until the
        # new one is ready (or for good, when the new one fails)
        self._reclassify_current()  # queued behind the load, so the new model answers

    def choose_model(self, name: str) -> None:
        self._model_name = name
        self.settings.model = name
        if Path(name).is_absolute():
            self.settings.add_recent_model(name)
        self.picker.set_current(name)
        self.load_model(name)

    def set_device_availability(self, reasons: dict[str, str | None]) -> None:
        """Disable the Device menu's entries that cannot run here, each saying why (its tooltip and name)."""
        from .main_actions import DEVICE_NAMES

        for a in self.device_group.actions():
            value = a.data()
            reason = reasons.get(value)
            name = DEVICE_NAMES.get(value, value)
            a.setEnabled(reason is None)
            a.setText(name if reason is None else f"{name} - not available")
            a.setToolTip(reason[:1].upper() + reason[1:] if reason else name)
            a.setStatusTip(a.toolTip())

    def choose_device(self, device: str) -> None:
        if device == self.settings.device:
            return
        self.settings.device = device
        self.load_model(self._model_name or None)

    def open_model_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a saved model folder (config.json + model.safetensors)", self.settings.last_folder)
        if not folder:
            return
        if not (Path(folder) / "config.json").is_file():
            self.show_notice(f"{Path(folder).name} is not a saved model: it has no config.json.")
            return
        self.use_model_folder(folder)

    def use_model_folder(self, folder: str) -> None:
        """Switch to a saved model folder (Open Model Folder, the Finetune window's "Use this model")."""
        self.picker.set_recent([folder] + [f for f in self.settings.recent_models if f != folder])
        self.choose_model(folder)

    def open_finetune(self) -> None:
        """Show the Finetune window (one; its module, and QtCharts, are imported the first time)."""
        if self.finetune_window is None:
            from .finetune_window import FinetuneWindow

            self.finetune_window = FinetuneWindow(self.settings, self._model_name, self.picker.catalogue(), self)
            self.finetune_window.useModel.connect(self.use_model_folder)
        self.finetune_window.show()
        self.finetune_window.raise_()
        self.finetune_window.activateWindow()

    def open_review(self, folder: str = "") -> None:
        """Show the review queue (issue 16): suspicious labels of a dataset folder; Retrain opens Finetune on it."""
        if getattr(self, "review_window", None) is None:
            from .review_window import ReviewWindow

            self.review_window = ReviewWindow(folder, device=self.settings.device, parent=self)
            self.review_window.retrainRequested.connect(self._retrain_folder)
        self.review_window.show()
        self.review_window.raise_()

    def _retrain_folder(self, folder: str) -> None:
        self.open_finetune()
        self.finetune_window.form.set_data_folder(folder)

    def _on_download_progress(self, done: int, total: int | None) -> None:
        self.download_bar.show()
        self.download_cancel.show()
        if total:
            self.download_bar.setRange(0, 1000)
            self.download_bar.setValue(int(done * 1000 / total))
            self.status_label.setText(f"Downloading weights: {format_bytes(done)} of {format_bytes(total)}")
        else:
            self.download_bar.setRange(0, 0)
            self.status_label.setText(f"Downloading weights: {format_bytes(done)}")

    def _hide_download(self) -> None:
        self.download_bar.hide()
        self.download_cancel.hide()

    def _on_model_ready(self, state: ModelState) -> None:
        self._hide_download()
        self.model_state = state
        self._good = self._trying
        self.device_label.setText(state.device_label)
        self.device_label.setToolTip(f"backend: {state.backend}")
        text = f"{short_name(state.name)} ready ({state.load_s:.1f} s)"
        if state.untrained:
            text = f"{short_name(state.name)}: untrained - no weights found"
            if state.untrained_reason:
                self.status_label.setToolTip(state.untrained_reason)
        self.status_label.setText(text)
        self.results.set_untrained(short_name(state.name) if state.untrained else None)
        if hasattr(self, "unknown_control"):
            self.unknown_control.set_model(state.unknown_calibrated, state.unknown_threshold)
            saved = self.settings.unknown_threshold_for(self._model_name or DEFAULT_MODEL)
            if saved is not None and saved != state.unknown_threshold:  # the user's last setting for this model
                self.unknown_control.set_model(state.unknown_calibrated, None if saved == "off" else float(saved))
                self.client.set_unknown_threshold(saved)
        if state.notice:
            self.show_notice(state.notice)
        if (self.current is not None and self.current.prediction is None and not self._pending
                and not self.act_camera.isChecked()):
            self._classify(self.current)  # its request failed or was dropped before this model was ready
        if not self._catalogue_requested:
            self._catalogue_requested = True
            self.client.request_catalogue()

    def _on_model_failed(self, message: str) -> None:
        """Keep the model that worked (the worker still holds it); at start-up, fall back to the default."""
        self._hide_download()
        message = without_cli_advice(message)
        self.client.prepare_model_stack()  # the Device menu learns what this computer has (devicesReady)
        tried = short_name(self._trying[0] or DEFAULT_MODEL)
        if self._good is not None:
            name, device = self._good
            tried_device = self._trying[1]
            self._set_choice(name, device)
            self.model_state = self.client.model
            where = self.model_state.device_label if self.model_state is not None else device
            if (self._trying[0] or "") == (name or "") and tried_device != device:
                from .main_actions import DEVICE_NAMES

                what = DEVICE_NAMES.get(tried_device, tried_device)
                self.status_label.setText(f"Could not use {what}; still running on {where}")
                self.show_notice(f"Could not use {what}: {message}. Still running on {where}.", error=True)
            else:
                kept = short_name(name or DEFAULT_MODEL)
                self.status_label.setText(f"Could not load {tried}; still using {kept}")
                self.show_notice(f"Could not load {tried}: {message}. Still using {kept}.", error=True)
            return  # the image queued behind the failed load is answered by the model kept
        if self._trying != ("", DEFAULT_DEVICE):
            self.show_notice(f"Could not load {tried}: {message}. Loading the default model instead.", error=True)
            self._set_choice("", DEFAULT_DEVICE)
            self.load_model(None)
            return
        self.status_label.setText("Could not load the model")
        self.show_notice(f"Could not load the model: {message}", error=True)
        if self.current is not None:
            self.results.show_message(f"Could not load the model: {message}", self.current.title)

    def _set_choice(self, name: str, device: str) -> None:
        """Put the model and device choice (settings, picker, Device menu) back to ``name``/``device``."""
        self._model_name = name
        self.settings.model = name
        self.settings.device = device
        self.picker.set_current(name or DEFAULT_MODEL)
        for a in self.device_group.actions():
            a.setChecked(a.data() == device)

    def _on_catalogue(self, entries: list) -> None:
        self.picker.set_catalogue(entries)
        if self.finetune_window is not None:
            self.finetune_window.base_picker.set_catalogue(entries)


def without_cli_advice(message: str) -> str:
    """Core's message without its command-line advice ("...; use --device cpu"), which fits no window."""
    return re.sub(r"[;,]?\s*(use|try|pass) --[\w-]+[^;]*$", "", message).rstrip(" ;,.")


def short_name(name: str) -> str:
    """A saved-model folder's own name (its full path is in the picker's tooltip); catalogue names as they are."""
    return Path(name).name if Path(name).is_absolute() else name
