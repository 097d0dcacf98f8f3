"""The small widgets and the batch table model, fed with real core Prediction / TopClass objects."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QProxyStyle, QStyle

from squeezelens.core.engine import Prediction, TopClass
from squeezelens.core.options import DEVICES
from squeezelens.gui.about import about_text
from squeezelens.gui.batch_window import COLUMNS, SORT_ROLE, BatchTableModel
from squeezelens.gui.history_strip import MAX_ENTRIES, HistoryEntry, HistoryStrip
from squeezelens.gui.main_actions import DEVICE_NAMES
from squeezelens.gui.model_picker import OPEN_FOLDER, ModelPicker
from squeezelens.gui.results_panel import ResultsPanel
from squeezelens.gui.topk_bars import TopKBars
from squeezelens.gui.worker import CatalogueEntry

DISPLAY = Qt.ItemDataRole.DisplayRole


def pred(source: str, *top: tuple[str, float], untrained: bool = False) -> Prediction:
    return Prediction(source=source, model="seresnext26d_32x4d", untrained=untrained, load_ms=12.4, infer_ms=80.6,
                      top=[TopClass(index=i, label=label, prob=p) for i, (label, p) in enumerate(top)])


def failed(source: str, why: str = "broken or truncated image") -> Prediction:
    return Prediction(source=source, model="seresnext26d_32x4d", error=f"{source}: {why}",
                      error_reason=why)


# -- TopKBars ---------------------------------------------------------------------------------------

def test_bars_clamp_and_describe(qtbot: Any) -> None:
    bars = TopKBars()
    qtbot.addWidget(bars)
    bars.set_rows([("tabby", 0.8125), ("tiger cat", 1.7), ("lynx", -0.2), ("nan", math.nan)])
    assert bars.rows == [("tabby", 0.8125), ("tiger cat", 1.0), ("lynx", 0.0), ("nan", 0.0)]
    assert bars.accessibleDescription() == (
        "tabby: 81.2 percent; tiger cat: 100.0 percent; lynx: 0.0 percent; nan: 0.0 percent")


def test_bars_size_grows_with_rows(qtbot: Any) -> None:
    bars = TopKBars()
    qtbot.addWidget(bars)
    empty = bars.sizeHint().height()
    bars.set_rows([("a", 0.5)])
    one = bars.sizeHint().height()
    bars.set_rows([(str(i), 0.1) for i in range(5)])
    five = bars.sizeHint().height()
    assert empty == one > 0
    assert five > 4 * one
    assert bars.minimumSizeHint().height() == five


def test_bars_paint_fill_proportional(qtbot: Any) -> None:
    bars = TopKBars()
    qtbot.addWidget(bars)
    pal = bars.palette()
    blue = QColor(0, 0, 255)
    pal.setColor(QPalette.ColorRole.Highlight, blue)
    pal.setColor(QPalette.ColorRole.Window, QColor(255, 255, 255))
    bars.setPalette(pal)
    bars.set_rows([("first", 0.5), ("second", 0.0)])
    bars.resize(400, bars.sizeHint().height())
    image = bars.grab().toImage()
    fm_h = bars.fontMetrics().height()
    row_h = fm_h * 2 + 6
    y = fm_h + 3 + (row_h - fm_h - 4) // 2  # middle of the first bar
    ratio = image.width() / bars.width()  # device pixel ratio of the grab
    def at(x: float, yy: int) -> QColor:
        return QColor(image.pixel(int(x * ratio), int(yy * ratio)))
    assert at(0.25 * 400, y) == blue  # inside the 50% fill
    assert at(0.75 * 400, y) != blue  # track only
    y2 = y + row_h + 6  # the second bar: 0% draws no fill at all
    assert at(0.25 * 400, y2) != blue


# -- ResultsPanel -----------------------------------------------------------------------------------

def test_results_panel_prediction_error_and_message(qtbot: Any) -> None:
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.state.isVisible() and not panel.bars.isVisible()

    panel.show_prediction("cat.png", pred("/p/cat.png", ("tabby", 0.7), ("lynx", 0.2)), "CPU")
    assert panel.title.text() == "cat.png"
    assert not panel.state.isVisible() and panel.bars.isVisible()
    assert panel.bars.rows == [("tabby", 0.7), ("lynx", 0.2)]
    assert panel.timing.text() == "seresnext26d_32x4d: model 81 ms on CPU, decode 12 ms"

    panel.show_prediction("bad.jpg", failed("/p/bad.jpg"))
    assert panel.state.isVisible() and not panel.bars.isVisible()
    assert panel.state.text() == "Could not classify this image: broken or truncated image"
    assert panel.timing.text() == ""

    panel.show_message("Classifying...", "dog.png")
    assert panel.title.text() == "dog.png" and panel.state.text() == "Classifying..."
    assert panel.bars.rows == [] and not panel.bars.isVisible()
    panel.show_message("Drop something")
    assert not panel.title.isVisible()


def test_results_panel_untrained(qtbot: Any) -> None:
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.banner.isVisible()
    panel.set_untrained("seresnext26d_32x4d")
    assert panel.banner.isVisible() and "seresnext26d_32x4d" in panel.banner.text()
    panel.show_prediction("x.png", pred("x.png", ("a", 0.9), untrained=True))
    assert panel.timing.text().endswith("untrained")
    panel.set_untrained(None)
    assert not panel.banner.isVisible()


# -- HistoryStrip -----------------------------------------------------------------------------------

def thumb() -> QImage:
    image = QImage(8, 8, QImage.Format.Format_RGB32)
    image.fill(QColor(0, 200, 0))
    return image


def test_history_newest_first_captions_and_cap(qtbot: Any) -> None:
    strip = HistoryStrip()
    qtbot.addWidget(strip)
    a = HistoryEntry("a.png", "/p/a.png", QImage())
    b = HistoryEntry("b.png", "/p/b.png", QImage())
    strip.add(a, thumb())
    strip.add(b, thumb())
    assert strip.entries() == [b, a]
    assert strip.item(0).text() == "..." and strip.item(0).toolTip() == "b.png"

    a.prediction = pred("/p/a.png", ("a very long class label indeed", 0.426))
    strip.update_entry(a)
    assert strip.item(1).text() == "a very long cla\u2026\n42.6%"  # as the results panel rounds (issue 14)
    b.prediction = failed("/p/b.png")
    strip.update_entry(b)
    assert strip.item(0).text() == "error"

    for i in range(MAX_ENTRIES + 5):
        strip.add(HistoryEntry(f"{i}.png", f"/p/{i}.png", QImage()), thumb())
    entries = strip.entries()
    assert len(entries) == MAX_ENTRIES
    assert entries[0].title == f"{MAX_ENTRIES + 4}.png"
    assert a not in entries and b not in entries  # the oldest went first


def test_history_click_emits_the_entry(qtbot: Any) -> None:
    strip = HistoryStrip()
    qtbot.addWidget(strip)
    strip.resize(600, strip.height())
    a = HistoryEntry("a.png", "/p/a.png", QImage())
    b = HistoryEntry("b.png", "/p/b.png", QImage())
    strip.add(a, thumb())
    strip.add(b, thumb())
    strip.show()
    qtbot.waitExposed(strip)
    rect = strip.visualItemRect(strip.item(1))
    with qtbot.waitSignal(strip.entryActivated, timeout=1000) as blocker:
        qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args[0] is a


class SingleClickStyle(QProxyStyle):
    """A style that activates items on a single click (KDE's default, for one)."""

    def styleHint(self, hint: QStyle.StyleHint, *args: Any) -> int:
        if hint == QStyle.StyleHint.SH_ItemView_ActivateItemOnSingleClick:
            return 1
        return super().styleHint(hint, *args)


@pytest.mark.parametrize("single_click_style", [False, True])
def test_history_one_click_one_signal(qtbot: Any, single_click_style: bool) -> None:
    strip = HistoryStrip()
    qtbot.addWidget(strip)
    if single_click_style:
        style = SingleClickStyle("Fusion")
        strip.setStyle(style)
        assert strip.style().styleHint(QStyle.StyleHint.SH_ItemView_ActivateItemOnSingleClick)
    a = HistoryEntry("a.png", "/p/a.png", QImage())
    strip.add(a, thumb())
    strip.show()
    qtbot.waitExposed(strip)
    got: list[Any] = []
    strip.entryActivated.connect(got.append)
    center = strip.visualItemRect(strip.item(0)).center()
    qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=center)
    qtbot.wait(20)
    assert got == [a]
    strip.setCurrentItem(strip.item(0))
    qtbot.keyClick(strip, Qt.Key.Key_Return)  # the keyboard activates too
    assert got == [a, a]


