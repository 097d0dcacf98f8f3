"""Issue 14's Finetune-window checks, fed with core's own events (no training): the untrained-base warning
before training, the chance-level hint, a progress bar over the whole run, features with count and ETA,
charts that follow the palette, keep their last point whole and show an equal train line, and "n/a"
per-class metrics for classes without validation images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtGui import QColor, QPalette

from squeezelens.core.dataset_scan import DatasetScan, Sample
from squeezelens.core.finetune import (
    UNTRAINED_BASE,
    BatchEvent,
    EpochEvent,
    EpochStats,
    FinetuneConfig,
    ScanEvent,
    StageEvent,
    WarningEvent,
)

RUN_ID = 7


class StandInRun:
    """What the window holds while a run goes on (its id, ``cancel``, ``wait``), with no thread behind it."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def wait(self, timeout_ms: int = 0) -> bool:
        return True


@pytest.fixture
def window(qtbot: Any, tmp_path: Path) -> Iterator[Any]:
    """A Finetune window that believes run ``RUN_ID`` (deep, 20 epochs, 3 classes) is going on.

    Not handed to ``qtbot.addWidget``: pytest-qt closes those before any fixture's teardown, i.e. while the
    stand-in run still "goes on", and closing a window mid-run asks "Stop training?" in a modal box that
    nobody answers offscreen (the module hung after its first test that way). The run ends first here.
    """
    from squeezelens.gui.finetune_progress import RunProgress
    from squeezelens.gui.finetune_window import FinetuneWindow
    from squeezelens.gui.settings import AppSettings

    w = FinetuneWindow(AppSettings(), "seresnext26d_32x4d")
    w.show()
    config = FinetuneConfig(data_dir=tmp_path, output_dir=tmp_path / "out", mode="deep", epochs=20, batch_size=4)
    w._run_config = config
    w._progress = RunProgress(config.mode, config.resolved_epochs, config.batch_size)
    w.run = StandInRun(RUN_ID)  # what _current() checks
    yield w
    w.run = None  # the run is over: closing asks nothing
    w.close()
    assert w.shutdown(5000)  # the form's preview scan too
    w.deleteLater()


def _scan(tmp_path: Path, classes: int = 3, val_per_class: int = 4) -> DatasetScan:
    names = [f"class{i}" for i in range(classes)]
    train = [Sample(tmp_path / f"t{i}_{k}.jpg", i) for i in range(classes) for k in range(12)]
    val = [Sample(tmp_path / f"v{i}_{k}.jpg", i) for i in range(classes) for k in range(val_per_class)]
    return DatasetScan(tmp_path, "class_folders", names, train, val)


def _epoch(epoch: int, loss: float, epochs: int = 20) -> EpochEvent:
    return EpochEvent(EpochStats(epoch, loss, 0.33, loss, 0.33, 1e-3, 1.0), epochs, 1, None)


def test_untrained_base_is_said_before_training(window: Any) -> None:
    """Before: the warning went only to the "Skipped & warnings" tab and the summary after the run."""
    window._on_event(RUN_ID, StageEvent("load", "loading seresnext26d_32x4d"))
    window._on_event(RUN_ID, WarningEvent("seresnext26d_32x4d has no pretrained weights (offline): training "
                                          "on random features", UNTRAINED_BASE))
    assert window.untrained_banner.isVisibleTo(window)
    assert window.untrained_banner.text().startswith("\u26a0 Base model seresnext26d_32x4d has no pretrained weights")
    assert window.results.loss_chart.points() == []  # not one epoch yet


def test_a_deep_run_stuck_at_chance_gets_a_hint(window: Any, tmp_path: Path) -> None:
    """Before: a deep run whose loss sat at ln 3 = 1.0986 for 3 classes got no word about it."""
    window._on_event(RUN_ID, ScanEvent(_scan(tmp_path)))
    for epoch in (1, 2):
        window._on_event(RUN_ID, _epoch(epoch, 1.0986))
    assert not window.hint_label.isVisibleTo(window)  # the first epochs may sit there
    window._on_event(RUN_ID, _epoch(3, 1.0990))
    assert window.hint_label.isVisibleTo(window)
    assert "ln 3 = 1.0986" in window.hint_label.text()


