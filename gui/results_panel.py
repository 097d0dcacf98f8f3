"""The right-hand panel: what was classified, the top-k bars, timing, and the untrained warning."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from .elided_label import ElidedLabel
from .topk_bars import TopKBars
from .unknown_view import VERDICT_STYLE, verdict_text

UNTRAINED_TEXT = (
    "<b>Untrained model</b> - no weights were found for {name}, so these predictions come from a "
    "random network and mean nothing."
)
BANNER_STYLE = "background:#f6c343; color:#1d1d1d; border-radius:6px; padding:8px;"


class ResultsPanel(QWidget):
    """Shows one prediction, a state line ("Classifying..."), or an error for the current image.

    Its content scrolls (vertically) when the window is too small for it: Top 10 with the untrained
    warning at 640x400 shows every bar and the whole warning, never a clipped one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = ElidedLabel()  # a long file name: elided in the middle, whole in its tooltip
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setObjectName("untrainedBanner")
        self.banner.hide()
        self.bars = TopKBars()
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.verdict = QLabel()  # "Unknown - none of your classes (closest: X, 41%)"
        self.verdict.setObjectName("unknownVerdict")
        self.verdict.setWordWrap(True)
        self.verdict.setStyleSheet(VERDICT_STYLE)
        self.verdict.hide()
        self.timing = QLabel()
        self.timing.setWordWrap(True)
        # full window-text colour: the disabled (muted) colour measured about 1.6:1 against the window (issue 14)
        self.content = QWidget()
        self.content.setObjectName("resultsContent")
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(10)
        for w in (self.title, self.banner, self.verdict, self.state, self.bars, self.timing):
            layout.addWidget(w)
        layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.content)
        self.scroll.setWidgetResizable(True)  # the content follows the width; its height scrolls
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)  # only below the bars' minimum
        self.scroll.viewport().setAutoFillBackground(False)
        self.content.setAutoFillBackground(False)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.show_message("Drop an image or a folder, or press Ctrl+O to open one.")

    def set_untrained(self, model_name: str | None) -> None:
        """Show (name given) or hide (None) the untrained warning."""
        if model_name:
            self.banner.setText(UNTRAINED_TEXT.format(name=model_name))
        self.banner.setVisible(bool(model_name))

    def show_message(self, text: str, title: str = "") -> None:
        self.title.setText(title)
        self.title.setVisible(bool(title))
        self.state.setText(text)
        self.state.show()
        self.bars.set_rows([])
        self.bars.hide()
        self.verdict.hide()
        self.timing.clear()

    def show_prediction(self, title: str, pred: Any, device_label: str = "",
                        rows: list[tuple[str, float]] | None = None) -> None:
        """A core ``Prediction``: its bars (or ``rows`` instead, e.g. live mode's smoothed ones), or its error."""
        self.title.setText(title)
        self.title.show()
        verdict = verdict_text(pred)
        self.verdict.setText(verdict or "")
        self.verdict.setVisible(verdict is not None)
        if not pred.ok:
            reason = pred.error_reason or pred.error or "unknown error"
            self.state.setText(f"Could not classify this image: {reason}")
            self.state.show()
            self.bars.hide()
            self.timing.clear()
            return
        self.state.hide()
        self.bars.set_rows(rows if rows is not None else [(t.label, t.prob) for t in pred.top])
        self.bars.show()
        where = f" on {device_label}" if device_label else ""
        self.timing.setText(
            f"{pred.model}: model {pred.infer_ms:.0f} ms{where}, decode {pred.load_ms:.0f} ms"
            + ("  -  untrained" if pred.untrained else "")
        )