# -- ModelPicker ------------------------------------------------------------------------------------

CATALOGUE = [
    CatalogueEntry("seresnext26d_32x4d", "seresnext26d_32x4d", True, "apache-2.0", True),
    CatalogueEntry("seresnext50_32x4d.gluon_in1k", "seresnext50_32x4d", False, None, False),
]


def model_values(picker: ModelPicker) -> list[str]:
    """What choosing each model row would load (not separators, not "Open model folder...")."""
    return [picker.itemData(i) for i in range(picker.count()) if picker.itemData(i) not in (None, OPEN_FOLDER)]


def test_picker_lists_catalogue_recent_and_open_folder(qtbot: Any) -> None:
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_catalogue(CATALOGUE)
    picker.set_recent(["/models/birds"])
    assert model_values(picker) == ["seresnext26d_32x4d", "seresnext50_32x4d.gluon_in1k", "/models/birds"]
    texts = [picker.itemText(i) for i in range(picker.count())]
    assert texts[0] == "seresnext26d_32x4d  (cached)"
    # with timm's published facts (core/imagenet_results.py)
    assert texts[1] == "seresnext50_32x4d.gluon_in1k  27.6M params, 79.9% top-1  (needs download)"
    assert "birds  (saved model)" in texts
    assert texts[-1] == "Open model folder..." and picker.itemData(picker.count() - 1) == OPEN_FOLDER
    tip1, tip0 = (picker.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in (1, 0))
    assert tip1.startswith("seresnext50_32x4d.gluon_in1k\nlicence: ?") and "Needs download" in tip1
    assert tip0.startswith("seresnext26d_32x4d\nlicence: apache-2.0") and "Needs download" not in tip0