def test_a_deep_run_that_learns_gets_no_chance_hint(window: Any, tmp_path: Path) -> None:
    window._on_event(RUN_ID, ScanEvent(_scan(tmp_path)))
    for epoch, loss in [(1, 1.09), (2, 0.8), (3, 0.5), (4, 0.3)]:
        window._on_event(RUN_ID, _epoch(epoch, loss))
    assert not window.hint_label.isVisibleTo(window)


def test_the_progress_bar_tracks_the_whole_run(window: Any, tmp_path: Path) -> None:
    """Before: the bar showed 100% at "epoch 1/20" (validation reset it to that phase's batches)."""
    window._on_event(RUN_ID, ScanEvent(_scan(tmp_path)))  # 12 val images, batch 4: 3 val batches an epoch
    window._on_event(RUN_ID, StageEvent("train", "training"))
    fractions = []
    for epoch in (1, 2):
        for b in range(1, 10):
            window._on_event(RUN_ID, BatchEvent("train", epoch, 20, b, 9, 1.0, 1.0, None))
            fractions.append(window.progress.value() / window.progress.maximum())
        for b in range(1, 4):
            window._on_event(RUN_ID, BatchEvent("validate", epoch, 20, b, 3, None, 1.0, None))
            fractions.append(window.progress.value() / window.progress.maximum())
    assert fractions == sorted(fractions)  # never goes back between phases
    assert fractions[11] == pytest.approx(1 / 20, abs=0.002)  # end of epoch 1 of 20
    assert fractions[-1] == pytest.approx(2 / 20, abs=0.002)
    assert "epoch 2/20" in window.progress.format()


def test_feature_extraction_shows_count_and_eta_on_the_bar(window: Any) -> None:
    """Before: the bar read "features, batch 3/10" and jumped to 100% per phase; the ETA was elsewhere."""
    window._run_config = FinetuneConfig(data_dir=Path("d"), output_dir=Path("o"), mode="quick", epochs=3)
    from squeezelens.gui.finetune_progress import QUICK_FEATURES_SHARE, RunProgress

    window._progress = RunProgress("quick", 3, 32)
    window._on_event(RUN_ID, StageEvent("features", "features of 320 images"))
    window._on_event(RUN_ID, BatchEvent("features", 0, 3, 3, 10, None, 4.0, 12.0))
    text = window.progress.format()
    assert "3/10" in text and "ETA 0:12" in text
    assert window.progress.value() / window.progress.maximum() == pytest.approx(0.3 * QUICK_FEATURES_SHARE, abs=0.002)


def _dark() -> QPalette:
    pal = QPalette()
    for role, colour in [(QPalette.ColorRole.Window, QColor(45, 45, 48)), (QPalette.ColorRole.Base, QColor(30, 30, 30)),
                         (QPalette.ColorRole.WindowText, QColor(230, 230, 230)),
                         (QPalette.ColorRole.Text, QColor(230, 230, 230))]:
        pal.setColor(role, colour)
    return pal


def test_charts_follow_the_dark_palette(qtbot: Any) -> None:
    """Before: a white chart with black labels in the dark theme."""
    from squeezelens.gui.training_chart import TrainingChart

    chart = TrainingChart("Loss")
    qtbot.addWidget(chart)
    chart.setPalette(_dark())
    c = chart.chart()
    assert c.backgroundBrush().color().lightness() < 80
    assert c.titleBrush().color().lightness() > 180
    assert chart.x_axis.labelsBrush().color().lightness() > 180
    assert c.legend().labelColor().lightness() > 180


