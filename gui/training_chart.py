"""A training curve (QtCharts): train and validation series over epochs, one point per epoch.

The chart takes its colours from the widget's palette (light and dark), keeps half an epoch of room
after the last point (and above 100 %) so no marker is clipped, and draws the validation line thin and
dashed on top of a wider train line, so equal curves still show both (the train line's edges and the
gaps between the dashes stay blue).
"""

from __future__ import annotations

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QValueAxis
from PySide6.QtCore import QEvent, QMargins, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QWidget

TRAIN_COLOUR = QColor(52, 120, 198)
VAL_COLOUR = QColor(222, 120, 32)
TRAIN_WIDTH = 4.0  # the train line is drawn first, wider than the dashed validation line drawn over it
VAL_WIDTH = 2.0
X_ROOM = 0.5  # epochs of room after the last point, so its marker is never cut
PERCENT_MAX = 104.0  # room above 100 % for the same reason


class TrainingChart(QChartView):
    """Two line series (``train``, ``val``) against the epoch; ``percent`` shows 0-100 % on the y axis."""

    def __init__(self, title: str, percent: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.percent = percent
        chart = QChart()
        chart.setTitle(title)
        chart.setMargins(QMargins(4, 4, 4, 4))
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.setBackgroundRoundness(4)
        self.train = self._series("train", TRAIN_COLOUR, TRAIN_WIDTH, Qt.PenStyle.SolidLine)
        self.val = self._series("validation", VAL_COLOUR, VAL_WIDTH, Qt.PenStyle.DashLine)
        self.x_axis = QValueAxis()
        self.x_axis.setLabelFormat("%d")
        self.x_axis.setTitleText("epoch")
        self.y_axis = QValueAxis()
        self.y_axis.setLabelFormat("%.0f %%" if percent else "%.2f")
        for s in (self.train, self.val):  # val added last, drawn last: thin and dashed over the wide train line
            chart.addSeries(s)
        chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.y_axis, Qt.AlignmentFlag.AlignLeft)
        for s in (self.train, self.val):
            s.attachAxis(self.x_axis)
            s.attachAxis(self.y_axis)
        self.setChart(chart)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumSize(260, 200)
        self.apply_palette()
        self.reset()

    @staticmethod
    def _series(name: str, colour: QColor, width: float, style: Qt.PenStyle) -> QLineSeries:
        s = QLineSeries()
        s.setName(name)
        pen = QPen(colour, width)
        pen.setStyle(style)
        s.setPen(pen)
        s.setPointsVisible(True)
        s.setMarkerSize(width + 1)  # painted about 2x this with the pen round it: 9 px dots on the 4 px train line
        return s

    def apply_palette(self) -> None:
        """Background, title, legend, axis labels and grid from the widget's palette (dark follows dark)."""
        pal = self.palette()
        chart = self.chart()
        text = pal.color(QPalette.ColorRole.WindowText)
        chart.setBackgroundBrush(QBrush(pal.color(QPalette.ColorRole.Base)))
        chart.setPlotAreaBackgroundVisible(False)
        chart.setTitleBrush(QBrush(text))
        chart.legend().setLabelColor(text)
        grid = QColor(text)
        grid.setAlpha(50)
        for axis in (self.x_axis, self.y_axis):
            axis.setLabelsBrush(QBrush(text))
            axis.setTitleBrush(QBrush(text))
            axis.setLinePen(QPen(pal.color(QPalette.ColorRole.Mid)))
            axis.setGridLineColor(grid)
        self.setBackgroundBrush(QBrush(pal.color(QPalette.ColorRole.Window)))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_palette()

    def reset(self, epochs: int = 1) -> None:
        """No points; the x axis spans ``epochs`` (it grows if more arrive)."""
        self.train.clear()
        self.val.clear()
        self._y_max = 100.0 if self.percent else 1.0
        self._set_x_max(epochs)
        if self.percent:  # ticks at 0, 20, ... 100 with room above 100 % for a marker
            self.y_axis.setRange(0, PERCENT_MAX)
            self.y_axis.setTickType(QValueAxis.TickType.TicksDynamic)
            self.y_axis.setTickAnchor(0)
            self.y_axis.setTickInterval(20)
        else:
            self.y_axis.setRange(0, self._y_max)

    def add_point(self, epoch: int, train: float, val: float) -> None:
        """One epoch's values (accuracies as fractions: shown as percent)."""
        scale = 100.0 if self.percent else 1.0
        self.train.append(epoch, train * scale)
        self.val.append(epoch, val * scale)
        if epoch + X_ROOM > self.x_axis.max():
            self._set_x_max(epoch)
        if not self.percent:
            self._y_max = max(self._y_max, train * 1.05, val * 1.05)
            self.y_axis.setRange(0, self._y_max)
            self.y_axis.applyNiceNumbers()  # round ticks (0.25, 0.5, ...) rather than 0.26, 0.53

    def _set_x_max(self, epochs: int) -> None:
        """x from 0 to ``epochs`` with whole-epoch ticks at a round interval (1, 2, 5, 10, 20, ...)."""
        epochs = max(1, epochs)
        step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if epochs / s <= 10)
        self.x_axis.setRange(0, epochs + X_ROOM)  # the last point's marker stays whole
        self.x_axis.setTickType(QValueAxis.TickType.TicksDynamic)
        self.x_axis.setTickAnchor(0)
        self.x_axis.setTickInterval(step)

    def points(self) -> list[tuple[float, float, float]]:
        """(epoch, train, val) per point, as plotted."""
        return [(a.x(), a.y(), b.y()) for a, b in zip(self.train.points(), self.val.points())]
