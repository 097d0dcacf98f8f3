"""Human-readable names for the device a model runs on (for the app's device indicator)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def device_label(device: str, backend: str = "torch") -> str:
    """``"CUDA: NVIDIA H100 80GB HBM3"``, ``"Apple GPU (MPS)"`` or ``"CPU (8 threads)"``.

    Only a CUDA device or the torch backend on CPU needs torch to answer: an ONNX Runtime model loaded
    from a cached graph runs without torch, and naming its device must not import it (seconds at start).
    """
    if device.startswith("cuda"):
        import torch

        return f"CUDA: {torch.cuda.get_device_name(torch.device(device).index or 0)}"
    if device == "mps":
        return "Apple GPU (MPS)"
    if backend in ("onnxruntime", "openvino"):  # the CPU graph path: no torch
        from .runners import intra_op_threads

        threads = intra_op_threads()
    else:
        import torch

        threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


#: Why a device cannot be used here, in words for a menu (no command-line advice).
NO_CUDA = "no CUDA GPU found on this computer (or PyTorch was built without CUDA)"
NO_MPS = "Apple GPU (Metal) is not available on this computer"


def device_availability() -> dict[str, str | None]:
    """For each of core's devices (``options.DEVICES``): None when usable here, else why not.

    ``auto`` and ``cpu`` are always usable. Imports torch (call it where torch may be imported: the
    GUI's model-stack thread). The checks are torch's own: ``torch.cuda.is_available()`` and
    ``torch.backends.mps.is_available()``, as :func:`backend_choice.pick_device` uses.
    """
    import torch

    from .options import DEVICES

    mps = getattr(torch.backends, "mps", None)
    reasons: dict[str, str | None] = {d: None for d in DEVICES}
    if "cuda" in reasons and not torch.cuda.is_available():
        reasons["cuda"] = NO_CUDA
    if "mps" in reasons and not (mps and mps.is_available()):
        reasons["mps"] = NO_MPS
    return reasons
