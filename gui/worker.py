"""The inference worker: one long-lived thread that owns the model, and the GUI-side client for it.

The GUI thread never imports torch and never waits on the worker. It posts jobs (each with a
request id) to a queue; the worker thread runs them one at a time and answers with Qt signals,
which Qt delivers in the GUI thread. Superseded jobs are skipped in the worker and stale results
are dropped by the client, so only the answer to the latest request reaches the window.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QImage

from squeezelens.core.errors import DownloadCancelled, SqueezeLensError

from .frame_mailbox import frame_to_pil
from .late_signals import emit_unless_deleted
from .qimage_convert import qimage_to_pil

#: Inputs per forward pass in batch jobs: small, so a cancel or a model switch waits at most one batch.
BATCH_SIZE = 8


@dataclass(frozen=True)
class ModelSpec:
    """What to load: a catalogue name or saved-model folder (``None`` = default), and where to run it."""

    name: str | None = None
    weights: str | None = None
    device: str = "auto"
    backend: str = "auto"
    allow_download: bool = True
    #: CPU inference precision (core's Precision); the window passes the saved setting
    precision: str = "fp32"


@dataclass(frozen=True)
class ModelState:
    """A loaded model as the window describes it (plain data: no torch objects cross threads)."""

    name: str
    architecture: str
    device: str
    device_label: str
    backend: str
    untrained: bool
    untrained_reason: str | None
    license: str | None
    num_classes: int
    load_s: float
    notice: str | None = None  # e.g. "download cancelled", shown once
    unknown_calibrated: float | None = None  # the threshold saved with the model (core/unknown.py), if any
    unknown_threshold: float | None = None  # the one in force (None: no unknown verdict)


@dataclass(frozen=True)
class CatalogueEntry:
    """One pretrained variant for the model picker."""

    name: str  # arch or arch.tag
    architecture: str
    cached: bool
    license: str | None
    is_default_tag: bool
    #: the side (pixels) of the square input the app feeds it (pretrained_cfg's input_size); 0 if unknown
    input_side: int = 0


@dataclass(frozen=True)
class LiveResult:
    """The answer for one camera frame: its sequence number, when it arrived, when the worker took it
    and finished it (``time.perf_counter()``), and the Prediction (or the error)."""

    seq: int
    captured: float
    started: float
    finished: float
    pred: Any = None
    error: str | None = None
    model_req: int = 0  # the load request whose model answered (the client drops other models' answers)


@dataclass
class _Job:
    kind: str  # "load" | "classify" | "batch" | "catalogue" | "live" | "stop"
    req: int
    payload: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)


#: Builds a classifier from a spec in the worker thread: ``(spec, progress, cancel) -> Classifier``.
Loader = Callable[[ModelSpec, Callable[[int, int | None], None], threading.Event], Any]


#: Imports the model stack's native libraries (``core.model_stack.import_model_stack``), in a worker-side thread.
StackImporter = Callable[[], Any]


def default_stack_importer() -> Any:
    """The real one: torch, torch._dynamo (triton), torchvision, timm, onnxruntime... (see core.model_stack);
    then the objects they made are frozen out of garbage collection, whose full passes would otherwise
    stall the GUI thread (``core.model_stack.freeze_imported_objects``)."""
    from squeezelens.core.model_stack import freeze_imported_objects, import_model_stack

    imported = import_model_stack()
    freeze_imported_objects()
    return imported


def default_loader(spec: ModelSpec, progress: Callable[[int, int | None], None], cancel: threading.Event) -> Any:
    """The real loader: :meth:`Classifier.load` (imports torch on first use, in the worker thread)."""
    from squeezelens.core.engine import Classifier

    clf = Classifier.load(
        spec.name, spec.weights, device=spec.device, backend=spec.backend,
        allow_download=spec.allow_download, progress=progress, cancel=cancel, precision=spec.precision,
    )
    if getattr(clf, "precision_pending", False):
        # the reduced-precision runner is prepared in the background on a cached graph (about a
        # second; a first quantization and fidelity check longer): wait, so the state shown (and the
        # precision each timing is marked with) is the one that runs
        clf.wait_for_export()
    return clf


class InferenceWorker(QThread):
    """Runs jobs from a queue, in order, skipping those a newer job of the same kind has superseded."""

    downloadProgress = Signal(int, object, object)  # req, done bytes, total bytes or None
    modelReady = Signal(int, object)  # req, ModelState
    modelFailed = Signal(int, str)  # req, message
    catalogueReady = Signal(object)  # list[CatalogueEntry]
    resultReady = Signal(int, object)  # req, Prediction
    batchStarted = Signal(int, object)  # req, list[str] of sources after folders were walked
    batchItem = Signal(int, int, object)  # req, index, Prediction
    batchFinished = Signal(int, bool)  # req, cancelled
    jobFailed = Signal(int, str)  # req, message (an unexpected error: the window says it, no traceback)
    liveResult = Signal(object)  # LiveResult
    explainReady = Signal(int, object)  # req, explain_overlay.HeatResult or an error message (str)
    stackReady = Signal()  # the model stack's native libraries are loaded (see core.model_stack)
    devicesReady = Signal(object)  # {device: None when usable, else why not} (core.device_info)

    def __init__(self, loader: Loader = default_loader, parent: QObject | None = None,
                 stack_importer: StackImporter | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("squeezelens-inference")
        self._stack_lock = threading.Lock()
        self._stack_thread: threading.Thread | None = None
        self.stack_ready = threading.Event()  # set once the model stack import has finished (or failed)
        # the real loader loads the real stack; a stand-in loader (tests, benchmarks) none, unless given one
        self._stack_importer = stack_importer or (default_stack_importer if loader is default_loader else None)
        if self._stack_importer is None:
            self.stack_ready.set()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._loader = loader
        self._clf: Any = None
        self._clf_req = 0  # the load request that made _clf
        # live mode: the mailbox and top-k of the newest live wake-up, served between a batch's chunks
        self._live: tuple[Any, int] | None = None
        self.live_posted = 0  # live wake-ups posted (written by the GUI thread only)
        self.live_started = 0  # live wake-ups taken off the queue (written by the worker thread only)
        # newest request id per kind, written by the GUI thread (an int store is atomic under the GIL)
        self.latest: dict[str, int] = {"load": 0, "classify": 0, "explain": 0}
        self._listings: list[threading.Thread] = []  # catalogue listings started (joined when the worker stops)
        self._replaced: list[Any] = []  # classifiers a model switch replaced while their ONNX export still ran
        self._stopping = threading.Event()

    # -- GUI thread ------------------------------------------------------------------------------
    def post(self, job: _Job) -> None:
        if job.kind in self.latest:
            self.latest[job.kind] = job.req
        if job.kind == "live":
            self._live = job.payload
            self.live_posted += 1
        self._jobs.put(job)

    def start_stack_import(self) -> None:
        """Import the model stack (torch, timm, triton...) in a thread of its own, once (any thread).

        Not a queued job: the camera waits for it, and must not wait behind a model download."""
        with self._stack_lock:
            if self._stack_thread is not None or self._stack_importer is None or self._stopping.is_set():
                return
            self._stack_thread = threading.Thread(target=self._import_stack, name="squeezelens-model-stack")
            self._stack_thread.start()

    def _import_stack(self) -> None:
        assert self._stack_importer is not None
        devices = None
        try:
            self._stack_importer()
            from squeezelens.core.device_info import device_availability

            devices = device_availability()
        except Exception:  # noqa: BLE001 - a broken install: the load or the listing says it in words
            traceback.print_exc()
        finally:
            self.stack_ready.set()
            if not self._stopping.is_set():
                if devices is not None:
                    emit_unless_deleted(self, "devicesReady", devices)
                emit_unless_deleted(self, "stackReady")

    def _wait_for_stack(self) -> None:
        self.start_stack_import()
        with self._stack_lock:
            thread = self._stack_thread
        if thread is not None:
            thread.join()

    # -- worker thread ---------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            job = self._jobs.get()
            if job.kind == "stop":
                self._stop()
                return
            if job.kind == "live":
                self.live_started += 1
            if job.cancel.is_set() or (job.kind in self.latest and job.req < self.latest[job.kind]):
                if job.kind == "batch":
                    self.batchFinished.emit(job.req, True)
                continue  # superseded before it started
            if job.kind == "catalogue" and not self._jobs.empty() and (job.payload or 0) < 50:
                job.payload = (job.payload or 0) + 1  # bounded: live camera frames must not put it off for ever
                self._jobs.put(job)  # the picker's list can wait; the user's images come first
                continue
            try:
                getattr(self, f"_do_{job.kind}")(job)
            except Exception as e:  # noqa: BLE001 - one bad job must not kill the worker
                traceback.print_exc()
                self.jobFailed.emit(job.req, f"{type(e).__name__}: {e}")
                if job.kind == "batch":
                    self.batchFinished.emit(job.req, True)

    def _do_load(self, job: _Job) -> None:
        spec: ModelSpec = job.payload
        t0 = time.perf_counter()
        last = [0.0]

        def progress(done: int, total: int | None) -> None:
            now = time.perf_counter()
            if now - last[0] > 0.05 or (total and done >= total):  # at most ~20 updates a second
                last[0] = now
                self.downloadProgress.emit(job.req, done, total)

        notice = None
        try:
            try:
                clf = self._loader(spec, progress, job.cancel)
            except DownloadCancelled:
                if job.req < self.latest["load"]:
                    return  # cancelled because another model was chosen, or the app is closing
                notice = "Download cancelled: running without weights (untrained)."
                spec = replace(spec, allow_download=False)
                clf = self._loader(spec, progress, threading.Event())
        except SqueezeLensError as e:
            self.modelFailed.emit(job.req, str(e))
            return
        except Exception as e:  # noqa: BLE001 - CUDA init/out of memory, a damaged file...: say it, keep going
            traceback.print_exc()
            self.modelFailed.emit(job.req, f"{type(e).__name__}: {e}")
            return
        if job.req < self.latest["load"]:
            return  # another model was chosen meanwhile: keep the one the window describes
        if self._clf is not None and self._clf.export_pending:
            self._replaced.append(self._clf)  # its export thread finishes on its own; closed when the worker stops
        self._replaced = [c for c in self._replaced if c.export_pending]
        self._clf, self._clf_req = clf, job.req
        self.modelReady.emit(job.req, _describe(clf, time.perf_counter() - t0, notice))

    def _stop(self) -> None:
        """The worker's last job: wait for the threads it started and for core's work on its model.

        A listing inside ``import timm`` cannot be interrupted: the worker then stays running past the
        close budget, and ``app.run`` ends the process (see there).
        """
        self._stopping.set()
        for thread in self._listings:
            thread.join()
        with self._stack_lock:
            stack = self._stack_thread
        if stack is not None:
            stack.join()
        clf, self._clf = self._clf, None
        # Each classifier may still be exporting its ONNX graph in a thread of its own: wait_for_export()
        # joins it (the export is not interrupted, so its graph is still cached; close() would also retire
        # the classifier, which a caller's loader may share). Meanwhile the worker counts as running, so
        # past the close budget app.run ends the process (the graph is written atomically; an export cut
        # off is redone next time).
        for c in [*self._replaced, *([clf] if clf is not None else [])]:
            c.wait_for_export()
        self._replaced.clear()

    def _do_catalogue(self, job: _Job) -> None:
        # Listing the variants imports timm (and torch) on a cached ONNX start: seconds. A thread of its own
        # keeps camera frames and images flowing meanwhile; the worker joins it when it stops.
        self._listings = [t for t in self._listings if t.is_alive()]
        thread = threading.Thread(target=self._list_catalogue, name="squeezelens-catalogue")
        self._listings.append(thread)
        thread.start()

    def _list_catalogue(self) -> None:
        try:
            self._wait_for_stack()  # timm comes with it: one import of the stack, in the known order
            from squeezelens.core import catalogue
            from squeezelens.core.weights import cached_weights

            entries = []
            for info in catalogue.list_variants():
                for t in info.tags:
                    entries.append(CatalogueEntry(
                        t.name, info.architecture, cached_weights(t.hf_hub_id) is not None, t.license,
                        t is info.default, t.input_size[-1],
                    ))
        except Exception:  # noqa: BLE001 - the picker keeps the model it shows; the reason goes to stderr
            traceback.print_exc()
            return
        if not self._stopping.is_set():  # else the window has closed: nobody waits for the list
            emit_unless_deleted(self, "catalogueReady", entries)

    def _do_classify(self, job: _Job) -> None:
        if self._clf is None:
            self.jobFailed.emit(job.req, "no model is loaded")
            return
        source, top_k = job.payload
        if isinstance(source, QImage):
            source = qimage_to_pil(source)
        pred = self._clf.classify([source], top_k=top_k)[0]
        self.resultReady.emit(job.req, pred)

    def _do_threshold(self, job: _Job) -> None:
        """Set the unknown threshold of the model held (``None``, a float in 0..1 or ``"off"``)."""
        if self._clf is not None and hasattr(self._clf, "set_unknown_threshold"):
            self._clf.set_unknown_threshold(job.payload)

    def _do_explain(self, job: _Job) -> None:
        """A "Why?" heatmap (gui/explain_overlay.py): Grad-CAM needs torch, so it runs here."""
        from squeezelens.core.errors import SqueezeLensError as _Expected

        from .explain_overlay import compute_heat

        if self._clf is None:
            self.explainReady.emit(job.req, "no model is loaded")
            return
        source, class_index = job.payload
        if isinstance(source, QImage):
            source = qimage_to_pil(source)
        try:
            result: Any = compute_heat(self._clf, source, class_index)
        except _Expected as e:
            result = str(e)
        except Exception as e:  # noqa: BLE001 - a bug: its traceback on stderr, one line in the window
            traceback.print_exc()
            result = f"{type(e).__name__}: {e}"
        self.explainReady.emit(job.req, result)

    def _do_live(self, job: _Job) -> None:
        """The newest camera frame from the mailbox (converted only now, in this thread), batch 1."""
        mailbox, top_k = job.payload
        self._classify_live(mailbox.take(), top_k)

    def _serve_live_between_batches(self) -> None:
        """During a batch job: classify the waiting camera frame, if any, so live mode does not freeze.

        The frame is taken without clearing the mailbox's wake-up flag: the wake-up job already queued
        behind the batch stays the only one (it later takes the next frame, or finds nothing)."""
        live = self._live
        if live is not None:
            mailbox, top_k = live
            self._classify_live(mailbox.take(keep_wake=True), top_k)

    def _classify_live(self, item: Any, top_k: int) -> None:
        if item is None:
            return  # cleared (paused, stopped) after the wake-up was posted, or served during a batch
        started = time.perf_counter()
        pred, error = None, None
        try:
            if self._clf is None:
                raise RuntimeError("no model is loaded")
            pred = self._clf.classify([frame_to_pil(item.frame)], top_k=top_k)[0]
        except Exception as e:  # noqa: BLE001 - a bad frame must not stop the stream
            error = str(e) or type(e).__name__
        self.liveResult.emit(LiveResult(item.seq, item.captured, started, time.perf_counter(), pred, error,
                                        self._clf_req))

    def _do_batch(self, job: _Job) -> None:
        from squeezelens.core.images import expand_inputs

        paths, top_k = job.payload
        inputs = expand_inputs(paths)
        self.batchStarted.emit(job.req, [getattr(x, "path", None) or str(x) for x in inputs])
        if self._clf is None:
            self.jobFailed.emit(job.req, "no model is loaded")
            self.batchFinished.emit(job.req, True)
            return
        def on_result(i: int, pred: Any) -> None:
            self.batchItem.emit(job.req, i, pred)
            if (i + 1) % BATCH_SIZE == 0 or i + 1 == len(inputs):
                self._serve_live_between_batches()  # one camera frame per chunk, at most

        # decoding overlaps inference in core's pipeline; results come back here in input order
        self._clf.classify(inputs, top_k=top_k, batch_size=BATCH_SIZE, cancel=job.cancel, on_result=on_result)
        if job.cancel.is_set():
            self.batchFinished.emit(job.req, True)
            return
        self.batchFinished.emit(job.req, False)


def _describe(clf: Any, load_s: float, notice: str | None) -> ModelState:
    from squeezelens.core.device_info import device_label

    loaded = clf.loaded
    backend = getattr(clf, "backend", "torch")
    return ModelState(
        name=clf.name, architecture=loaded.architecture, device=clf.device,
        device_label=device_label(clf.device, backend) + _precision_mark(clf), backend=backend, untrained=clf.untrained,
        untrained_reason=loaded.untrained_reason, license=loaded.license, num_classes=len(clf.labels),
        load_s=load_s, notice=notice,
        unknown_calibrated=getattr(getattr(clf, "unknown_calibration", None), "threshold", None),
        unknown_threshold=getattr(clf, "unknown_threshold", None),
    )


def _precision_mark(clf: Any) -> str:
    """``", int8"`` for a reduced-precision model (shown with every timing), empty for fp32."""
    mode = getattr(clf, "precision", "fp32")
    return "" if mode == "fp32" else f", {mode}"


class InferenceClient(QObject):
    """The window's handle on the worker: numbered requests out, fresh answers in.

    Every public method returns at once. Answers to requests that a newer one superseded are
    dropped here, so a slow result for an image the user has already moved past never shows.
    """

    downloadProgress = Signal(object, object)
    modelReady = Signal(object)
    modelFailed = Signal(str)
    catalogueReady = Signal(object)
    resultReady = Signal(int, object)  # req, Prediction (only the latest classify request)
    batchStarted = Signal(int, object)
    batchItem = Signal(int, int, object)
    batchFinished = Signal(int, bool)
    jobFailed = Signal(int, str)
    liveResult = Signal(object)  # LiveResult, for every frame the worker took from a mailbox
    explainReady = Signal(int, object)  # req, HeatResult or message (only the latest explain request)
    stackReady = Signal()  # the model stack is imported: the camera's video stack may load now
    devicesReady = Signal(object)  # {device: None when usable here, else the reason in words}

    def __init__(self, loader: Loader = default_loader, parent: QObject | None = None,
                 stack_importer: StackImporter | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._worker = InferenceWorker(loader, stack_importer=stack_importer)
        self._load_job: _Job | None = None
        self._batches: dict[int, _Job] = {}
        self.model: ModelState | None = None  # None while a load runs
        self.model_req = 0  # the load request that made ``model`` (LiveResult.model_req of its answers)
        self._previous: ModelState | None = None  # what the worker keeps if that load fails
        w = self._worker
        w.downloadProgress.connect(
            lambda req, done, total: self._if_latest_load(req) and self.downloadProgress.emit(done, total))
        w.modelReady.connect(self._on_model_ready)
        w.modelFailed.connect(self._on_model_failed)
        w.catalogueReady.connect(self.catalogueReady)
        w.resultReady.connect(self._on_result)
        w.batchStarted.connect(self.batchStarted)
        w.batchItem.connect(self.batchItem)
        w.batchFinished.connect(self._on_batch_finished)
        w.jobFailed.connect(self.jobFailed)
        w.liveResult.connect(self.liveResult)
        w.explainReady.connect(lambda req, result: req == self._worker.latest["explain"]
                               and self.explainReady.emit(req, result))
        w.stackReady.connect(self.stackReady)
        w.devicesReady.connect(self.devicesReady)
        w.start()

    # -- requests ----------------------------------------------------------------------------------
    def load_model(self, spec: ModelSpec) -> int:
        """Load a model in the worker; cancels a running download and running batches (they use the old model)."""
        if self._load_job is not None:
            self._load_job.cancel.set()
        for job in self._batches.values():
            job.cancel.set()
        self._previous = self.model or self._previous
        self.model = None
        job = _Job("load", next(self._ids), spec)
        self._load_job = job
        self._worker.post(job)
        return job.req

    def cancel_download(self) -> None:
        """Stop the running weights download; the model then loads untrained."""
        if self._load_job is not None:
            self._load_job.cancel.set()

    def prepare_model_stack(self) -> None:
        """Start importing the model stack now (once); ``stackReady`` follows (see core.model_stack)."""
        self._worker.start_stack_import()

    @property
    def model_stack_ready(self) -> bool:
        """The model stack's native libraries are loaded: Qt's video/OpenGL stack may load after them."""
        return self._worker.stack_ready.is_set()

    def request_catalogue(self) -> None:
        self._worker.post(_Job("catalogue", next(self._ids)))

    def classify(self, source: str | QImage, top_k: int) -> int:
        """Classify one image (a path, or image data); a newer call supersedes this one."""
        job = _Job("classify", next(self._ids), (source, top_k))
        self._worker.post(job)
        return job.req

    def set_unknown_threshold(self, setting: float | str | None) -> None:
        """Change the unknown threshold (``None``: the model's own, a float in 0..1, ``"off"``); later
        requests are answered with it (jobs run in order)."""
        self._worker.post(_Job("threshold", next(self._ids), setting))

    def explain(self, source: str | QImage, class_index: int | None) -> int:
        """A Grad-CAM heatmap of ``class_index`` (None: top-1) on one image; a newer call supersedes this one."""
        job = _Job("explain", next(self._ids), (source, class_index))
        self._worker.post(job)
        return job.req

    def classify_live(self, mailbox: Any, top_k: int) -> None:
        """Wake the worker for ``mailbox``'s newest frame (call it when ``FrameMailbox.put`` says so)."""
        self._worker.post(_Job("live", next(self._ids), (mailbox, top_k)))

    @property
    def queued_live_jobs(self) -> int:
        """Live wake-ups posted and not yet taken by the worker (the live controller's no-growth check)."""
        return self._worker.live_posted - self._worker.live_started

    @property
    def batch_running(self) -> bool:
        """A folder or several files are being classified (live mode then gets one frame per chunk)."""
        return bool(self._batches)

    def classify_batch(self, paths: list[str], top_k: int) -> int:
        """Classify files and folders (walked in the worker), answering item by item."""
        job = _Job("batch", next(self._ids), (list(paths), top_k))
        self._batches[job.req] = job
        self._worker.post(job)
        return job.req

    def cancel_batch(self, req: int) -> None:
        job = self._batches.get(req)
        if job is not None:
            job.cancel.set()

    def shutdown(self, timeout_ms: int = 1800) -> bool:
        """Cancel everything, stop the worker and wait for it (bounded); True when it stopped."""
        # first mark everything superseded (so a cancelled download is not retried untrained), then cancel
        self._worker.latest["classify"] = 1 << 62
        self._worker.latest["load"] = 1 << 62
        if self._load_job is not None:
            self._load_job.cancel.set()
        for job in self._batches.values():
            job.cancel.set()
        self._worker.post(_Job("stop", next(self._ids)))
        return self._worker.wait(timeout_ms)

    @property
    def running(self) -> bool:
        return self._worker.isRunning()

    # -- answers -----------------------------------------------------------------------------------
    def _if_latest_load(self, req: int) -> bool:
        return self._load_job is not None and req == self._load_job.req

    def _on_model_ready(self, req: int, state: ModelState) -> None:
        if self._if_latest_load(req):
            self.model, self.model_req = state, req
            self.modelReady.emit(state)

    def _on_model_failed(self, req: int, message: str) -> None:
        if self._if_latest_load(req):
            self.model = self._previous
            self.modelFailed.emit(message)

    def _on_result(self, req: int, pred: Any) -> None:
        if req == self._worker.latest["classify"]:
            self.resultReady.emit(req, pred)

    def _on_batch_finished(self, req: int, cancelled: bool) -> None:
        self._batches.pop(req, None)
        self.batchFinished.emit(req, cancelled)
