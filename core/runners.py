"""The two backends a :class:`~.engine.Classifier` runs a batch on, behind one :class:`Runner` protocol.

- :class:`TorchRunner`: eager PyTorch on one device; on CUDA with channels_last, autocast, cuDNN
  autotuning, warm-up and out-of-memory retries (all in :mod:`.cuda_path`).
- :class:`OrtRunner`: one ONNX Runtime session for one exported graph (:mod:`.onnx_export` makes
  it, :mod:`.graph_cache` keeps it), on the CPU or through ONNX Runtime's CUDA provider.
- :class:`OvRunner`: OpenVINO's CPU plugin on an ONNX graph, for the reduced-precision modes
  (an int8 QDQ graph, or the fp32 graph with a bf16 hint; :mod:`.precision` decides).

Importing this module imports neither torch, onnxruntime nor openvino: each runner imports its library when
it is built, so a start from a cached graph never loads torch.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from . import cuda_path
from .device_info import usable_cpus
from .errors import UsageError

if TYPE_CHECKING:
    from typing import TypeAlias

    import torch

    #: One preprocessed input: a float32 CHW array (the numpy transform) or tensor (timm's transform).
    Item: TypeAlias = np.ndarray | torch.Tensor

#: What runs a batch: the values of :attr:`Runner.kind` (and of ``Classifier.backend``).
RunnerKind = Literal["torch", "onnxruntime", "openvino"]
#: Per item: its ``k`` largest probabilities and their class indices, largest first.
TopK = list[tuple[list[float], list[int]]]

#: ONNX Runtime's worker threads spin between ops instead of sleeping: waking a thread costs more
#: than many of the ops, so batch 1 is much faster with spinning, while a folder run (whose loader
#: threads share the cores with the spinning) is only a little slower (docs/PERFORMANCE.md, issue 6).
ALLOW_SPINNING = True
#: Largest batch ONNX Runtime runs at once on the CPU: a CPU gains nothing from bigger batches and
#: they cost memory (docs/PERFORMANCE.md, issue 6: the CLI on a folder, 4 against 16).
CPU_MAX_BATCH = 4


class Runner(Protocol):
    """What a Classifier needs of a backend: what it is, where it runs, and top-k of a batch."""

    @property
    def kind(self) -> RunnerKind:
        """``torch`` or ``onnxruntime``."""
        ...

    @property
    def device(self) -> str:
        """``cpu``, ``cuda`` or ``mps``."""
        ...

    def top_k(self, items: Sequence[Item], k: int) -> TopK:
        """Per item: the ``k`` largest class probabilities (softmax of the logits) and their class
        indices, largest first.

        Args:
            items: preprocessed inputs, each of shape (3, H, W), float32.
            k: classes per item, 1 to the number of classes.

        Raises:
            GpuOutOfMemory: on CUDA, when even one input at a time does not fit.
        """
        ...


def onnxruntime_available() -> bool:
    """Is the ``onnxruntime`` package installed (found without importing it)?"""
    return importlib.util.find_spec("onnxruntime") is not None


def ort_has_cuda() -> bool:
    """Does the installed ONNX Runtime have its CUDA execution provider? (Imports onnxruntime.)"""
    import onnxruntime  # type: ignore[import-untyped]  # onnxruntime ships no type information (no py.typed)

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def intra_op_threads() -> int:
    """ONNX Runtime's compute threads: one per CPU this process may use.

    ONNX Runtime's own default (0) ran batch 1 slower than this on the project's measuring machine
    (docs/PERFORMANCE.md, issue 6).
    """
    return usable_cpus()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, classes) logits in float32, shifted by the row maximum."""
    z = logits.astype(np.float32, copy=False)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class TorchRunner:
    """Eager PyTorch on one device; on CUDA with channels_last, autocast, cuDNN autotuning, warm-up,
    and out-of-memory retries in smaller batches."""

    kind: RunnerKind = "torch"
    #: ``fp32``, or torch's autocast type on CUDA (``float16``/``bfloat16``).
    precision: str = "fp32"

    def __init__(self, model: torch.nn.Module, device: str = "cpu", input_size: Sequence[int] | None = None) -> None:
        """Put ``model`` (eval mode) on ``device``.

        Args:
            model: the torch module; moved (not copied) to ``device``.
            device: ``cpu``, ``cuda`` or ``mps``.
            input_size: (3, H, W); on CUDA a warm-up pass of this size runs now instead of on the first photo.
        """
        import torch

        self.device = device
        self._autocast: torch.dtype | None = None
        self._oom: cuda_path.OomRetry | None = None
        if device == "cuda":
            self.model = cuda_path.prepare_model(model, device)
            self._autocast = cuda_path.autocast_dtype()
            if self._autocast is not None:
                self.precision = str(self._autocast).removeprefix("torch.")
            self._oom = cuda_path.OomRetry()
            if input_size is not None:
                cuda_path.warm_up(self._logits, input_size, device, batch_sizes=(1,))
        else:
            self.model = model.to(torch.device(device)).eval()

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            if self._autocast is not None:
                with torch.autocast("cuda", dtype=self._autocast):
                    return self.model(batch)
            return self.model(batch)

    def _top_k(self, items: Sequence[Item], k: int) -> TopK:
        import torch

        batch = torch.stack([torch.from_numpy(x) if isinstance(x, np.ndarray) else x for x in items])
        batch = batch.to(self.device, non_blocking=True)
        if self.device == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            probs = self._logits(batch).float().softmax(dim=-1)
            top_p, top_i = probs.topk(k, dim=-1)
            return list(zip(top_p.cpu().tolist(), top_i.cpu().tolist()))

    def top_k(self, items: Sequence[Item], k: int) -> TopK:
        """See :meth:`Runner.top_k`; on CUDA a batch that runs out of memory is retried in halves.

        Raises:
            GpuOutOfMemory: on CUDA, when even one input at a time does not fit.
        """
        if self._oom is not None:
            return self._oom.run(lambda chunk: self._top_k(chunk, k), items)
        return self._top_k(items, k)


