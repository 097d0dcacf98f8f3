"""SqueezeLens: a desktop image classifier on timm's SE-ResNeXt family.

The public Python API is what ``__all__`` names; everything else (``squeezelens.core``,
``squeezelens.gui``, ``squeezelens.cli``) may change between releases. torch is imported on first
use, not by ``import squeezelens``, so the import stays cheap for the desktop app's start-up.

Example:
    >>> from squeezelens import Classifier
    >>> clf = Classifier.load("seresnext26d_32x4d")
    >>> [(t.label, t.prob) for t in clf.classify(["dog.jpg"])[0].top]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.errors import (
    Cancelled,
    DatasetError,
    DownloadCancelled,
    ExportError,
    FinetuneCancelled,
    GpuOutOfMemory,
    ImageLoadError,
    ModelNotFoundError,
    OutputError,
    ScanCancelled,
    SqueezeLensError,
    UsageError,
    WeightsError,
)
from .core.options import Backend, Device

__version__ = "0.1.0"

#: Public name -> the core module that defines it (imported on first access).
_LAZY = {
    "Classifier": "engine",
    "Prediction": "engine",
    "TopClass": "engine",
    "list_variants": "catalogue",
    "ModelInfo": "catalogue",
    "PretrainedTag": "catalogue",
    "finetune": "finetune",
    "FinetuneConfig": "finetune",
    "FinetuneResult": "finetune",
}

__all__ = [
    "Backend", "Cancelled", "Classifier", "DatasetError", "Device", "DownloadCancelled", "ExportError",
    "FinetuneCancelled", "FinetuneConfig", "FinetuneResult", "GpuOutOfMemory", "ImageLoadError", "ModelInfo",
    "ModelNotFoundError", "OutputError", "Prediction", "PretrainedTag", "ScanCancelled", "SqueezeLensError",
    "TopClass", "UsageError", "WeightsError", "__version__", "finetune", "list_variants",
]

if TYPE_CHECKING:
    from .core.catalogue import ModelInfo, PretrainedTag, list_variants
    from .core.engine import Classifier, Prediction, TopClass
    from .core.finetune import FinetuneConfig, FinetuneResult, finetune


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'squeezelens' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".core.{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
