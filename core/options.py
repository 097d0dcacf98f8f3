"""The choices a user has for running a model, as literal types and tuples (cheap to import).

The CLI's ``choices``, the API's type hints and the GUI's menus all read these, so a new device or
backend is added in one place.
"""

from __future__ import annotations

from typing import Literal, get_args

#: Where the model runs: ``auto`` is CUDA, then Apple MPS, then the CPU.
Device = Literal["auto", "cpu", "cuda", "mps"]
#: What runs it: ``auto`` is ONNX Runtime on a CPU (when installed) and torch on a GPU.
Backend = Literal["auto", "torch", "onnxruntime"]
#: When a model's ONNX graph is not cached yet: serve with torch while exporting, or export first.
ExportMode = Literal["background", "wait"]
#: How finetuning trains: ``quick`` fits a new head on frozen, cached features; ``deep`` also trains
#: the last stage.
FinetuneMode = Literal["quick", "deep"]
#: Numeric precision of CPU inference: ``auto`` is the fastest verified mode this CPU runs natively
#: (see :mod:`.precision`), ``fp32`` is exact.
Precision = Literal["auto", "fp32", "bf16", "int8"]

DEVICES: tuple[str, ...] = get_args(Device)
BACKENDS: tuple[str, ...] = get_args(Backend)
EXPORT_MODES: tuple[str, ...] = get_args(ExportMode)
FINETUNE_MODES: tuple[FinetuneMode, ...] = get_args(FinetuneMode)
PRECISIONS: tuple[str, ...] = get_args(Precision)
