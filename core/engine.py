"""The inference engine: one model, one device, one backend, pipelined batch classification.

Backends: ``torch`` (eager PyTorch on CPU, CUDA or MPS; on CUDA channels_last, autocast and cuDNN
autotuning, see :mod:`.cuda_path`) and ``onnxruntime`` (the model exported once to an ONNX graph
cached in the user cache folder, see :mod:`.onnx_backend`). ``auto`` means ONNX Runtime on the CPU
when it is installed, torch on a GPU.

A start whose graph is already cached imports neither torch nor timm (``Classifier.load`` finds
the graph from what the previous load recorded). A first start serves with torch while the graph
is exported in a background thread (``export="background"``) and switches over between two
batches once it is verified; ``export="wait"`` exports first, as the CLI does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import ImageLoadError, SqueezeLensError, UsageError
from .images import open_image
from .model_loader import LoadedModel, load_model
from .options import BACKENDS, DEVICES, EXPORT_MODES, Backend, Device, ExportMode
from .pipeline import run_batched
from .preprocess import fast_decode_min_side
from .weights import ProgressFn, WeightsSource

log = logging.getLogger(__name__)

#: A path, a PIL image, or an input that already failed upstream (e.g. an empty folder).
ImageInput = str | os.PathLike | Image.Image | ImageLoadError
#: The error of an input that a cancelled ``classify`` did not get to.
CANCELLED = "cancelled"


@dataclass(frozen=True)
class TopClass:
    """One of the top-k classes of a prediction."""

    index: int
    label: str
    prob: float


@dataclass
class Prediction:
    """The result for one input: its top classes, or the error that stopped it."""

    source: str
    model: str
    top: list[TopClass] = field(default_factory=list)
    error: str | None = None  # "PATH: REASON", as JSON and CSV carry it
    error_reason: str | None = None  # the same error without the path, for views that show the path apart
    untrained: bool = False
    load_ms: float = 0.0  # decode + preprocess of this input
    infer_ms: float = 0.0  # this input's share of its batch's forward pass

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md: path, model, untrained, top; or path, error."""
        if self.error is not None:
            return {"path": self.source, "model": self.model, "untrained": self.untrained, "error": self.error}
        return {
            "path": self.source,
            "model": self.model,
            "untrained": self.untrained,
            "top": [{"index": t.index, "label": t.label, "prob": t.prob} for t in self.top],
            "time_ms": {"load": round(self.load_ms, 2), "inference": round(self.infer_ms, 2)},
        }


def pick_device(requested: str = "auto") -> str:
    """``auto`` means CUDA if present, then Apple MPS, then CPU; an absent device is an error."""
    if requested not in DEVICES:
        raise UsageError(f"unknown device '{requested}'; choose one of {', '.join(DEVICES)}")
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("CUDA was requested but no CUDA GPU is available here; use --device cpu")
    if requested == "mps" and not has_mps:
        raise UsageError("MPS was requested but Apple Metal is not available here; use --device cpu")
    return requested


def pick_backend(requested: str = "auto", device: str = "cpu") -> str:
    """The backend for ``device``: ``auto`` is ONNX Runtime on the CPU when installed, else torch."""
    from .onnx_backend import onnxruntime_available

    if requested not in BACKENDS:
        raise UsageError(f"unknown backend '{requested}'; choose one of {', '.join(BACKENDS)}")
    if requested == "onnxruntime":
        if not onnxruntime_available():
            raise UsageError("ONNX Runtime is not installed (pip install onnxruntime); use --backend torch")
        if device not in ("cpu", "cuda"):
            raise UsageError(f"ONNX Runtime does not run on {device} here; use --backend torch")
        return "onnxruntime"
    if requested == "auto" and device == "cpu" and onnxruntime_available():
        return "onnxruntime"
    return "torch"