def test_picker_current_known_and_unknown(qtbot: Any) -> None:
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_catalogue(CATALOGUE)
    picker.set_current("seresnext50_32x4d.gluon_in1k")
    assert picker.currentData() == "seresnext50_32x4d.gluon_in1k"
    assert picker.current_name() == "seresnext50_32x4d.gluon_in1k"
    picker.set_current("/models/my cats")  # not in the list yet: added at the top
    assert picker.currentIndex() == 0 and picker.currentData() == "/models/my cats"
    assert picker.currentText() == "my cats  (saved)"
    picker.set_catalogue(CATALOGUE)  # a rebuild keeps the selection
    assert picker.currentData() == "/models/my cats"


def test_picker_activation(qtbot: Any) -> None:
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_catalogue(CATALOGUE)
    picker.set_current("seresnext26d_32x4d")
    chosen: list[str] = []
    opened: list[bool] = []
    picker.modelChosen.connect(chosen.append)
    picker.openFolderRequested.connect(lambda: opened.append(True))

    picker.activated.emit(0)  # the current one again: nothing to do
    assert chosen == []
    picker.setCurrentIndex(1)
    picker.activated.emit(1)
    assert chosen == ["seresnext50_32x4d.gluon_in1k"] and picker.current_name() == chosen[0]

    last = picker.count() - 1
    picker.setCurrentIndex(last)
    picker.activated.emit(last)
    assert opened == [True]
    assert picker.currentData() == "seresnext50_32x4d.gluon_in1k"  # back on the model in use
    assert chosen == ["seresnext50_32x4d.gluon_in1k"]


def test_picker_never_selects_a_separator(qtbot: Any) -> None:
    picker = ModelPicker()
    qtbot.addWidget(picker)
    assert picker.currentData() == OPEN_FOLDER  # nothing else to show yet
    picker.set_recent(["/models/birds"])
    assert picker.currentData() == "/models/birds"
    assert picker.itemData(0) == "/models/birds"


# -- About ------------------------------------------------------------------------------------------

def test_every_core_device_has_a_menu_name() -> None:
    assert set(DEVICE_NAMES) == set(DEVICES)


def test_about_text() -> None:
    text = about_text(None, None, False)
    assert "no model loaded yet" in text
    for name in ("SqueezeLens", "timm", "PyTorch", "Qt", "PySide6", "Python", "LGPL-3.0"):
        assert name in text
    assert "seresnext26d_32x4d: apache-2.0" in about_text("seresnext26d_32x4d", "apache-2.0", False)
    assert "licence not stated" in about_text("seresnext26d_32x4d", None, False)
    untrained = about_text("seresnext26d_32x4d", "apache-2.0", True)
    assert "no weights loaded (untrained)" in untrained and "apache-2.0</p>" not in untrained


def test_about_text_escapes_folder_names() -> None:
    text = about_text("/models/<cats & dogs>", "mine <b>", False)
    assert "&lt;cats &amp; dogs&gt;" in text and "<cats" not in text
    assert "mine &lt;b&gt;" in text


# -- BatchTableModel --------------------------------------------------------------------------------

