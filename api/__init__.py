"""SqueezeLens: a desktop image classifier on timm's SE-ResNeXt family.

``from squeezelens import Classifier`` is the Python API. The import of torch is deferred until
the first use, so ``import squeezelens`` stays cheap for the desktop app's start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Classifier", "Prediction", "TopClass", "__version__"]

if TYPE_CHECKING:
    from .core.engine import Classifier, Prediction, TopClass


def __getattr__(name: str) -> Any:
    if name in ("Classifier", "Prediction", "TopClass"):
        from .core import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'squeezelens' has no attribute {name!r}")
