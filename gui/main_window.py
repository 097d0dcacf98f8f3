"""The main window: image view, top-k panel, history strip, model controls, drops and paste."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QMimeData, QObject, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.images import image_extensions

from .about import show_about
from .batch_window import BatchWindow
from .camera_source import STARTING_CAMERA
from .dev_tools import StartupProbe
from .drop_input import DropContent, can_accept, classify_path, read_mime
from .history_strip import HistoryEntry, HistoryStrip
from .image_loader import ImageLoader, placeholder_thumbnail
from .image_view import ImageView
from .main_actions import build_actions, finish_toolbar
from .model_controls import ModelControls
from .model_picker import ModelPicker
from .results_panel import ResultsPanel
from .settings import DEFAULT_DEVICE, TOP_K_RANGE, AppSettings
from .unknown_view import UnknownThresholdControl
from .worker import InferenceClient, ModelState

APP_TITLE = "SqueezeLens"
CLOSE_WAIT_S = 1.8  # the most closing the window waits for running work
KEEP_PASTED_IMAGES = 8  # pasted/dropped image data kept at display size in the history
NOTICE_MS = 8000


class MainWindow(ModelControls, QMainWindow):
    """The app's one main window. All model work goes through ``client``; nothing here blocks."""

    def __init__(
        self,
        client: InferenceClient,
        settings: AppSettings,
        probe: StartupProbe | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.settings = settings
        self.probe = probe or StartupProbe(None)
        self.loader = ImageLoader(self)
        self.batches: dict[int, BatchWindow] = {}
        self.current: HistoryEntry | None = None
        self.model_state: ModelState | None = None
        self._tokens = itertools.count(1)
        self._loading: dict[int, HistoryEntry] = {}
        self._pending: dict[int, HistoryEntry] = {}
        self._model_name = settings.model
        self._trying: tuple[str, str] = ("", DEFAULT_DEVICE)  # (model, device) being loaded; "": the default model
        self._good: tuple[str, str] | None = None  # the last (model, device) that loaded
        self._catalogue_requested = False
        self._camera_after_stack = False  # camera mode chosen before the model stack was loaded
        self.finetune_window: Any = None  # FinetuneWindow, imported and built when first opened

        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self._build_widgets()
        self._build_actions()
        self._connect()
        if settings.geometry is not None:
            self.restoreGeometry(settings.geometry)
        else:
            self.resize(1100, 720)
        if settings.window_state is not None:
            self.restoreState(settings.window_state)

    # -- construction -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.view = ImageView()
        self.view.installEventFilter(self)
        self.results = ResultsPanel()
        self.unknown_control = UnknownThresholdControl()
        self.results.layout().addWidget(self.unknown_control)
        self.history = HistoryStrip()
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: palette(alternate-base); border-radius: 6px; padding: 6px 10px;")
        self.notice.hide()
        self.notice.mousePressEvent = lambda _e: self.notice.hide()  # type: ignore[method-assign]
        self._notice_timer = QTimer(self, singleShot=True, interval=NOTICE_MS)
        self._notice_timer.timeout.connect(self.notice.hide)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.left = QStackedWidget()  # the image view, or the camera page (built on first use)
        self.left.addWidget(self.view)
        self.camera_page: Any = None
        splitter.addWidget(self.left)
        splitter.addWidget(self.results)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([600, 400])  # the bars get room before there is anything to show
        self.results.setMinimumWidth(320)
        self.history.hide()  # shown with its first entry
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.notice)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.history)
        self.setCentralWidget(central)

        self.picker = ModelPicker()
        self.picker.set_current(self._model_name or DEFAULT_MODEL)
        self.picker.set_recent(self.settings.recent_models)
        self.device_label = QLabel("CPU / GPU: starting...")
        self.device_label.setObjectName("deviceLabel")
        self.top_k = QSpinBox()
        self.top_k.setRange(*TOP_K_RANGE)
        self.top_k.setValue(self.settings.top_k)
        self.top_k.setPrefix("Top ")
        self.top_k.setToolTip("How many classes to show")

        self.status_label = QLabel()
        self.download_bar = QProgressBar()
        self.download_bar.setMaximumWidth(220)
        self.download_bar.hide()
        self.download_cancel = QPushButton("Cancel download")
        self.download_cancel.hide()
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.download_bar)
        row.addWidget(self.download_cancel)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(box)
        self.statusBar().addPermanentWidget(self.device_label)

    def _build_actions(self) -> None:
        build_actions(self)
        from .explain_overlay import ExplainController

        self.explainer = ExplainController(self)  # the "Why?" heatmap toggle (issue 17)
        finish_toolbar(self)  # icons and Tab order for every toolbar button

    def _connect(self) -> None:
        c = self.client
        c.downloadProgress.connect(self._on_download_progress)
        c.modelReady.connect(self._on_model_ready)
        c.modelFailed.connect(self._on_model_failed)
        c.catalogueReady.connect(self._on_catalogue)
        c.stackReady.connect(self._on_stack_ready)
        c.devicesReady.connect(self.set_device_availability)
        c.resultReady.connect(self._on_result)
        c.batchStarted.connect(self._on_batch_started)
        c.batchItem.connect(self._on_batch_item)
        c.batchFinished.connect(self._on_batch_finished)
        c.jobFailed.connect(self._on_job_failed)
        self.loader.loaded.connect(self._on_image_loaded)
        self.loader.failed.connect(self._on_image_failed)
        self.download_cancel.clicked.connect(self.client.cancel_download)
        self.picker.modelChosen.connect(self.choose_model)
        self.picker.openFolderRequested.connect(self.open_model_dialog)
        self.top_k.valueChanged.connect(self._on_top_k)
        self.history.entryActivated.connect(self.show_entry)
        self.unknown_control.settingChanged.connect(self._on_unknown_setting)

    # -- start ------------------------------------------------------------------------------------
    def start(self, images: list[str] | None = None) -> None:
        """Load the saved model choice in the worker, then classify ``images`` (command line) when it is ready."""
        self.load_model(self._model_name or None)
        if images:
            self.handle_content(_content_for([str(Path(p).resolve()) for p in images]))

    # -- input --------------------------------------------------------------------------------------
    def handle_content(self, content: DropContent) -> None:
        """Route a drop, paste or command line: one image to the main view, several or a folder to a batch."""
        if self.act_camera.isChecked() and (content.image is not None or (content.paths and not content.is_batch)):
            self.set_camera_mode(False)  # an image to look at: back from the camera to the image view
        if content.rejected:
            more = f" (and {len(content.rejected) - 1} more)" if len(content.rejected) > 1 else ""
            self.show_notice(content.rejected[0] + more)
        if content.image is not None:
            self.open_image_data(content.image, "Pasted image")
        elif content.is_batch:
            self.open_batch(content.paths)
        elif content.paths:
            self.open_path(content.paths[0])

    def open_path(self, path: str) -> None:
        entry = HistoryEntry(title=Path(path).name, source=path, image=QImage())
        self._load_display(entry)
        self.settings.last_folder = str(Path(path).parent)
        self._show_new(entry)

    def open_image_data(self, image: QImage, title: str) -> None:
        image = image.copy()  # ours now: the clipboard or drag source may reuse its buffer
        entry = HistoryEntry(title=title, source=image, image=QImage())
        self._load_display(entry)  # scaled for display off the GUI thread (a pasted image can be huge)
        self._show_new(entry)

    def _load_display(self, entry: HistoryEntry) -> None:
        token = next(self._tokens)
        self._loading[token] = entry
        if isinstance(entry.source, QImage):
            self.loader.load_image(token, entry.source)
        else:
            self.loader.load(token, entry.source)

    def _show_new(self, entry: HistoryEntry) -> None:
        self._set_current(entry)
        self.view.set_hint("Loading...")
        self._classify(entry)

    def _set_current(self, entry: HistoryEntry) -> None:
        """Show ``entry``'s image; other entries keep only their thumbnails (a long session stays small).

        Display images of files are decoded again when their entry is clicked; pasted image data keeps
        its display image in the newest few entries only, since it has no file to come back to.
        """
        self.current = entry
        self.setWindowTitle(f"{entry.title} - {APP_TITLE}")  # the window list names the image on show
        self.view.set_image(entry.image)
        self.explainer.entry_changed()
        kept_data = 0
        for other in self.history.entries():
            if other is entry or other.image.isNull():
                continue
            if isinstance(other.source, QImage):
                kept_data += 1
                if kept_data <= KEEP_PASTED_IMAGES:
                    continue
                other.source, other.pixels_dropped = other.thumb, True  # the thumbnail is what is left
            other.image = QImage()

    def _classify(self, entry: HistoryEntry) -> None:
        entry.prediction = None
        req = self.client.classify(entry.source, self.top_k.value())
        for older in self._pending.values():  # superseded: their answers are dropped, so no "..." forever
            if older is not entry and older.prediction is None:
                self.history.mark_failed(older, "another image was opened first; click to classify it")
        entry.error = None
        self._pending = {req: entry}  # older requests are superseded
        waiting = "Waiting for the model to load..." if self.client.model is None else "Classifying..."
        self.results.show_message(waiting, entry.title)

    def open_batch(self, paths: list[str]) -> None:
        req = self.client.classify_batch(paths, self.top_k.value())
        window = BatchWindow(req, self)
        window.last_folder = self.settings.last_folder
        window.untrained = bool(self.client.model and self.client.model.untrained)
        window.cancelRequested.connect(self.client.cancel_batch)
        window.openImage.connect(self.open_path)
        window.destroyed.connect(lambda _obj=None, r=req: self._forget_batch(r))
        self.batches[req] = window
        window.show()
        if paths:
            first = Path(paths[0])
            self.settings.last_folder = str(first if first.is_dir() else first.parent)

    def open_dialog(self) -> None:
        patterns = " ".join(f"*{e}" for e in sorted(image_extensions()))
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open images", self.settings.last_folder, f"Images ({patterns});;All files (*)")
        if paths:
            self.handle_content(_content_for(paths))

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Classify every image in", self.settings.last_folder)
        if folder:
            self.open_batch([folder])

    def paste(self) -> None:
        self.paste_mime(QGuiApplication.clipboard().mimeData())

    def paste_mime(self, mime: QMimeData | None) -> None:
        if mime is None:
            self.show_notice("The clipboard is empty.")
            return
        self.handle_content(read_mime(mime))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if can_accept(event.mimeData()):
            event.acceptProposedAction()
            self._drop_highlight().show()  # says where it goes before the user lets go
        else:
            event.ignore()

    def dragLeaveEvent(self, event: Any) -> None:
        self._drop_highlight().hide()
        super().dragLeaveEvent(event)

    def _drop_highlight(self) -> Any:
        if getattr(self, "drop_highlight", None) is None:
            from .drop_highlight import DropHighlight

            self.drop_highlight = DropHighlight(self.centralWidget())
        return self.drop_highlight

    def dragMoveEvent(self, event: Any) -> None:
        if can_accept(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self._drop_highlight().hide()
        content = read_mime(event.mimeData(), accept_text=False)
        event.acceptProposedAction()
        self.handle_content(content)

    def _on_top_k(self, value: int) -> None:
        self.settings.top_k = value
        self._reclassify_current()

    def _on_unknown_setting(self, setting: Any) -> None:
        """The threshold slider moved: the worker's model takes it, the image on show is answered again."""
        self.client.set_unknown_threshold(setting)
        self.settings.set_unknown_threshold_for(self._model_name or DEFAULT_MODEL, setting)  # kept per model
        self._reclassify_current()

    def _reclassify_current(self) -> None:
        """Classify the image on show (if any) again; in camera mode only when leaving it (live mode has
        the worker)."""
        if self.current is None:
            return
        if self.act_camera.isChecked():
            self.current.prediction = None  # stale: show_entry classifies it on the way back
        else:
            self._classify(self.current)

    # -- answers ------------------------------------------------------------------------------------
    def _on_image_loaded(self, token: int, image: QImage, thumb: QImage) -> None:
        entry = self._loading.pop(token, None)
        if entry is None:
            return
        if entry.thumb.isNull():  # first time: into the history
            entry.thumb = thumb
            self.history.add(entry, thumb)
        if entry is self.current:
            entry.image = image
            self.view.set_image(image)

    def _on_image_failed(self, token: int, message: str) -> None:
        entry = self._loading.pop(token, None)
        if entry is None:
            return
        if entry.thumb.isNull():  # Qt cannot show it, but core may still classify it: list it anyway
            entry.thumb = placeholder_thumbnail()
            self.history.add(entry, entry.thumb)
        if entry is self.current:
            self.view.set_hint(f"No preview: {message}")

    def _on_result(self, req: int, pred: Any) -> None:
        entry = self._pending.pop(req, None)
        if entry is None:
            return
        entry.prediction = pred
        self.history.update_entry(entry)
        if entry is self.current and not self.act_camera.isChecked():
            self.results.show_prediction(entry.title, pred, self.model_state.device_label if self.model_state else "")
            self.probe.mark("first_result")
            self.explainer.prediction_arrived()

    def show_entry(self, entry: HistoryEntry) -> None:
        """Show a history entry again: its stored result if the current model and top-k made it, else a new one."""
        if entry.image.isNull():
            if isinstance(entry.source, QImage):
                entry.image = entry.source
            else:
                self._load_display(entry)
        self._set_current(entry)
        pred = entry.prediction
        state = self.model_state
        stale = pred is None or (state is not None and pred.ok and not entry.pixels_dropped and (
            pred.model != state.name or len(pred.top) != min(self.top_k.value(), state.num_classes)))
        if stale:
            self._classify(entry)
        else:
            self.results.show_prediction(entry.title, pred, state.device_label if state else "")

    def _on_batch_started(self, req: int, sources: list[str]) -> None:
        if req in self.batches:
            self.batches[req].start(sources)

    def _on_batch_item(self, req: int, index: int, pred: Any) -> None:
        if req in self.batches:
            self.batches[req].add(index, pred)

    def _on_batch_finished(self, req: int, cancelled: bool) -> None:
        window = self.batches.get(req)
        if window is not None:
            window.finish(cancelled)

    def _forget_batch(self, req: int) -> None:
        self.batches.pop(req, None)

    def _on_job_failed(self, req: int, message: str) -> None:
        entry = self._pending.pop(req, None)
        if entry is None:
            if req in self.batches:
                self.batches[req].summary.setText(f"Stopped: {message}")
            return
        # no model yet (it failed to load): _on_model_ready classifies the image again
        self.history.mark_failed(entry, message)  # its caption no longer waits with "..."
        if entry is self.current:
            self.results.show_message(f"Could not classify this image: {message}", entry.title)

    # -- window -------------------------------------------------------------------------------------
    def show_notice(self, text: str, error: bool = False) -> None:
        """An inline message above the image (no dialogs), with an icon. Information fades after a few
        seconds; an error stays until the next notice or a click on it, so it cannot be missed."""
        icon = "\u26a0" if error else "\u2139"  # warning sign / information source
        self.notice.setText(f"{icon}  {text}")
        self.notice.setProperty("error", error)
        self.notice.setToolTip("Click to dismiss" if error else "")
        self.notice.show()
        if error:
            self._notice_timer.stop()
        else:
            self._notice_timer.start()

    def set_camera_mode(self, on: bool) -> None:
        """Show the camera page (live classification) instead of the image view, or go back and stop the camera."""
        self.act_camera.setChecked(on)
        if on:
            if self.camera_page is None and not self.client.model_stack_ready:
                # Qt Multimedia (FFmpeg, then OpenGL with the first frame) loads only after the model stack's
                # native libraries (core.model_stack): loaded the other way round, triton's LLVM crashes
                self._camera_after_stack = True
                self.results.show_message(STARTING_CAMERA, "Camera")
                self.status_label.setText(STARTING_CAMERA)
                self.client.prepare_model_stack()
                return
            if self.camera_page is None:
                from .camera_page import CameraPage  # Qt Multimedia is loaded only when camera mode is used

                self.camera_page = CameraPage(self.client, self.settings, self.top_k.value)
                self.camera_page.resultReady.connect(self._on_live_result)
                self.camera_page.message.connect(self.show_notice)
                self.left.addWidget(self.camera_page)
            self.left.setCurrentWidget(self.camera_page)
            self.camera_page.start()
            # the reason for no video is on the video itself: said once, not repeated here
            waiting = ("Live results appear here when there is video." if self.camera_page.view.message
                       else "Waiting for the first frame...")
            self.results.show_message(waiting, "Camera")
            return
        self._camera_after_stack = False
        if self.camera_page is not None:
            self.camera_page.stop()
        self.left.setCurrentWidget(self.view)
        if self.current is not None:
            self.show_entry(self.current)
        else:
            self.results.show_message("Drop an image or a folder, or press Ctrl+O to open one.")

    def _on_stack_ready(self) -> None:
        """The model stack is loaded: camera mode, if chosen meanwhile, starts now."""
        if self._camera_after_stack and self.act_camera.isChecked():
            self._camera_after_stack = False
            if self.status_label.text() == STARTING_CAMERA:
                self.status_label.setText("")
            self.set_camera_mode(True)

    def _on_live_result(self, result: Any, rows: list) -> None:
        if not self.act_camera.isChecked():
            return
        label = self.model_state.device_label if self.model_state else ""
        if result.error is not None or result.pred is None or not result.pred.ok:
            error = result.error or getattr(result.pred, "error", None) or "no answer"
            self.results.show_message(f"Could not classify the frame: {error}", "Camera")
        else:
            self.results.show_prediction("Camera", result.pred, label, rows)

    def _open_picker(self) -> None:
        self.picker.setFocus()
        self.picker.showPopup()

    def toggle_fullscreen(self) -> None:
        self.setWindowState(self.windowState() ^ Qt.WindowState.WindowFullScreen)
        self.act_fullscreen.setChecked(self.isFullScreen())

    def show_shortcuts(self) -> None:
        """Help > Keyboard Shortcuts: every action's keys, read from the actions themselves."""
        from PySide6.QtGui import QKeySequence
        from PySide6.QtWidgets import QMessageBox

        rows = []
        for a in self.findChildren(QAction):
            keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                rows.append((a.text().replace("&", "").rstrip("."), keys))
        rows.append(("Record captures (camera mode, hold)", "R"))
        html = "<table cellspacing=6>" + "".join(
            f"<tr><td>{name}</td><td><b>{keys}</b></td></tr>" for name, keys in sorted(set(rows))) + "</table>"
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(html)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_about(self) -> None:
        s = self.model_state
        show_about(self, s.name if s else None, s.license if s else None, bool(s and s.untrained))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.view and event.type() == QEvent.Type.Paint:
            self.probe.mark("window_shown")
        return super().eventFilter(obj, event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save settings, cancel all work, and wait for it under one deadline (the app exits within 2 s)."""
        if self.finetune_window is not None and not self.finetune_window.confirm_stop("quit"):
            event.ignore()  # "keep training"
            return
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.sync()
        deadline = time.monotonic() + CLOSE_WAIT_S
        windows = list(self.batches.values())
        for window in windows:
            window.cancel()
            window.hide()
        if self.camera_page is not None:
            self.camera_page.shutdown(_ms_left(deadline))
        if self.finetune_window is not None:
            self.finetune_window.hide()
            self.finetune_window.shutdown(_ms_left(deadline))
        if getattr(self, "review_window", None) is not None:
            self.review_window.hide()
            self.review_window.wait(_ms_left(deadline))
        self.client.shutdown(_ms_left(deadline))
        self.loader.wait(_ms_left(deadline))
        for window in windows:
            window.wait_for_copies(_ms_left(deadline))
        event.accept()


def _ms_left(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))


def _content_for(paths: list[str]) -> DropContent:
    content = DropContent()
    for p in paths:
        problem = classify_path(Path(p))
        (content.rejected if problem else content.paths).append(problem or p)
    return content
