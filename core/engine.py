"""The inference engine: one model, one device, one backend, pipelined batch classification.

Backends (:mod:`.runners`): ``torch`` (eager PyTorch on CPU, CUDA or MPS; on CUDA channels_last,
autocast and cuDNN autotuning, see :mod:`.cuda_path`) and ``onnxruntime`` (the model exported once
to an ONNX graph, see :mod:`.onnx_export`, kept in the user cache folder, see :mod:`.graph_cache`).
``auto`` means ONNX Runtime on the CPU when it is installed, torch on a GPU (:mod:`.backend_choice`).

A start whose graph is already cached imports neither torch nor timm (``Classifier.load`` finds
the graph from what the previous load recorded). A first start serves with torch while the graph
is exported in a background thread (``export="background"``) and switches over between two
batches once it is verified; ``export="wait"`` exports first, as the CLI does. The thread is not a
daemon; :meth:`Classifier.wait_for_export` and :meth:`Classifier.close` join it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from . import graph_cache, onnx_export
from . import precision as precision_modes
from .backend_choice import pick_backend, pick_device
from .cuda_path import accelerator_may_exist
from .errors import ExportError, GpuOutOfMemory, ImageLoadError, SqueezeLensError, UsageError
from .images import open_image
from .model_loader import DeferredLoadedModel, LoadedModel, load_model
from .options import BACKENDS, DEVICES, EXPORT_MODES, PRECISIONS, Backend, Device, ExportMode, Precision
from .pipeline import run_batched
from .predictions import Prediction, TopClass
from .preprocess import fast_decode_min_side
from .runners import OrtRunner, Runner, TorchRunner, onnxruntime_available, ort_has_cuda
from .state_digest import state_digest
from .unknown import ThresholdSetting, UnknownCalibration, is_unknown, read_calibration, resolve_threshold
from .weights import ProgressFn

if TYPE_CHECKING:
    import torch

    from .runners import Item

log = logging.getLogger(__name__)

__all__ = ["CANCELLED", "Classifier", "ImageInput", "Prediction", "TopClass"]

#: A path, a PIL image, or an input that already failed upstream (e.g. an empty folder).
ImageInput = str | os.PathLike | Image.Image | ImageLoadError
#: The error of an input that a cancelled ``classify`` did not get to.
CANCELLED = "cancelled"
#: The name of the thread that prepares a reduced-precision runner after a torch-free start.
PRECISION_THREAD = "squeezelens-precision"


class Classifier:
    """One loaded model on one device and backend.

    Example:
        >>> clf = Classifier.load("seresnext26d_32x4d")
        >>> clf.classify(["dog.jpg"])[0].top[0].label
        >>> clf.close()  # at the end: waits for a background ONNX export still running
    """

    #: Convert embedded ICC colour profiles to sRGB (:mod:`.colour`); None follows the environment
    #: (``SQUEEZELENS_COLOUR_MANAGEMENT``, on by default); False gives timm's own pixels exactly.
    colour_manage: bool | None = None

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "cpu",
        fast_decode: bool = True,
        *,
        runner: Runner | None = None,
        data_config: Mapping[str, Any] | None = None,
    ) -> None:
        """A torch classifier for ``loaded`` on ``device``; ``runner``/``data_config`` are for the other backends."""
        self.loaded = loaded
        self.fast_decode = fast_decode
        if data_config is None:
            from .preprocess import data_config as resolve_data_config

            data_config = resolve_data_config(loaded.model)
        self.data_config = dict(data_config)
        self._fast_min_side = fast_decode_min_side(self.data_config)
        self._lock = threading.RLock()
        self._runner: Runner = runner or TorchRunner(loaded.model, device, self.data_config["input_size"])
        self._transform = self._transform_for(self._runner)
        self._pending: Runner | None = None  # a verified ONNX Runtime runner waiting to take over
        self._pending_note = ""
        self._export_thread: threading.Thread | None = None
        self._closed = False
        #: Seconds the ONNX export took in this load (export, check against torch, write), 0 when none ran.
        self.export_seconds = 0.0
        #: One line on how the backend was chosen (e.g. why ONNX Runtime is not in use), for a status bar.
        self.backend_note = f"{self._runner.kind} on {self._runner.device}"
        #: The unknown-verdict calibration saved with the model (core/unknown.py); None for ImageNet models.
        self.unknown_calibration: UnknownCalibration | None = None
        #: The threshold in force on the top-1 probability (0..1), or None: no unknown verdict.
        self.unknown_threshold: float | None = None
        #: The precision asked for at load (:data:`.options.Precision`); :attr:`precision` is the one in use.
        self.requested_precision: str = "fp32"
        #: How the precision was settled (the fidelity verdicts, or why a mode was refused).
        self.precision_note = ""
        #: Extra real photos for the fidelity check (a finetuned model's validation images).
        self.fidelity_photos: Sequence[Path] = ()
        #: Builds a reduced-precision runner (tests inject a broken one); see :func:`.precision.choose`.
        self._precision_opener: precision_modes.Opener | None = None

    @classmethod
    def load(
        cls,
        model: str | None = None,
        weights: str | os.PathLike[str] | None = None,
        device: Device | str = "auto",
        backend: Backend | str = "auto",
        *,
        fast_decode: bool = True,
        allow_download: bool = True,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        export: ExportMode = "background",
        unknown_threshold: ThresholdSetting | str = None,
        precision: Precision | str = "fp32",
    ) -> Classifier:
        """Load ``model`` (name or saved-model folder; default seresnext26d_32x4d) with weights resolved as
        documented: ``weights`` file or folder > Hugging Face cache > download > none (untrained).

        Args:
            device: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda`` or ``mps``.
            backend: ``auto`` (ONNX Runtime on the CPU when installed, torch on a GPU), ``torch`` or
                ``onnxruntime``. An ONNX export that fails falls back to torch, with the reason logged
                and in :attr:`backend_note`.
            export: when the model's ONNX graph is not cached yet and ``backend`` is ``auto``:
                ``background`` serves with torch at once and switches to ONNX Runtime when the
                export is ready (:meth:`close` waits for that thread); ``wait`` exports first. An
                explicit ``onnxruntime`` always waits.
            unknown_threshold: None uses the threshold calibrated when the model was finetuned (its
                ``config.json``'s ``squeezelens_unknown``; ImageNet models have none); a number in 0..1
                sets one on the top-1 probability; ``"off"`` disables the verdict
                (:meth:`set_unknown_threshold`).
            precision: ``fp32`` (exact, the default), ``auto`` (the fastest mode this CPU runs
                natively that passes the fidelity check, see :mod:`.precision`), ``int8`` or ``bf16``. Applies to the
                CPU graph path; a refused mode falls back to fp32 with the reason in
                :attr:`precision_note`. With ``export="background"`` a mode not prepared yet is
                prepared (quantized, checked) in the background thread, fp32 serving meanwhile.

        Raises:
            UsageError: an unknown or absent device or backend (ONNX Runtime without CUDA support for
                ``backend="onnxruntime", device="cuda"`` too), or a bad ``export``.
            ModelNotFoundError: see :func:`.model_loader.load_model`.
            WeightsError: see :func:`.model_loader.load_model`.
            DownloadCancelled: ``cancel`` was set during a download.
        """
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
        if device not in DEVICES:
            raise UsageError(f"unknown device '{device}'; choose one of {', '.join(DEVICES)}")
        if export not in EXPORT_MODES:
            raise UsageError("export must be 'background' or 'wait'")
        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
        calibration = read_calibration(model) if model is not None else None
        threshold = resolve_threshold(unknown_threshold, calibration)
        clf = cls._load(model, weights, device, backend, fast_decode, allow_download, progress, cancel, export,
                        str(precision))
        clf.unknown_calibration, clf.unknown_threshold = calibration, threshold
        return clf

    def set_unknown_threshold(self, setting: ThresholdSetting | str) -> float | None:
        """Change the unknown threshold: None = the model's calibrated one, a number in 0..1, or ``"off"``.

        Returns:
            The threshold now in force (None: no unknown verdict).

        Raises:
            UsageError: a number outside 0..1 or a string other than ``off``.
        """
        self.unknown_threshold = resolve_threshold(setting, self.unknown_calibration)
        return self.unknown_threshold

    @classmethod
    def _load(
        cls, model: str | None, weights: str | os.PathLike[str] | None, device: str, backend: str,
        fast_decode: bool, allow_download: bool, progress: ProgressFn | None, cancel: threading.Event | None,
        export: ExportMode, precision: str,
    ) -> Classifier:
        """:meth:`load` after its checks, without the unknown threshold."""
        if backend == "onnxruntime" and device == "mps":
            raise UsageError("ONNX Runtime does not run on mps here; use --backend torch or --device cpu")
        fast = cls._load_cached_graph(model, weights, device, backend, fast_decode, allow_download, progress, cancel)
        if fast is not None:
            fast._request_precision(precision, model)
            fast._adopt_precision(fast._runner, wait=export == "wait")
            return fast
        dev = pick_device(device)
        if backend == "onnxruntime" and device == "auto" and not (dev == "cuda" and ort_has_cuda()):
            dev = "cpu"  # asked for ONNX Runtime, and it runs here on the CPU only
        chosen = pick_backend(backend, dev)
        name = None if model is None else str(model)
        loaded = load_model(name, weights, allow_download=allow_download, progress=progress, cancel=cancel)
        if chosen == "torch":
            clf = cls(loaded, dev, fast_decode=fast_decode)
            clf._note_torch_precision(str(precision))
            return clf
        clf = cls(loaded, "cpu", fast_decode=fast_decode)
        clf._request_precision(precision, model)
        wait = backend == "onnxruntime" or export == "wait"
        clf._adopt_onnx(model, weights, ort_device=dev, wait=wait, strict=backend == "onnxruntime")
        return clf

    @classmethod
    def _load_cached_graph(
        cls, model: str | None, weights: str | os.PathLike[str] | None, device: str, backend: str,
        fast_decode: bool, allow_download: bool, progress: ProgressFn | None, cancel: threading.Event | None,
    ) -> Classifier | None:
        """The torch-free start: a Classifier on a cached ONNX graph, or None when that cannot be used."""
        if backend == "torch" or device not in ("auto", "cpu") or not onnxruntime_available():
            return None
        if device == "auto" and accelerator_may_exist():
            return None  # torch decides, and on a GPU auto means torch
        hit = graph_cache.find_cached_load(model, weights, allow_download=allow_download,
                                           progress=progress, cancel=cancel)
        if hit is None:
            return None
        runner = _open_cached(hit.graph)
        if runner is None:
            return None
        meta = hit.graph.meta
        cfg = meta["data_config"]
        cfg["input_size"] = tuple(cfg["input_size"])
        name = None if model is None else str(model)

        def build() -> LoadedModel:
            return load_model(name, weights, allow_download=False)

        loaded = DeferredLoadedModel(
            build, name=hit.name or meta["name"], architecture=meta["architecture"],
            pretrained_cfg=meta["pretrained_cfg"],
            labels=list(meta["labels"]), weights=hit.source, untrained_reason=hit.untrained_reason,
            license=meta.get("license"),
        )
        clf = cls(loaded, "cpu", fast_decode=fast_decode, runner=runner, data_config=cfg)
        clf.backend_note = "onnxruntime on cpu (cached graph)"
        return clf

    def _adopt_onnx(self, model: str | None, weights: str | os.PathLike[str] | None, *, ort_device: str,
                    wait: bool, strict: bool) -> None:
        """Use the cached graph of this model, or export one (now, or in a background thread)."""
        loaded = self.loaded
        key = graph_cache.graph_key(loaded.architecture, len(loaded.labels), self.data_config["input_size"],
                                    state_digest(loaded.model), labels=loaded.labels, data_config=self.data_config)
        meta = graph_cache.model_meta(loaded, self.data_config)

        def prepare(copy_model: bool) -> Runner:
            graph = graph_cache.find_graph(key)
            if graph is not None:
                opened = _open_cached(graph, ort_device)
                if opened is None:
                    graph = None
                else:
                    runner = opened
            if graph is None:
                t0 = time.perf_counter()
                graph = onnx_export.export_graph(loaded.model, key, meta, copy_model=copy_model)
                self.export_seconds = time.perf_counter() - t0
                runner = OrtRunner(graph.path, ort_device)
            graph_cache.record_request(model, weights, loaded, graph)
            if ort_device == "cpu":
                return self._precision_runner(runner)
            return runner

        def failed(e: BaseException) -> None:
            reason = f"{type(e).__name__}: {e}" if not isinstance(e, SqueezeLensError) else str(e)
            log.warning("ONNX Runtime is not used for %s: %s; running on torch", loaded.name, reason)
            self.backend_note = f"torch on cpu (ONNX Runtime unavailable: {reason})"

        if wait or graph_cache.find_graph(key, verify=False) is not None:
            try:
                runner = prepare(copy_model=False)
            except SqueezeLensError as e:
                if strict and not isinstance(e, ExportError):
                    raise
                failed(e)
                return
            except Exception as e:
                failed(e)
                return
            self._switch_to(runner, "exported now" if self.export_seconds else "cached graph")
            return

        self.backend_note = "torch on cpu (ONNX Runtime graph being prepared)"

        def work() -> None:
            try:
                runner = prepare(copy_model=True)
            except Exception as e:
                failed(e)
            else:
                with self._lock:
                    if not self._closed:
                        self._pending = runner
                        self._pending_note = f"exported in {self.export_seconds:.1f} s" if self.export_seconds else ""

        # Not a daemon: at exit the interpreter waits for it rather than killing it inside torch, and
        # wait_for_export()/close() join it. The export writes atomically (graph_cache.publish), so a
        # process that ends with os._exit meanwhile leaves only a scratch folder, removed later.
        self._export_thread = threading.Thread(target=work, name="squeezelens-onnx-export", daemon=False)
        self._export_thread.start()

    def _request_precision(self, precision: str, model: str | None) -> None:
        """Ask for ``precision`` on the graph path; a reduced one is checked on the model's own validation
        images too (:func:`.precision.model_photos`)."""
        self.requested_precision = str(precision)
        self.fidelity_photos = precision_modes.model_photos(model) if precision != "fp32" else ()

    def _note_torch_precision(self, requested: str) -> None:
        """Reduced precision is for the CPU graph path: say so when it was asked for explicitly."""
        self.requested_precision = requested
        if requested in ("int8", "bf16"):
            self.precision_note = f"{requested} refused: it runs on the CPU graph path (ONNX Runtime), not on torch"
            log.warning("%s", self.precision_note)

    def _precision_runner(self, fp32: Runner) -> Runner:
        """The runner of :attr:`requested_precision` for the graph ``fp32`` runs (``fp32`` itself when
        fp32 was asked for or every faster mode was refused); sets :attr:`precision_note`. No torch."""
        path = getattr(fp32, "path", None)
        if self._closed:  # closing: no quantization or fidelity pass for a runner nobody will use
            return fp32
        if self.requested_precision == "fp32" or path is None or not hasattr(fp32, "logits"):
            self.precision_note = "fp32"
            return fp32
        from .numpy_transform import numpy_eval_transform

        transform = numpy_eval_transform(self.data_config)
        if transform is None:
            self.precision_note = "fp32 (the fidelity photos need the numpy transform of this model's input)"
            return fp32
        try:
            choice = precision_modes.choose(self.requested_precision, Path(path), fp32,  # type: ignore[arg-type]
                                            transform, opener=self._precision_opener,
                                            extra_photos=self.fidelity_photos, stop=lambda: self._closed)
        except Exception as e:  # never worse than fp32
            reason = e.reason if isinstance(e, SqueezeLensError) else f"{type(e).__name__}: {e}"
            self.precision_note = f"fp32 ({self.requested_precision} could not be prepared: {reason})"
            log.warning("%s", self.precision_note)
            return fp32
        self.precision_note = choice.note
        if choice.runner is None:
            return fp32
        setattr(choice.runner, "precision", choice.precision)  # noqa: B010  (not part of the Runner protocol)
        return choice.runner

    def _adopt_precision(self, fp32: Runner, *, wait: bool) -> None:
        """After a torch-free start on the fp32 graph: switch to the requested precision's runner,
        now (``wait``) or from a background thread (fp32 serves meanwhile)."""
        if self.requested_precision == "fp32":
            self.precision_note = "fp32"
            return

        def settle() -> Runner | None:
            runner = self._precision_runner(fp32)
            return None if runner is fp32 else runner

        if wait:
            runner = settle()
            if runner is not None:
                self._switch_to(runner, "cached graph")
            return

        def work() -> None:
            runner = settle()
            if runner is not None:
                with self._lock:
                    if not self._closed:
                        self._pending, self._pending_note = runner, "cached graph"

        self._export_thread = threading.Thread(target=work, name=PRECISION_THREAD, daemon=False)
        self._export_thread.start()

    def _switch_to(self, runner: Runner, note: str = "") -> None:
        with self._lock:
            self._runner = runner
            self._transform = self._transform_for(runner)
            self._pending = None
            self.backend_note = f"{runner.kind} on {runner.device}" + (f" ({note})" if note else "")
            mode = getattr(runner, "precision", "fp32")
            if mode != "fp32":
                self.backend_note += f", {mode}"

    def _current(self, block: bool = True) -> Runner:
        """The runner to use now, taking over a freshly exported graph between two batches.

        With ``block=False`` (the describing properties) a batch in progress is not waited for.
        """
        if self._pending is not None and self._lock.acquire(blocking=block):
            try:
                if self._pending is not None:
                    self._switch_to(self._pending, self._pending_note)
            finally:
                self._lock.release()
        return self._runner

    def wait_for_export(self, timeout: float | None = None) -> bool:
        """Wait until a background ONNX export has finished (or failed), joining its thread.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as the export takes.

        Returns:
            True when no export thread is left running (the next batch then runs on ONNX Runtime if
            the export succeeded; :attr:`backend` already says so); False when ``timeout`` passed first.
        """
        thread = self._export_thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        if not self._closed:
            self._current()
        return True

    def close(self, timeout: float | None = None) -> bool:
        """End this classifier's work, e.g. when the app quits: join a background ONNX export thread.

        The export is not interrupted (torch's exporter cannot be stopped midway); waiting lets it
        finish and cache its graph, so the next start is the fast one. The classifier is not switched
        to that graph any more, and :meth:`classify` refuses to run after this. Calling it again is
        harmless; it is also what leaving a ``with Classifier.load(...) as clf:`` block does.

        Args:
            timeout: seconds to wait at most for the export; ``None`` waits as long as it takes.

        Returns:
            True when no thread of this classifier is left running, so the interpreter can exit at
            once; False when ``timeout`` passed first. The thread is not a daemon: the interpreter
            waits for it at exit, unless the process ends with ``os._exit`` (the export writes
            atomically: an export cut off that way is simply redone at the next start).
        """
        with self._lock:
            self._closed = True
            self._pending = None
        return self.wait_for_export(timeout)

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def precision_pending(self) -> bool:
        """True while a reduced-precision runner is being prepared in the background (on a cached graph)."""
        thread = self._export_thread
        return thread is not None and thread.is_alive() and thread.name == PRECISION_THREAD

    @property
    def export_pending(self) -> bool:
        """True while a background ONNX export is running."""
        thread = self._export_thread
        return thread is not None and thread.is_alive()

    def _transform_for(self, runner: Runner) -> Callable[[Image.Image], Item]:
        if runner.kind in ("onnxruntime", "openvino"):
            from .numpy_transform import numpy_eval_transform

            fn = numpy_eval_transform(self.data_config)
            if fn is not None:
                return fn
        from .preprocess import eval_transform

        return eval_transform(self.data_config)

    # -- description ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """``torch`` or ``onnxruntime``: what the next batch runs on."""
        return self._current(block=False).kind

    @property
    def device(self) -> str:
        return self._current(block=False).device

    @property
    def precision(self) -> str:
        """The numeric precision of the next batch: ``fp32``, or ``int8``/``bf16`` (verified against
        fp32, :mod:`.precision`), or ``float16``/``bfloat16`` for torch's autocast on CUDA."""
        return str(getattr(self._current(block=False), "precision", "fp32"))

    @property
    def model(self) -> torch.nn.Module:
        """The torch module (built on first use after a torch-free start)."""
        return self.loaded.model

    @property
    def transform(self) -> Callable[[Image.Image], Item]:
        """The eval transform of the current backend (timm's; for ONNX Runtime its numpy twin)."""
        self._current(block=False)
        return self._transform

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def labels(self) -> list[str]:
        return self.loaded.labels

    @property
    def untrained(self) -> bool:
        """True when no weights were found: outputs are those of a random network."""
        return self.loaded.untrained

    # -- inference -----------------------------------------------------------------------------
    def preprocess(self, source: ImageInput) -> Item:
        """One input to a normalised CHW tensor (torch) or float32 array (ONNX Runtime).

        Raises:
            ImageLoadError: the input cannot be read.
        """
        if isinstance(source, ImageLoadError):
            raise source
        img = open_image(source, self._fast_min_side if self.fast_decode else None, colour_manage=self.colour_manage)
        return self._transform(img)

    def classify(
        self,
        inputs: Sequence[ImageInput],
        top_k: int = 5,
        batch_size: int = 16,
        on_result: Callable[[int, Prediction], None] | None = None,
        *,
        cancel: threading.Event | None = None,
        workers: int | None = None,
    ) -> list[Prediction]:
        """Classify every input; an input that fails gets an error, the others still run.

        Inputs are decoded in a small thread pool while the previous batch runs through the model;
        at most a few batches are decoded ahead, so a folder of any size uses bounded memory.

        Args:
            inputs: file paths or PIL images, any mix (an ``ImageLoadError`` stands for a failed input).
            top_k: classes per prediction (capped at the number of classes).
            batch_size: inputs per forward pass.
            on_result: called with (input index, prediction) in input order as each batch finishes,
                on the thread that called ``classify``; failed inputs included, cancelled ones not.
            cancel: set it (from any thread) to stop: no new batch starts, the batch being inferred
                finishes, and every input not done gets a Prediction whose error is ``"cancelled"``.
            workers: decoding threads (default: one per CPU, at most 4; 0 decodes on this thread).

        Returns:
            One Prediction per input, in input order.

        Raises:
            UsageError: ``batch_size`` below 1, or the classifier was closed (:meth:`close`).
        """
        if batch_size < 1:
            raise UsageError("batch_size must be at least 1")
        if self._closed:
            raise UsageError("this classifier was closed; load the model again")
        k = max(1, min(top_k, len(self.labels)))

        def load(src: ImageInput) -> tuple[ImageInput, Item, float]:
            t0 = time.perf_counter()
            x = self.preprocess(src)
            return src, x, (time.perf_counter() - t0) * 1000

        def infer(items: list[tuple[ImageInput, Item, float]]) -> list[Prediction]:
            preds = self._forward([x for _, x, _ in items], k)
            threshold = self.unknown_threshold
            for pred, (src, _, load_ms) in zip(preds, items):
                pred.source, pred.load_ms = _describe(src), load_ms
                pred.unknown = is_unknown(pred.top[0].prob, threshold)
            return preds

        def failed(src: ImageInput, e: BaseException) -> Prediction:
            reason = e.reason if isinstance(e, SqueezeLensError) else str(e)
            return Prediction(_describe(src), self.name, error=str(e), error_reason=reason, untrained=self.untrained)

        def cancelled(src: ImageInput) -> Prediction:
            return Prediction(_describe(src), self.name, error=CANCELLED, error_reason=CANCELLED,
                              untrained=self.untrained)

        return run_batched(
            list(inputs), load, infer, failed=failed, cancelled=cancelled, batch_size=batch_size,
            workers=workers, expected_errors=(ImageLoadError,), on_result=on_result, cancel=cancel,
        )

    def _forward(self, tensors: list[Item], k: int) -> list[Prediction]:
        with self._lock:
            runner = self._current()
            t0 = time.perf_counter()
            try:
                out = runner.top_k(tensors, k)
            except GpuOutOfMemory as e:
                if not isinstance(runner, TorchRunner):  # only torch's CUDA path raises it
                    raise
                runner = self._fall_back_to_cpu(runner, e)
                t0 = time.perf_counter()
                out = runner.top_k(tensors, k)
            if not _all_finite(out) and isinstance(runner, OrtRunner):
                runner = self._drop_damaged_graph(runner)  # a damaged graph: never show its NaN
                t0 = time.perf_counter()
                out = runner.top_k(tensors, k)
            per_item = (time.perf_counter() - t0) * 1000 / len(tensors)
        reduced = str(getattr(runner, "precision", "fp32"))
        precision = None if reduced in ("fp32", "float32") else reduced
        if not _all_finite(out):
            reason = "the model gave NaN or infinite scores for this input; no result"
            return [Prediction("", self.name, error=reason, error_reason=reason, untrained=self.untrained)
                    if not _all_finite([o]) else
                    Prediction("", self.name, top=[TopClass(int(i), self.labels[i], float(p)) for p, i in zip(*o)],
                               untrained=self.untrained, infer_ms=per_item, precision=precision) for o in out]
        return [
            Prediction(
                source="",
                model=self.name,
                top=[TopClass(int(i), self.labels[i], float(p)) for p, i in zip(ps, idx)],
                untrained=self.untrained,
                infer_ms=per_item,
                precision=precision,
            )
            for ps, idx in out
        ]

    def _drop_damaged_graph(self, runner: OrtRunner) -> TorchRunner:
        """The cached graph gave NaN/inf: remove it from the cache and run on torch from now on."""
        key = runner.path.parent.name
        graph_cache.discard(key, "it gave NaN or infinite scores")
        cpu = TorchRunner(self.loaded.model, "cpu")
        self._switch_to(cpu)
        self.backend_note = "torch on cpu (the cached ONNX graph was damaged and is exported again next time)"
        return cpu

    def _fall_back_to_cpu(self, runner: TorchRunner, error: BaseException) -> TorchRunner:
        """The GPU cannot take even one image: move the model to the CPU for good, and say so."""
        import torch

        model = runner.model.to(torch.device("cpu")).to(memory_format=torch.contiguous_format).float()
        cpu = TorchRunner(model, "cpu")
        self._switch_to(cpu)
        self.backend_note = f"torch on cpu ({error}; moved off the GPU)"
        log.warning("%s; classifying on the CPU from now on", error)
        return cpu


def _open_cached(graph: graph_cache.GraphInfo, device: str = "cpu") -> OrtRunner | None:
    """An ONNX Runtime session on a cached graph, or None (the entry removed) when it cannot be
    opened or its output width differs from its class names: the caller exports it again.

    Raises:
        SqueezeLensError: the device cannot run ONNX Runtime (not a cache problem).
    """
    try:
        runner = OrtRunner(graph.path, device)
    except SqueezeLensError:
        raise
    except Exception as e:  # a damaged cache entry: the full path re-exports it
        graph_cache.discard(graph.key, f"ONNX Runtime cannot open it ({type(e).__name__})")
        return None
    width = runner.session.get_outputs()[0].shape[-1]
    if isinstance(width, int) and width != len(graph.meta["labels"]):
        graph_cache.discard(graph.key, f"it gives {width} scores for {len(graph.meta['labels'])} class names")
        return None
    return runner


def _all_finite(out: Sequence[tuple[Sequence[float], Sequence[int]]]) -> bool:
    return all(math.isfinite(p) for ps, _ in out for p in ps)


def _describe(src: ImageInput) -> str:
    if isinstance(src, ImageLoadError):
        return src.path or ""
    if isinstance(src, Image.Image):
        return getattr(src, "filename", "") or f"<image {src.width}x{src.height}>"
    return str(Path(src))