class OrtRunner:
    """One ONNX Runtime session for one exported graph, with full graph optimisation and spinning
    intra-op threads, one per usable CPU (:data:`ALLOW_SPINNING`, :func:`intra_op_threads`)."""

    kind: RunnerKind = "onnxruntime"
    #: ``fp32``, or ``int8`` for a quantized graph (set by :mod:`.precision`).
    precision: str = "fp32"

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu") -> None:
        """Open the graph at ``path`` on ``device``.

        Raises:
            UsageError: ``device`` is neither ``cpu`` nor ``cuda``, or this ONNX Runtime lacks CUDA.
            Exception: whatever ONNX Runtime raises for a missing or damaged graph file.
        """
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = intra_op_threads()
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # errors only; ORT's warnings are about its own internals
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if ALLOW_SPINNING else "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError("this ONNX Runtime has no CUDA support; use --backend torch for the GPU")
            providers.insert(0, "CUDAExecutionProvider")
        elif device != "cpu":
            raise UsageError(f"the ONNX Runtime backend runs on cpu or cuda, not {device}; use --backend torch")
        self.session = ort.InferenceSession(str(path), so, providers=providers)
        self.input_name: str = self.session.get_inputs()[0].name
        self.device = device
        self.path = Path(path)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """The graph's output for a (N, 3, H, W) batch: (N, classes) float32 logits."""
        out: np.ndarray = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        return out

    def top_k(self, items: Sequence[Item], k: int) -> TopK:
        """See :meth:`Runner.top_k`; on the CPU the items go through in runs of at most :data:`CPU_MAX_BATCH`."""
        return _top_k_in_steps(self.logits, items, k, CPU_MAX_BATCH if self.device == "cpu" else len(items))


class OvRunner:
    """OpenVINO's CPU plugin on one ONNX graph (latency hint, one thread per usable CPU).

    Used for the reduced-precision modes (:mod:`.precision`): an int8 QDQ graph (OpenVINO runs it as
    integer convolutions), or an fp32 graph with ``INFERENCE_PRECISION_HINT=bf16``.
    """

    kind: RunnerKind = "openvino"
    device = "cpu"
    #: ``int8`` or ``bf16`` (set by :mod:`.precision`).
    precision: str = "fp32"

    def __init__(self, path: str | os.PathLike[str], precision_hint: str | None = None) -> None:
        """Compile the graph at ``path`` for the CPU.

        Args:
            precision_hint: OpenVINO's inference precision (``f32``, ``bf16``); None keeps the
                plugin's default (for an int8 graph: integer kernels where quantized, f32 elsewhere).

        Raises:
            Exception: whatever OpenVINO raises for a missing or damaged graph file.
        """
        import openvino as ov  # type: ignore[import-untyped]  # no type information shipped

        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": intra_op_threads()}
        if precision_hint is not None:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        self._request = self.compiled.create_infer_request()
        self.path = Path(path)
        self.precision_hint = precision_hint

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """The graph's output for a (N, 3, H, W) batch: (N, classes) float32 logits (a copy)."""
        out = self._request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(out[0], dtype=np.float32, copy=True)

    def top_k(self, items: Sequence[Item], k: int) -> TopK:
        """See :meth:`Runner.top_k`; the items go through in runs of at most :data:`CPU_MAX_BATCH`."""
        return _top_k_in_steps(self.logits, items, k, CPU_MAX_BATCH)


def _top_k_in_steps(logits: Callable[[np.ndarray], np.ndarray], items: Sequence[Item], k: int, step: int) -> TopK:
    out: TopK = []
    for start in range(0, len(items), max(1, step)):
        chunk = items[start:start + step]
        probs = softmax(logits(np.stack([_as_numpy(x) for x in chunk])))
        idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(probs, idx, axis=1)
        out.extend(zip(top.tolist(), idx.tolist()))
    return out


def _as_numpy(x: Item) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()
