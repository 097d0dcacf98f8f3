"""Which device and which backend a model runs on, from what the user asked for.

``auto`` device: CUDA, then Apple MPS, then the CPU. ``auto`` backend: ONNX Runtime on the CPU when
it is installed, torch on a GPU. The choices themselves are in :mod:`.options`.
"""

from __future__ import annotations

from .errors import UsageError
from .options import BACKENDS, DEVICES, Backend, Device
from .runners import RunnerKind, onnxruntime_available


def pick_device(requested: Device | str = "auto") -> str:
    """The device to run on: ``auto`` means CUDA if present, then Apple MPS, then CPU. Imports torch.

    Returns:
        ``cpu``, ``cuda`` or ``mps``.

    Raises:
        UsageError: an unknown device, or one that is not present here.
    """
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


def pick_backend(requested: Backend | str = "auto", device: str = "cpu") -> RunnerKind:
    """The backend for ``device`` (as :func:`pick_device` gave it): ``auto`` is ONNX Runtime on the
    CPU when installed, else torch.

    Raises:
        UsageError: an unknown backend, or ONNX Runtime asked for where it is not installed or
            cannot run on ``device``.
    """
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
