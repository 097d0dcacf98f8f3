"""The "unknown" verdict in the window: the threshold slider and the batch window's filter.

The verdict itself is computed in core (:mod:`squeezelens.core.unknown`, applied by the engine);
its wording is :func:`squeezelens.core.report.unknown_verdict`, shared with the CLI's table.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from squeezelens.core.report import unknown_verdict

#: Style of the verdict line in the results panel (amber, readable in light and dark palettes).
VERDICT_STYLE = "background:#ffe1a8; color:#4a2c00; border-radius:6px; padding:8px; font-weight:bold;"
#: The batch window's filter choices: (label, mode).
FILTERS = (("All results", "all"), ("Unknown only", "unknown"), ("Known only", "known"))


def verdict_text(pred: Any) -> str | None:
    """``Unknown — none of your classes (closest: X, 41%)``, or None when ``pred`` is not flagged."""
    return unknown_verdict(pred) if getattr(pred, "ok", False) else None


class UnknownThresholdControl(QWidget):
    """A check box and a 0..100% slider: below the threshold a prediction is "Unknown".

    ``settingChanged`` carries what :meth:`Classifier.set_unknown_threshold` takes: a float in 0..1,
    or ``"off"``; "Model's value" sends None (the threshold calibrated at finetuning).
    """

    settingChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.enabled_box = QCheckBox("Say \u201cUnknown\u201d below")
        self.enabled_box.setToolTip("Call an image 'Unknown - none of your classes' when the top class's "
                                    "probability is below this threshold")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setPageStep(5)
        self.slider.setAccessibleName("Unknown threshold")
        self.value_label = QLabel("off")
        self.value_label.setMinimumWidth(36)
        self.reset_button = QPushButton("Model's value")
        self.reset_button.setToolTip("The threshold calibrated on the validation images when the model was finetuned")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.enabled_box, self.slider, self.value_label, self.reset_button):
            layout.addWidget(w)
        layout.setStretch(1, 1)
        self._calibrated: float | None = None
        self.enabled_box.toggled.connect(self._on_toggled)
        self.slider.sliderReleased.connect(self._emit_value)
        self.slider.valueChanged.connect(self._on_value)
        self.reset_button.clicked.connect(self._reset)
        self.set_model(None, None)

    def set_model(self, calibrated: float | None, in_force: float | None) -> None:
        """Show a newly loaded model's state: its calibrated threshold (None: an ImageNet model), the one in force."""
        self._calibrated = calibrated
        self.reset_button.setEnabled(calibrated is not None)
        for w in (self.enabled_box, self.slider):
            w.blockSignals(True)
        self.enabled_box.setChecked(in_force is not None)
        self.slider.setEnabled(in_force is not None)
        self.slider.setValue(round((in_force if in_force is not None else calibrated or 0.5) * 100))
        for w in (self.enabled_box, self.slider):
            w.blockSignals(False)
        self._show_value()

    @property
    def setting(self) -> float | str:
        """What the control says now: ``"off"`` or the slider's value in 0..1."""
        return self.slider.value() / 100 if self.enabled_box.isChecked() else "off"

    def _show_value(self) -> None:
        self.value_label.setText(f"{self.slider.value()}%" if self.enabled_box.isChecked() else "off")

    def _on_toggled(self, on: bool) -> None:
        self.slider.setEnabled(on)
        self._show_value()
        self.settingChanged.emit(self.setting)

    def _on_value(self, _value: int) -> None:
        self._show_value()
        if not self.slider.isSliderDown():  # keyboard and wheel steps apply at once; a drag on release
            self._emit_value()

    def _emit_value(self) -> None:
        if self.enabled_box.isChecked():
            self.settingChanged.emit(self.setting)

    def _reset(self) -> None:
        if self._calibrated is not None:
            self.set_model(self._calibrated, self._calibrated)
            self.settingChanged.emit(None)


class UnknownFilterProxy(QSortFilterProxyModel):
    """A sort proxy that can also hide rows by verdict (the source model has a ``preds`` list)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.mode = "all"

    def set_mode(self, mode: str) -> None:
        """``all``, ``unknown`` (only rows flagged unknown) or ``known`` (only rows classified and not flagged)."""
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+: invalidateFilter is deprecated
            self.beginFilterChange()
            self.mode = mode
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.mode = mode
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        if self.mode == "all":
            return True
        preds = getattr(self.sourceModel(), "preds", [])
        pred = preds[row] if row < len(preds) else None
        flagged = pred is not None and pred.ok and bool(pred.unknown)
        if self.mode == "unknown":
            return flagged
        return pred is not None and pred.ok and not flagged


def filter_box(proxy: UnknownFilterProxy) -> QComboBox:
    """The batch window's "All / Unknown only / Known only" chooser, driving ``proxy``."""
    box = QComboBox()
    box.setAccessibleName("Filter results")
    for label, mode in FILTERS:
        box.addItem(label, mode)
    box.currentIndexChanged.connect(lambda _i: proxy.set_mode(box.currentData()))
    return box
