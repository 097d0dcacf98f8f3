"""Issue 14's history-strip checks: captions never covered, rounded like the results panel, never a "..."
that stays, the 60-item limit said, no vertical scroll bar, thumbnails sharp at 2x."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QImage


def _pred(prob: float, label: str = "cat") -> Any:
    from squeezelens.core.predictions import TopClass

    return SimpleNamespace(ok=True, top=[TopClass(0, label, prob)], unknown=None)


def _entry(title: str, w: int = 400, h: int = 400) -> Any:
    from squeezelens.gui.history_strip import HistoryEntry

    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor(40, 90, 160))
    return HistoryEntry(title, title, image)


def _strip(qtbot: Any) -> Any:
    from squeezelens.gui.history_strip import HistoryStrip

    strip = HistoryStrip()
    qtbot.addWidget(strip)
    strip.resize(600, strip.height())
    return strip


@pytest.mark.parametrize("size", [(400, 400), (300, 600)])
def test_square_and_portrait_thumbnails_leave_room_for_two_caption_lines(qtbot: Any, size: tuple[int, int]) -> None:
    """Before: 120x112 cells in a 118-pixel strip with a scroll bar: the viewport was ~100 pixels, so the
    72-pixel icon of a square or portrait photo covered its caption's lines."""
    from squeezelens.gui.image_loader import thumbnail

    strip = _strip(qtbot)
    for i in range(12):  # enough to need the horizontal scroll bar
        e = _entry(f"photo {i}.jpg", *size)
        e.prediction = _pred(0.5, "a rather long class name")
        strip.add(e, thumbnail(e.image))
    strip.show()
    qtbot.waitExposed(strip)
    qtbot.wait(10)
    lines = 2 * strip.fontMetrics().lineSpacing()
    rect = strip.visualItemRect(strip.item(0))
    assert rect.height() >= 72 + lines
    assert strip.viewport().height() >= rect.bottom() + 1, "the cell runs past the strip's bottom edge"
    assert not strip.verticalScrollBar().isVisible()


def test_captions_round_like_the_results_panel(qtbot: Any) -> None:
    """Before: "0%" under the thumbnail where the panel said "0.1%"."""
    from squeezelens.gui.wording import format_prob

    strip = _strip(qtbot)
    e = _entry("a.jpg")
    e.prediction = _pred(0.001)
    strip.add(e, e.image)
    assert strip.item(0).text().endswith("0.1%")
    assert format_prob(0.001) == "0.1%" and format_prob(0.4134) == "41.3%"


def test_an_entry_that_will_not_be_classified_says_so(qtbot: Any) -> None:
    """Before: an image whose classification failed (or was superseded) kept "..." for ever."""
    strip = _strip(qtbot)
    e = _entry("a.jpg")
    strip.add(e, e.image)
    assert strip.item(0).text() == "..."
    strip.mark_failed(e, "the model could not be loaded")
    assert strip.item(0).text() == "not classified"
    assert "the model could not be loaded" in strip.item(0).toolTip()
    e.prediction = _pred(0.9)  # classified later after all
    strip.update_entry(e)
    assert strip.item(0).text() == "cat\n90.0%"


def test_the_entry_limit_is_said_not_silent(qtbot: Any) -> None:
    from squeezelens.gui.history_strip import MAX_ENTRIES

    strip = _strip(qtbot)
    thumb = QImage(8, 8, QImage.Format.Format_RGB32)
    entries = [_entry(f"{i}.jpg", 8, 8) for i in range(MAX_ENTRIES + 3)]
    for e in entries:
        strip.add(e, thumb)
    assert strip.entries() == entries[::-1][:MAX_ENTRIES]
    texts = [strip.item(i).text() for i in range(strip.count())]
    assert any(f"last {MAX_ENTRIES}" in t.replace("\n", " ") for t in texts), texts
    note = strip.item(strip.count() - 1)
    assert not note.flags() & Qt.ItemFlag.ItemIsSelectable


def test_thumbnails_carry_enough_pixels_for_2x_screens(qtbot: Any) -> None:
    """Before: 96-pixel thumbnails in 72-pixel icons were scaled up 1.5x on a 2x screen."""
    from squeezelens.gui.image_loader import thumbnail

    strip = _strip(qtbot)
    e = _entry("big.jpg", 2000, 1500)
    strip.add(e, thumbnail(e.image))
    icon = strip.item(0).icon()
    pixmap = icon.pixmap(QSize(72, 72), 2.0)
    assert max(pixmap.width(), pixmap.height()) >= 144
