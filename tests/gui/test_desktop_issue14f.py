"""Issue 14's last desktop gaps: the main window's Tab order as laid out (pinned by a test), and batch-table
file names elided in the middle (two long names that differ only at the end stay told apart)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolBar, QWidget


@pytest.fixture
def main_window(qtbot: Any) -> Iterator[Any]:
    """A shown main window that was never started (no model, no worker): its widgets and their focus chain."""
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import AppSettings
    from squeezelens.gui.worker import InferenceClient

    w = MainWindow(InferenceClient(), AppSettings())
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    with warnings.catch_warnings():  # deprecated, but offscreen has no window manager to activate it
        warnings.simplefilter("ignore", DeprecationWarning)
        QApplication.setActiveWindow(w)
    yield w


def _tab_walk(start: QWidget, steps: int) -> list[QWidget]:
    """The widgets that hold the focus from ``start`` on, pressing Tab ``steps`` times (as a user does)."""
    start.setFocus(Qt.FocusReason.TabFocusReason)
    seen = [QApplication.focusWidget()]
    for _ in range(steps):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    return seen


def test_tab_goes_through_the_toolbar_left_to_right_then_into_the_results(main_window: Any) -> None:
    """Tab follows the layout: the toolbar left to right, then the results panel, then the unknown threshold,
    then round again. The order already held (it is the order of creation); the earlier test checked only that
    the buttons take focus. Seen failing with the picker moved after Top N, and with the threshold's check box
    pulled in after Finetune (``QWidget.setTabOrder`` in ``finish_toolbar``)."""
    w = main_window
    tools = w.findChild(QToolBar, "mainToolbar")
    toolbar = [tools.widgetForAction(a) for a in tools.actions()]
    toolbar = [b for b in toolbar if b is not None and b.focusPolicy() & Qt.FocusPolicy.TabFocus]
    names = [getattr(b, "text", lambda: "")() for b in toolbar]
    assert names[:4] == ["Open Images", "Open Folder", "Paste", "Camera"] and w.picker in toolbar
    assert toolbar.index(w.picker) < toolbar.index(w.top_k) < len(toolbar) - 1

    seen = _tab_walk(toolbar[0], len(toolbar) + 8)
    assert seen[:len(toolbar)] == toolbar  # the toolbar as shown, left to right
    assert toolbar[0] in seen[1:], "Tab never came back round to the first toolbar button"
    content = seen[len(toolbar):seen.index(toolbar[0], 1)]  # then the content, then round again
    assert content and all(w.results.isAncestorOf(f) for f in content), [type(f).__name__ for f in content]
    assert w.unknown_control.isAncestorOf(content[-1])  # the results, then the threshold under them


@pytest.fixture
def batch(qtbot: Any) -> Iterator[Any]:
    from squeezelens.gui.batch_window import BatchWindow

    w = BatchWindow(1)
    qtbot.addWidget(w)
    w.resize(900, 400)
    w.show()
    qtbot.waitExposed(w)
    yield w


def _name_cell_text_area(table: Any, row: int) -> Any:
    """The painted right half of a File cell: where the text ends (the thumbnail is on the left)."""
    rect = table.visualRect(table.model().index(row, 0))
    rect.setLeft(rect.left() + rect.width() // 2)
    return table.viewport().grab(rect).toImage()


def test_batch_file_names_are_elided_in_the_middle(batch: Any, tmp_path: Path, qtbot: Any) -> None:
    """Two long names that differ only at the end ("...-0001.jpg", "...-0002.jpg") are told apart in a
    narrow File column, the whole path in the tooltip. Before: both cut at the end ("holiday-photos-of-t...")
    and painted alike."""
    from squeezelens.core.predictions import Prediction, TopClass
    from squeezelens.gui.tasks import running_tasks

    stem = "IMG_20260611_holiday_photos_of_the_garden_wall_in_the_late_afternoon_sun_"  # no place to wrap
    sources = [str(tmp_path / f"{stem}{i:04d}.jpg") for i in (1, 2)]
    batch.start(sources)
    for i, src in enumerate(sources):
        batch.add(i, Prediction(src, "m", [TopClass(0, "cat", 0.9)]))
    batch.finish(False)
    table = batch.table
    table.setColumnWidth(0, 260)
    table.setAlternatingRowColors(False)  # the two rows painted on the same background
    table.setCurrentIndex(QModelIndex())
    table.clearSelection()
    qtbot.waitUntil(lambda: not [t for t in running_tasks() if "thumb" in t.name], timeout=10_000)
    assert _name_cell_text_area(table, 0) != _name_cell_text_area(table, 1)
    assert table.textElideMode() == Qt.TextElideMode.ElideMiddle
    model = table.model()
    assert model.data(model.index(1, 0), Qt.ItemDataRole.ToolTipRole) == sources[1]
