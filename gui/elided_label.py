"""A one-line label that elides a long text in the middle ("cat-on-the-gar…wall-1.jpg") to fit its
width, keeping the whole text as its tooltip (and as ``text()``): file names keep their start and their extension."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QStyleOption, QWidget


class ElidedLabel(QLabel):
    """``QLabel`` for plain one-line text that never forces its parent wider than it is."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.setToolTip(text)

    def elided_text(self) -> str:
        width = self.contentsRect().width()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, width)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance("M\u2026M"), fm.height())

    def sizeHint(self) -> QSize:  # noqa: N802
        fm = self.fontMetrics()
        m = self.contentsMargins()
        return QSize(min(fm.horizontalAdvance(self.text()), 200) + m.left() + m.right(),
                     fm.height() + m.top() + m.bottom())

    def paintEvent(self, event: Any) -> None:  # noqa: N802, ARG002
        p = QPainter(self)
        opt = QStyleOption()
        opt.initFrom(self)
        self.style().drawItemText(p, self.contentsRect(), int(self.alignment()), opt.palette,
                                  self.isEnabled(), self.elided_text(), self.foregroundRole())
