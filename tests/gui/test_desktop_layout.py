"""Issue 14's layout checks: nothing the results panel shows is ever clipped, at any window size."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtWidgets import QVBoxLayout, QWidget


def _prediction(n: int) -> Any:
    from squeezelens.core.predictions import TopClass

    top = [TopClass(i, f"class number {i} with a longish name", 1.0 / (i + 2)) for i in range(n)]
    return SimpleNamespace(ok=True, top=top, model="seresnext26d_32x4d", infer_ms=12.0, load_ms=3.0,
                           untrained=True, error_reason=None, error=None)


def _reachable(panel: Any, w: QWidget) -> bool:
    """``w`` is shown whole, or can be scrolled to whole: it lies inside the area its parent offers."""
    parent = w.parentWidget()
    g = w.geometry()
    return g.top() >= 0 and g.bottom() < parent.height() and g.height() >= w.minimumSizeHint().height()


@pytest.mark.parametrize("size", [(260, 330), (300, 420), (420, 240)])
def test_results_panel_never_clips_top10_and_the_untrained_banner(qtbot: Any, size: tuple[int, int]) -> None:
    """The panel sizes the main window gives it at small window sizes (of the order of 640x400 and 800x500): Top 10
    with the untrained warning. Before issue 14 the bars ran past the panel's bottom edge (9 of 10 shown,
    3 of 5 at 800x500) and the banner was cut mid-sentence; now the content scrolls."""
    from squeezelens.gui.results_panel import ResultsPanel

    host = QWidget()
    qtbot.addWidget(host)
    panel = ResultsPanel()
    QVBoxLayout(host).addWidget(panel)
    host.resize(*size)
    host.show()
    panel.set_untrained("seresnext26d_32x4d")
    panel.show_prediction("a photo with a long file name.jpg", _prediction(10))
    qtbot.waitExposed(host)
    qtbot.wait(20)  # layouts settle
    for w in (panel.title, panel.banner, panel.bars, panel.timing):
        assert w.isVisible()
        assert _reachable(panel, w), f"{w.objectName() or type(w).__name__} is clipped at {size}"
    assert panel.banner.height() >= panel.banner.heightForWidth(panel.banner.width())
    assert panel.bars.height() >= panel.bars.sizeHint().height()  # all 10 rows
    sb = panel.scroll.verticalScrollBar()
    sb.setValue(sb.maximum())  # the last bar can be scrolled into view
    qtbot.wait(10)
    bottom = panel.bars.mapTo(panel, panel.bars.rect().bottomLeft()).y()
    assert bottom <= panel.height()
