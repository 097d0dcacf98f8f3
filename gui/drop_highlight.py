"""The highlight shown over the main window while something it accepts is dragged over it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QWidget

DROP_TEXT = "Drop to classify"


class DropHighlight(QWidget):
    """A translucent frame in the palette's highlight colour over ``target`` (it follows its size);
    mouse events pass through. ``show()`` on drag-enter, ``hide()`` on drag-leave and drop."""

    def __init__(self, target: QWidget) -> None:
        super().__init__(target)
        self.setObjectName("dropHighlight")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.target = target
        target.installEventFilter(self)
        self.hide()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.target and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.target.rect())
        return False

    def showEvent(self, event: Any) -> None:  # noqa: N802
        self.setGeometry(self.target.rect())
        self.raise_()
        super().showEvent(event)

    def paintEvent(self, event: Any) -> None:  # noqa: N802, ARG002
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        fill = QColor(colour)
        fill.setAlpha(40)
        pen = QPen(colour, 3, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.setBrush(fill)
        p.drawRoundedRect(QRectF(self.rect()).adjusted(4, 4, -4, -4), 10, 10)
        font = p.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        p.setFont(font)
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, DROP_TEXT)
