"""The "Why?" toggle: a Grad-CAM heatmap of the top-1 class (or a clicked bar) over the image.

The heatmap is computed in the inference worker (:meth:`.worker.InferenceClient.explain`, the only
model owner; torch stays there) and arrives as a plain float array in 0..1; this module colours it
(:func:`squeezelens.core.heatmap.colorize`, numpy only) into a translucent layer that the image view
draws over the picture. The opacity slider re-blends at once, without asking the worker again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolBar, QWidget

from squeezelens.core.heatmap import colorize

if TYPE_CHECKING:
    from .main_window import MainWindow

#: Longest side of the heatmap the worker sends (the overlay is scaled to the view anyway).
HEAT_MAX_SIDE = 1024


@dataclass(frozen=True)
class HeatResult:
    """A heatmap as the worker sends it: plain data, no torch objects cross threads."""

    heat: np.ndarray  # (H, W) float32 in 0..1, the upright image's aspect ratio
    class_index: int
    label: str
    prob: float


def compute_heat(clf: Any, source: Any, class_index: int | None) -> HeatResult:
    """In the worker thread: the heatmap of ``class_index`` (None: top-1) on ``source`` (path or PIL image)."""
    from PIL import Image

    from squeezelens.core.heatmap import explain

    h = explain(clf, source, class_index)
    heat = h.map
    if max(heat.shape) > HEAT_MAX_SIDE:
        s = HEAT_MAX_SIDE / max(heat.shape)
        size = (max(1, round(heat.shape[1] * s)), max(1, round(heat.shape[0] * s)))
        heat = np.asarray(Image.fromarray(heat, "F").resize(size, Image.Resampling.BILINEAR), np.float32)
    return HeatResult(np.ascontiguousarray(heat), h.class_index, h.label, h.prob)


def heat_layer(heat: np.ndarray, opacity: float) -> QImage:
    """A translucent RGBA layer of ``heat``: the ramp's colour, alpha ``opacity * heat``."""
    rgb = colorize(heat)
    alpha = np.clip(heat * opacity * 255, 0, 255).astype(np.uint8)[..., None]
    rgba = np.ascontiguousarray(np.concatenate([rgb, alpha], axis=2))
    h, w = heat.shape
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()  # .copy(): owns its pixels


class ExplainController(QObject):
    """The "Why?" action (Ctrl+Y), its opacity slider, and the heatmap requests of the current image."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.action = QAction("&Why?", window, checkable=True)
        self.action.setShortcut(QKeySequence("Ctrl+Y"))
        self.action.setStatusTip("Show where the model sees the class: a heatmap over the image (click a bar "
                                 "for another class)")
        self.action.setChecked(window.settings.explain_on)
        self.action.toggled.connect(self._on_toggled)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(window.settings.explain_opacity)
        self.slider.setFixedWidth(110)
        self.slider.setToolTip("Heatmap opacity")
        self.slider.setAccessibleName("Heatmap opacity")
        self.slider.valueChanged.connect(self._on_opacity)
        self.caption = QLabel()
        self.caption.setObjectName("explainCaption")
        self.box = QWidget()
        row = QHBoxLayout(self.box)
        row.setContentsMargins(6, 0, 0, 0)
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.slider)
        row.addWidget(self.caption)
        self.box.setVisible(self.action.isChecked())
        self._req = 0
        self._heat: HeatResult | None = None
        self._chosen: int | None = None  # a clicked bar's class; None: the top-1
        tools = window.findChild(QToolBar, "mainToolbar")
        if tools is not None:
            tools.addSeparator()
            tools.addAction(self.action)
            tools.addWidget(self.box)
        for menu_action in window.menuBar().actions():
            if menu_action.text() == "&View" and menu_action.menu() is not None:
                menu_action.menu().addAction(self.action)
        window.client.explainReady.connect(self._on_ready)
        window.results.bars.rowClicked.connect(self._on_bar)

    # -- hooks from the window ------------------------------------------------------------------
    def entry_changed(self) -> None:
        """Another image is shown: its old heatmap goes; a new one comes once it has a prediction."""
        self._heat = None
        self._chosen = None
        self._req = 0
        self.window.view.set_overlay(None)
        self.caption.clear()
        self.prediction_arrived()

    def prediction_arrived(self) -> None:
        """The current image's prediction is there: ask for its heatmap if "Why?" is on."""
        if self.action.isChecked():
            self.request()

    # -- work -----------------------------------------------------------------------------------
    def request(self) -> None:
        entry = self.window.current
        pred = getattr(entry, "prediction", None)
        if entry is None or pred is None or not pred.ok or not pred.top or getattr(entry, "pixels_dropped", False):
            return
        index = self._chosen if self._chosen is not None else pred.top[0].index
        self._req = self.window.client.explain(entry.source, index)
        self.caption.setText("working out why...")

    def _on_ready(self, req: int, result: Any) -> None:
        if req != self._req or not self.action.isChecked():
            return  # superseded, or switched off meanwhile
        if isinstance(result, str):
            self.caption.setText("no heatmap")
            self.window.show_notice(f"No heatmap: {result}")
            return
        self._heat = result
        self.caption.setText(f"why: {result.label}")
        self._render()

    def _render(self) -> None:
        if self._heat is None or not self.action.isChecked():
            self.window.view.set_overlay(None)
            return
        self.window.view.set_overlay(heat_layer(self._heat.heat, self.slider.value() / 100))

    def _on_toggled(self, on: bool) -> None:
        self.window.settings.explain_on = on
        self.box.setVisible(on)
        if on:
            if self._heat is None:
                self.request()
            self._render()
        else:
            self.window.view.set_overlay(None)
            self.caption.clear()

    def _on_opacity(self, value: int) -> None:
        self.window.settings.explain_opacity = value
        self._render()

    def _on_bar(self, row: int) -> None:
        pred = getattr(self.window.current, "prediction", None)
        if pred is None or not pred.ok or not 0 <= row < len(pred.top):
            return
        self._chosen = pred.top[row].index
        self._heat = None
        if not self.action.isChecked():
            self.action.setChecked(True)  # asks for it
        else:
            self.request()