class TorchRunner:
    """Eager PyTorch on one device; on CUDA with channels_last, autocast, cuDNN autotuning, warm-up,
    and out-of-memory retries in smaller batches."""

    kind = "torch"

    def __init__(self, model: Any, device: str = "cpu", input_size: Sequence[int] | None = None) -> None:
        import torch

        self.device = device
        self._autocast: Any = None
        self._oom: Any = None
        if device == "cuda":
            from . import cuda_path

            self.model = cuda_path.prepare_model(model, device)
            self._autocast = cuda_path.autocast_dtype(torch)
            self._oom = cuda_path.OomRetry()
            if input_size is not None:
                cuda_path.warm_up(self._logits, input_size, device, batch_sizes=(1,))
        else:
            self.model = model.to(torch.device(device)).eval()

    def _logits(self, batch: Any) -> Any:
        import torch

        with torch.inference_mode():
            if self._autocast is not None:
                with torch.autocast("cuda", dtype=self._autocast):
                    return self.model(batch)
            return self.model(batch)

    def _top_k(self, items: Sequence[Any], k: int) -> list[tuple[list[float], list[int]]]:
        import torch

        batch = torch.stack([torch.from_numpy(x) if not isinstance(x, torch.Tensor) else x for x in items])
        batch = batch.to(self.device, non_blocking=True)
        if self.device == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            probs = self._logits(batch).float().softmax(dim=-1)
            top_p, top_i = probs.topk(k, dim=-1)
            return list(zip(top_p.cpu().tolist(), top_i.cpu().tolist()))

    def top_k(self, items: Sequence[Any], k: int) -> list[tuple[list[float], list[int]]]:
        """Per item: the ``k`` largest probabilities and their class indices, largest first.

        Raises:
            GpuOutOfMemory: on CUDA, when even one input at a time does not fit.
        """
        if self._oom is not None:
            return self._oom.run(lambda chunk: self._top_k(chunk, k), items)
        return self._top_k(items, k)


class _DeferredLoadedModel(LoadedModel):
    """A :class:`LoadedModel` whose torch module is built on first use of ``.model``.

    A start from a cached ONNX graph never needs the module; code that asks for it still gets it.
    """

    def __init__(self, loader: Callable[[], LoadedModel], **kwargs: Any) -> None:
        self._loader: Callable[[], LoadedModel] | None = loader
        self._model: Any = None
        super().__init__(model=None, **kwargs)

    @property  # type: ignore[override]
    def model(self) -> Any:
        if self._model is None and self._loader is not None:
            self._model = self._loader().model
            self._loader = None
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value

    def __repr__(self) -> str:
        return f"LoadedModel(name={self.name!r}, architecture={self.architecture!r}, weights={self.weights!r})"


