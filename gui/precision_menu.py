"""Model > Precision: the CPU inference precision (``auto``/``fp32``/``bf16``/``int8``, see
``squeezelens.core.precision``), persisted in :class:`.settings.AppSettings` and applied by
loading the model again (the worker's classifier serves the single image, batches and the camera)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from squeezelens.core.options import PRECISIONS

if TYPE_CHECKING:
    from .main_window import MainWindow

#: The menu's names for core's precisions.
PRECISION_NAMES: dict[str, str] = {
    "auto": "Auto (fastest verified)", "fp32": "FP32 (exact)", "bf16": "BF16", "int8": "INT8",
}


def add_precision_menu(window: MainWindow, model_menu: QMenu) -> QActionGroup:
    """Add Model > Precision to ``model_menu``: one checkable action per precision, the saved one checked.

    Choosing one saves it and loads the current model again with it.
    """
    menu = model_menu.addMenu("&Precision")
    group = QActionGroup(window)
    for value in PRECISIONS:
        a = QAction(PRECISION_NAMES.get(value, value), window, checkable=True)
        a.setData(value)
        a.setChecked(value == window.settings.precision)
        a.setToolTip("int8/bf16 run once they agree with fp32 on real photos; refused modes fall back to fp32")
        a.triggered.connect(lambda _checked=False, v=value: choose_precision(window, v))
        group.addAction(a)
        menu.addAction(a)
    return group


def choose_precision(window: MainWindow, precision: str) -> None:
    """Save ``precision`` and reload the current model with it (nothing happens when it is unchanged)."""
    if precision == window.settings.precision:
        return
    window.settings.precision = precision
    window.load_model(window._model_name or None)