def _pixels_near(image: Any, colour: QColor, tolerance: int = 40) -> int:
    """How many pixels of ``image`` are within ``tolerance`` (per channel) of ``colour``."""
    want = (colour.red(), colour.green(), colour.blue())
    count = 0
    for x in range(image.width()):
        for y in range(image.height()):
            c = image.pixelColor(x, y)
            count += max(abs(a - b) for a, b in zip((c.red(), c.green(), c.blue()), want, strict=True)) <= tolerance
    return count


def test_the_last_point_is_not_clipped_and_equal_lines_both_show(qtbot: Any) -> None:
    """Before: x ended at the last epoch and y at 100 % (the end marker cut in half); the train line was hidden
    under an equal validation line of the same width. Painted: both colours show in the plot area when the
    two curves are equal (seen failing with the train line drawn on top: the validation colour was gone)."""
    from squeezelens.gui.training_chart import TRAIN_COLOUR, VAL_COLOUR, TrainingChart

    chart = TrainingChart("Accuracy", percent=True)
    qtbot.addWidget(chart)
    chart.resize(400, 300)
    chart.show()
    qtbot.waitExposed(chart)
    chart.reset(4)
    for epoch in range(1, 5):
        chart.add_point(epoch, 0.5, 0.5)
    assert chart.x_axis.max() > 4 and chart.y_axis.max() > 100
    plot = chart.chart().plotArea().toRect().adjusted(2, 2, -2, -2)  # the lines, not the legend's markers
    image = chart.grab(chart.mapFromScene(plot).boundingRect()).toImage()
    train, val = _pixels_near(image, TRAIN_COLOUR), _pixels_near(image, VAL_COLOUR)
    assert train > 150 and val > 150, (train, val)


def test_per_class_metrics_say_na_without_validation_images(qtbot: Any) -> None:
    """Before: "0.0%" precision and recall for a class that had no validation image to measure."""
    from squeezelens.core.finetune import ClassMetrics
    from squeezelens.gui.finetune_results import FinetuneResults

    results = FinetuneResults()
    qtbot.addWidget(results)
    r = SimpleNamespace(per_class=[ClassMetrics("cats", 0.5, 1.0, 0.67, 2, 4),
                                   ClassMetrics("dogs", 0.0, 0.0, 0.0, 0, 0)])
    results._fill_per_class(r)
    row = [results.per_class.item(1, c).text() for c in range(5)]
    assert row == ["dogs", "n/a", "n/a", "n/a", "0"]
    assert results.per_class.item(0, 1).text() == "50.0%"


def _painted_contrast(widget: Any, area: Any) -> float:
    """The best contrast of any painted pixel of ``widget`` in ``area`` against its palette's window colour."""
    from squeezelens.gui.contrast import contrast_ratio

    image = widget.grab(area).toImage()
    bg = widget.palette().color(QPalette.ColorRole.Window)
    return max(contrast_ratio(image.pixelColor(x, y), bg) for x in range(image.width()) for y in range(image.height()))


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_warnings_and_errors_are_readable_in_both_palettes(window: Any, dark: bool) -> None:
    """The untrained banner and an error status as painted: at least 4.5:1 (WCAG AA) against the window.
    Before: fixed #b26a00 / #c62828, 3.34:1 and 2.52:1 on the dark window (#b26a00 3.69:1 on Fusion's light one)."""
    from squeezelens.gui.contrast import MIN_CONTRAST

    if dark:
        pal = _dark()
        pal.setColor(QPalette.ColorRole.Window, QColor("#2b2b2b"))  # scripts/screenshot_support.apply_dark_palette
        window.setPalette(pal)
    window.setAutoFillBackground(True)
    window._on_event(RUN_ID, WarningEvent("seresnext26d_32x4d has no pretrained weights (offline): training "
                                          "on random features", UNTRAINED_BASE))
    window._show_status("Cannot start: the folder needs at least 2 classes", error=True)
    for label in (window.untrained_banner, window.status):
        assert label.isVisibleTo(window)
        area = label.geometry().translated(label.parentWidget().mapTo(window, label.parentWidget().rect().topLeft()))
        assert _painted_contrast(window, area) >= MIN_CONTRAST, label.objectName() or "status"
