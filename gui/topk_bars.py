"""Horizontal probability bars, one per class, the top one highlighted; drawn from the palette."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from .wording import format_prob

ROW_GAP = 6


class TopKBars(QWidget):
    """``set_rows([(label, probability), ...])``; probability in [0, 1]."""

    rowClicked = Signal(int)  # the row's position, 0 = top

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(240)

    @property
    def rows(self) -> list[tuple[str, float]]:
        return list(self._rows)

    def set_rows(self, rows: list[tuple[str, float]]) -> None:
        self._rows = [(label, _clamp(p)) for label, p in rows]
        self.setAccessibleDescription("; ".join(f"{label}: {p * 100:.1f} percent" for label, p in self._rows))
        self.updateGeometry()
        self.update()

    def mousePressEvent(self, event: Any) -> None:
        row = int(event.position().y()) // (self._row_height() + ROW_GAP)
        if 0 <= row < len(self._rows):
            self.rowClicked.emit(row)

    def _row_height(self) -> int:
        return QFontMetrics(self.font()).height() * 2 + 6

    def sizeHint(self) -> QSize:
        n = max(len(self._rows), 1)
        return QSize(320, n * self._row_height() + (n - 1) * ROW_GAP)

    def minimumSizeHint(self) -> QSize:
        return QSize(240, self.sizeHint().height())

    def paintEvent(self, event: object) -> None:  # noqa: ARG002
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fm = QFontMetrics(self.font())
        h = self._row_height()
        bar_h = h - fm.height() - 4
        width = self.width()
        for i, (label, prob) in enumerate(self._rows):
            top = i * (h + ROW_GAP)
            pct = format_prob(prob)
            bold = i == 0
            font = self.font()
            font.setBold(bold)
            p.setFont(font)
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            pct_w = QFontMetrics(font).horizontalAdvance(pct)
            name = QFontMetrics(font).elidedText(label, Qt.TextElideMode.ElideRight, width - pct_w - 12)
            p.drawText(QRectF(0, top, width - pct_w - 8, fm.height()), Qt.AlignmentFlag.AlignLeft, name)
            p.drawText(QRectF(width - pct_w, top, pct_w, fm.height()), Qt.AlignmentFlag.AlignRight, pct)
            track = QRectF(0, top + fm.height() + 3, width, bar_h)
            base = QColor(pal.color(QPalette.ColorRole.Mid))
            base.setAlpha(70)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(base)
            p.drawRoundedRect(track, bar_h / 2, bar_h / 2)
            if prob > 0:
                fill = QColor(pal.color(QPalette.ColorRole.Highlight))
                if not bold:
                    fill.setAlpha(130)
                # a thin sliver stays visible for tiny probabilities; the track's rounded ends clip it
                path = QPainterPath()
                path.addRoundedRect(track, bar_h / 2, bar_h / 2)
                p.save()
                p.setClipPath(path)
                p.fillRect(QRectF(track.left(), track.top(), max(2.0, track.width() * prob), bar_h), fill)
                p.restore()
        p.end()


def _clamp(p: float) -> float:
    """A probability in [0, 1]; NaN (a broken model) counts as 0, not as a full bar."""
    p = float(p)
    return max(0.0, min(1.0, p)) if p == p else 0.0