class Classifier:
    """One loaded model on one device and backend.

    Example:
        >>> clf = Classifier.load("seresnext26d_32x4d")
        >>> clf.classify(["dog.jpg"])[0].top[0].label
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "cpu",
        fast_decode: bool = True,
        *,
        runner: Any = None,
        data_config: dict[str, Any] | None = None,
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
        self._runner: Any = runner or TorchRunner(loaded.model, device, self.data_config["input_size"])
        self._transform = self._transform_for(self._runner)
        self._pending: Any = None  # a verified ONNX Runtime runner waiting to take over
        self._pending_note = ""
        #: Seconds the ONNX export took in this load (export, check against torch, write), 0 when none ran.
        self.export_seconds = 0.0
        self._export_done = threading.Event()
        self._export_done.set()
        #: One line on how the backend was chosen (e.g. why ONNX Runtime is not in use), for a status bar.
        self.backend_note = f"{self._runner.kind} on {self._runner.device}"

    @classmethod
    def load(
        cls,
        model: str | None = None,
        weights: str | os.PathLike | None = None,
        device: Device | str = "auto",
        backend: Backend | str = "auto",
        *,
        fast_decode: bool = True,
        allow_download: bool = True,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        export: ExportMode = "background",
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
                export is ready; ``wait`` exports first. An explicit ``onnxruntime`` always waits.
        """
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
        if device not in DEVICES:
            raise UsageError(f"unknown device '{device}'; choose one of {', '.join(DEVICES)}")
        if export not in EXPORT_MODES:
            raise UsageError("export must be 'background' or 'wait'")
        if backend == "onnxruntime" and device == "mps":
            raise UsageError("ONNX Runtime does not run on mps here; use --backend torch or --device cpu")
        fast = cls._load_cached_graph(model, weights, device, backend, fast_decode, allow_download, progress, cancel)
        if fast is not None:
            return fast
        dev = pick_device(device)
        if backend == "onnxruntime" and device == "auto" and not (dev == "cuda" and _ort_has_cuda()):
            dev = "cpu"  # asked for ONNX Runtime, and it runs here on the CPU only
        chosen = pick_backend(backend, dev)
        name = None if model is None else str(model)
        loaded = load_model(name, weights, allow_download=allow_download, progress=progress, cancel=cancel)
        if chosen == "torch":
            return cls(loaded, dev, fast_decode=fast_decode)
        clf = cls(loaded, "cpu", fast_decode=fast_decode)
        wait = backend == "onnxruntime" or export == "wait"
        clf._adopt_onnx(model, weights, ort_device=dev, wait=wait, strict=backend == "onnxruntime")
        return clf

    @classmethod
    def _load_cached_graph(
        cls, model: str | None, weights: str | os.PathLike | None, device: str, backend: str, fast_decode: bool,
        allow_download: bool, progress: ProgressFn | None, cancel: threading.Event | None,
    ) -> Classifier | None:
        """The torch-free start: a Classifier on a cached ONNX graph, or None when that cannot be used."""
        from . import onnx_backend
        from .cuda_path import accelerator_may_exist

        if backend == "torch" or device not in ("auto", "cpu") or not onnx_backend.onnxruntime_available():
            return None
        if device == "auto" and accelerator_may_exist():
            return None  # torch decides, and on a GPU auto means torch
        hit = onnx_backend.find_cached_load(model, weights, allow_download=allow_download,
                                            progress=progress, cancel=cancel)
        if hit is None:
            return None
        try:
            runner = onnx_backend.OrtRunner(hit.graph.path)
        except Exception as e:  # a damaged cache entry: the full path re-exports it
            log.warning("cached ONNX graph %s could not be opened (%s); exporting it again", hit.graph.path, e)
            return None
        meta = hit.graph.meta
        cfg = meta["data_config"]
        cfg["input_size"] = tuple(cfg["input_size"])
        name = None if model is None else str(model)

        def build() -> LoadedModel:
            return load_model(name, weights, allow_download=False)

        loaded = _DeferredLoadedModel(
            build, name=meta["name"], architecture=meta["architecture"], pretrained_cfg=meta["pretrained_cfg"],
            labels=list(meta["labels"]), weights=hit.source, untrained_reason=hit.untrained_reason,
            license=meta.get("license"),
        )
        clf = cls(loaded, "cpu", fast_decode=fast_decode, runner=runner, data_config=cfg)
        clf.backend_note = "onnxruntime on cpu (cached graph)"
        return clf

    def _adopt_onnx(self, model: Any, weights: Any, *, ort_device: str, wait: bool, strict: bool) -> None:
        """Use the cached graph of this model, or export one (now, or in a background thread)."""
        from . import onnx_backend as ob

        loaded = self.loaded
        key = ob.graph_key(loaded.architecture, len(loaded.labels), self.data_config["input_size"],
                           ob.state_hash(loaded.model))
        meta = ob.model_meta(loaded, self.data_config)
        hf_hub_id = _hf_hub_id(model, loaded.weights)

        def prepare(copy_model: bool) -> Any:
            graph = ob.find_graph(key)
            if graph is not None:
                try:
                    runner = ob.OrtRunner(graph.path, ort_device)
                except SqueezeLensError:
                    raise
                except Exception as e:
                    log.warning("cached ONNX graph %s could not be opened (%s); exporting it again", graph.path, e)
                    graph = None
            if graph is None:
                t0 = time.perf_counter()
                graph = ob.export_graph(loaded.model, key, meta, copy_model=copy_model)
                self.export_seconds = time.perf_counter() - t0
                runner = ob.OrtRunner(graph.path, ort_device)
            ob.record_request(model, weights, loaded, hf_hub_id, graph)
            return runner

        def failed(e: BaseException) -> None:
            reason = f"{type(e).__name__}: {e}" if not isinstance(e, SqueezeLensError) else str(e)
            log.warning("ONNX Runtime is not used for %s: %s; running on torch", loaded.name, reason)
            self.backend_note = f"torch on cpu (ONNX Runtime unavailable: {reason})"

        if wait or ob.find_graph(key) is not None:
            try:
                runner = prepare(copy_model=False)
            except SqueezeLensError as e:
                if strict and not isinstance(e, ob.ExportError):
                    raise
                failed(e)
                return
            except Exception as e:
                failed(e)
                return
            self._switch_to(runner, "exported now" if self.export_seconds else "cached graph")
            return

        self._export_done.clear()
        self.backend_note = "torch on cpu (ONNX Runtime graph being prepared)"

        def work() -> None:
            try:
                runner = prepare(copy_model=True)
            except Exception as e:
                failed(e)
            else:
                with self._lock:
                    self._pending = runner
                    self._pending_note = f"exported in {self.export_seconds:.1f} s" if self.export_seconds else ""
            finally:
                self._export_done.set()

        # not a daemon: the interpreter waits for it at exit rather than killing it inside torch
        threading.Thread(target=work, name="squeezelens-onnx-export", daemon=False).start()

    def _switch_to(self, runner: Any, note: str = "") -> None:
        with self._lock:
            self._runner = runner
            self._transform = self._transform_for(runner)
            self._pending = None
            self.backend_note = f"{runner.kind} on {runner.device}" + (f" ({note})" if note else "")

    def _current(self, block: bool = True) -> Any:
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
        """Wait until a background ONNX export has finished (or failed); True when none is running."""
        done = self._export_done.wait(timeout)
        if done:
            self._current()
        return done

    @property
    def export_pending(self) -> bool:
        """True while a background ONNX export is running."""
        return not self._export_done.is_set()

    def _transform_for(self, runner: Any) -> Callable[[Image.Image], Any]:
        if runner.kind == "onnxruntime":
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
    def model(self) -> Any:
        """The torch module (built on first use after a torch-free start)."""
        return self.loaded.model

    @property
    def transform(self) -> Callable[[Image.Image], Any]:
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
    def preprocess(self, source: ImageInput) -> Any:
        """One input to a normalised CHW tensor (torch) or float32 array (ONNX Runtime).

        Raises:
            ImageLoadError: the input cannot be read.
        """
        if isinstance(source, ImageLoadError):
            raise source
        img = open_image(source, self._fast_min_side if self.fast_decode else None)
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
        """
        if batch_size < 1:
            raise UsageError("batch_size must be at least 1")
        k = max(1, min(top_k, len(self.labels)))

        def load(src: ImageInput) -> tuple[ImageInput, Any, float]:
            t0 = time.perf_counter()
            x = self.preprocess(src)
            return src, x, (time.perf_counter() - t0) * 1000

        def infer(items: list[tuple[ImageInput, Any, float]]) -> list[Prediction]:
            preds = self._forward([x for _, x, _ in items], k)
            for pred, (src, _, load_ms) in zip(preds, items):
                pred.source, pred.load_ms = _describe(src), load_ms
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

    def _forward(self, tensors: list[Any], k: int) -> list[Prediction]:
        from .cuda_path import GpuOutOfMemory

        with self._lock:
            runner = self._current()
            t0 = time.perf_counter()
            try:
                out = runner.top_k(tensors, k)
            except GpuOutOfMemory as e:
                runner = self._fall_back_to_cpu(runner, e)
                t0 = time.perf_counter()
                out = runner.top_k(tensors, k)
            per_item = (time.perf_counter() - t0) * 1000 / len(tensors)
        return [
            Prediction(
                source="",
                model=self.name,
                top=[TopClass(int(i), self.labels[i], float(p)) for p, i in zip(ps, idx)],
                untrained=self.untrained,
                infer_ms=per_item,
            )
            for ps, idx in out
        ]

    def _fall_back_to_cpu(self, runner: Any, error: BaseException) -> Any:
        """The GPU cannot take even one image: move the model to the CPU for good, and say so."""
        import torch

        model = runner.model.to(torch.device("cpu"), memory_format=torch.contiguous_format).float()
        cpu = TorchRunner(model, "cpu")
        self._switch_to(cpu)
        self.backend_note = f"torch on cpu ({error}; moved off the GPU)"
        log.warning("%s; classifying on the CPU from now on", error)
        return cpu


def _ort_has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _hf_hub_id(model: Any, source: WeightsSource) -> str | None:
    """The Hugging Face repo a catalogue model's weights come from (None for files and folders)."""
    if source.kind in ("file", "dir"):
        return None
    from . import catalogue

    try:
        return catalogue.find(str(model) if model is not None else catalogue.DEFAULT_MODEL)[1].hf_hub_id
    except KeyError:
        return None


def _describe(src: ImageInput) -> str:
    if isinstance(src, ImageLoadError):
        return src.path or ""
    if isinstance(src, Image.Image):
        return getattr(src, "filename", "") or f"<image {src.width}x{src.height}>"
    return str(Path(src))
