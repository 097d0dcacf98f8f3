"""Human-readable names for the device a model runs on (for the app's device indicator)."""

from __future__ import annotations

import os


def device_label(device: str) -> str:
    """``"CUDA: NVIDIA H100 80GB HBM3"``, ``"Apple GPU (MPS)"`` or ``"CPU (8 threads)"``."""
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        return f"CUDA: {torch.cuda.get_device_name(index)}"
    if device == "mps":
        return "Apple GPU (MPS)"
    threads = torch.get_num_threads() or os.cpu_count() or 1
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"
