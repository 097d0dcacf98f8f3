"""The torch backend on an NVIDIA GPU: channels_last, autocast, cuDNN autotuning, warm-up, and
out-of-memory handling (retry the batch in smaller pieces, then give up on the GPU).

Also a torch-free probe for an NVIDIA driver with a device, so a cold start on a machine without
one can skip importing torch altogether.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

from .errors import GpuOutOfMemory

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

B = TypeVar("B")  # a batch
R = TypeVar("R")  # a batch's result


def cuda_driver_device_count() -> int:
    """NVIDIA GPUs the driver reports, read through the driver library itself (no torch import).

    0 when there is no driver library, it fails to initialise, or it sees no device.
    """
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if lib.cuInit(0) != 0:
                return 0
            count = ctypes.c_int(0)
            return count.value if lib.cuDeviceGetCount(ctypes.byref(count)) == 0 else 0
        except (AttributeError, OSError):
            return 0
    return 0


def accelerator_may_exist() -> bool:
    """True when ``device="auto"`` might pick a GPU: an NVIDIA device, or an Apple-silicon Mac (MPS)."""
    if sys.platform == "darwin":
        import platform

        return platform.machine() == "arm64"
    return cuda_driver_device_count() > 0


def autocast_dtype(torch_module: ModuleType | None = None) -> torch.dtype:
    """bfloat16 where the GPU computes it natively (Ampere and later), else float16.

    Inference (:class:`~squeezelens.core.runners.TorchRunner`) and deep finetuning both ask this, so
    they never differ. ``torch.cuda.is_bf16_supported()`` alone would also count emulated bf16.

    Args:
        torch_module: the torch module to ask (default: ``torch``; tests pass a stand-in).
    """
    torch = torch_module if torch_module is not None else importlib.import_module("torch")
    try:
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
    except TypeError:  # older torch without the keyword
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
    return torch.float16


def prepare_model(model: torch.nn.Module, device: str) -> torch.nn.Module:
    """Move ``model`` to the GPU in channels_last layout and let cuDNN pick the fastest kernels."""
    import torch

    torch.backends.cudnn.benchmark = True  # input shapes repeat (one size per model), so tuning pays
    return model.to(memory_format=torch.channels_last).to(torch.device(device)).eval()  # .to keeps the layout


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA out-of-memory error (torch's own type, or the plain RuntimeError older versions raise)."""
    try:
        import torch

        if isinstance(error, torch.cuda.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


class OomRetry:
    """Run a batch; on out-of-memory, run it again in halves, down to one input at a time.

    The largest size that worked is remembered, so later batches start there instead of failing
    again. When a single input does not fit, :class:`GpuOutOfMemory` is raised and the caller
    decides (the engine moves to the CPU).
    """

    def __init__(
        self,
        is_oom: Callable[[BaseException], bool] = is_out_of_memory,
        free_memory: Callable[[], None] | None = None,
    ) -> None:
        self.is_oom = is_oom
        self.free_memory = free_memory or _empty_cuda_cache
        self.limit: int | None = None  # largest batch known to fit, once one has failed

    def run(self, forward: Callable[[Sequence[B]], list[R]], items: Sequence[B]) -> list[R]:
        """``forward(items)`` with the retry policy; results in the order of ``items``."""
        out: list[R] = []
        step = len(items) if self.limit is None else max(1, min(self.limit, len(items)))
        start = 0
        while start < len(items):
            chunk = items[start:start + step]
            try:
                out.extend(forward(chunk))
            except Exception as e:
                if not self.is_oom(e):
                    raise
                self.free_memory()
                if len(chunk) == 1:
                    raise GpuOutOfMemory("the GPU ran out of memory even for a single image") from e
                step = max(1, len(chunk) // 2)
                self.limit = step
                log.info("GPU out of memory at batch %d; retrying with %d", len(chunk), step)
                continue
            start += len(chunk)
        return out


def _empty_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # freeing memory is best effort
        pass


def warm_up(forward: Callable[[torch.Tensor], object], input_size: Sequence[int], device: str,
            batch_sizes: Sequence[int]) -> None:
    """Run a few forward passes so cuDNN autotuning and lazy CUDA init happen at load, not on the first photo."""
    import torch

    for n in batch_sizes:
        x = torch.zeros((n, *input_size), device=device).contiguous(memory_format=torch.channels_last)
        try:
            forward(x)
        except Exception as e:  # a warm-up that does not fit is not fatal: classify retries smaller
            if not is_out_of_memory(e):
                raise
            _empty_cuda_cache()
            log.info("warm-up at batch %d did not fit in GPU memory", n)
            break
    torch.cuda.synchronize(device)