@pytest.fixture
def table(qtbot: Any) -> BatchTableModel:
    model = BatchTableModel()
    model.reset(["/p/b.png", "/p/a.png", "/p/bad.jpg", "/p/pending.png", "/p/c.png"])
    model.set_prediction(0, pred("/p/b.png", ("tabby", 0.25), ("lynx", 0.125)))
    model.set_prediction(1, pred("/p/a.png", ("golden retriever", 0.9), untrained=True))
    model.set_prediction(2, failed("/p/bad.jpg"))
    model.set_prediction(4, pred("/p/c.png", ("tiger", 0.5)))
    return model


def cells(model: Any, row: int, role: int = DISPLAY) -> list[Any]:
    return [model.data(model.index(row, c), role) for c in range(model.columnCount())]


def test_table_display_and_sort_roles(table: BatchTableModel) -> None:
    assert table.rowCount() == 5 and table.columnCount() == len(COLUMNS) == 4
    assert [table.headerData(i, Qt.Orientation.Horizontal) for i in range(4)] == list(COLUMNS)
    assert cells(table, 0) == ["b.png", "tabby", "25.0%", "tabby 25%, lynx 12%"]
    assert cells(table, 0, SORT_ROLE)[:3] == ["b.png", "tabby", 0.25]  # files sort by what the column shows
    assert cells(table, 1)[1] == "golden retriever (untrained)"
    assert cells(table, 1, SORT_ROLE)[1] == "golden retriever"
    assert cells(table, 2) == ["bad.jpg", "error", "", "/p/bad.jpg: broken or truncated image"]
    assert cells(table, 2, SORT_ROLE)[1:3] == ["\uffff", -1.0]  # errors sort after every label
    assert table.data(table.index(2, 1), Qt.ItemDataRole.ToolTipRole) == "/p/bad.jpg: broken or truncated image"
    assert table.data(table.index(0, 1), Qt.ItemDataRole.ToolTipRole) == "/p/b.png"
    assert cells(table, 3) == ["pending.png", "...", "", ""]
    assert cells(table, 3, SORT_ROLE) == ["pending.png", "", -1.0, ""]
    assert table.data(QModelIndex()) is None
    assert table.rowCount(table.index(0, 0)) == 0
    assert [p.source for p in table.done()] == ["/p/b.png", "/p/a.png", "/p/bad.jpg", "/p/c.png"]


def test_table_names_keep_subfolders_apart(qtbot: Any) -> None:
    model = BatchTableModel()
    model.reset(["/data/x/a.jpg", "/data/y/a.jpg", "/data/b.jpg"])
    assert [model.data(model.index(r, 0)) for r in range(3)] == [
        str(Path("x/a.jpg")), str(Path("y/a.jpg")), "b.jpg"]


def test_table_set_prediction_signals_and_ignores_bad_rows(qtbot: Any, table: BatchTableModel) -> None:
    with qtbot.waitSignal(table.dataChanged, timeout=500) as blocker:
        table.set_prediction(3, pred("/p/pending.png", ("cat", 0.3)))
    top_left, bottom_right = blocker.args[:2]
    assert (top_left.row(), top_left.column(), bottom_right.row(), bottom_right.column()) == (3, 0, 3, 3)
    table.set_prediction(99, pred("x", ("y", 1.0)))
    table.set_prediction(-1, pred("x", ("y", 1.0)))
    assert len(table.done()) == 5


def test_table_sorts_by_probability_through_a_proxy(table: BatchTableModel) -> None:
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(table)
    proxy.setSortRole(SORT_ROLE)

    def files() -> list[str]:
        return [proxy.data(proxy.index(r, 0)) for r in range(proxy.rowCount())]

    proxy.sort(2, Qt.SortOrder.DescendingOrder)
    order = files()
    assert order[:3] == ["a.png", "c.png", "b.png"]  # 90%, 50%, 25% - not the text "90.0%" < "25.0%"
    assert set(order[3:]) == {"bad.jpg", "pending.png"}  # errors and pending rows last
    proxy.sort(2, Qt.SortOrder.AscendingOrder)
    assert files()[2:] == ["b.png", "c.png", "a.png"]

    # a result arriving re-sorts the live proxy
    table.set_prediction(3, pred("/p/pending.png", ("cat", 0.99)))
    proxy.sort(2, Qt.SortOrder.DescendingOrder)
    assert files()[0] == "pending.png"

    proxy.sort(0, Qt.SortOrder.AscendingOrder)
    assert files() == ["a.png", "b.png", "bad.jpg", "c.png", "pending.png"]
