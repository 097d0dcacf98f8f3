"""The one-line texts of finetune events (the CLI prints them), written with core/progress_text."""

from __future__ import annotations

from squeezelens.core import progress_text
from squeezelens.core.finetune import (
    BatchEvent,
    DownloadEvent,
    EpochEvent,
    EpochStats,
    StageEvent,
    WarningEvent,
    describe_event,
    format_seconds,
)


def test_event_texts() -> None:
    assert describe_event(StageEvent("train", "training a 4-class head")) == "training a 4-class head"
    assert describe_event(WarningEvent("few images")) == "warning: few images"
    assert describe_event(DownloadEvent(12_345_678, 98_000_000)) == "downloading weights: 12.3/98.0 MB"
    assert describe_event(DownloadEvent(12_345_678, None)) == "downloading weights: 12.3 MB"
    assert describe_event(BatchEvent("features", 0, 50, 2, 5, None, 1.0, 1.5)) == "features  batch 2/5  ETA 0:02"
    assert (describe_event(BatchEvent("train", 3, 50, 1, 4, 0.51234, 9.0, 3725.0))
            == "epoch 3/50 train  batch 1/4  loss 0.5123  ETA 1:02:05")
    stats = EpochStats(3, 0.41234, 0.91, 0.38104, 0.9375, 1e-3, 1.23)
    assert (describe_event(EpochEvent(stats, 50, 3, 56.0))
            == "epoch 3/50  train loss 0.4123 acc 91.0%  val loss 0.3810 acc 93.8% *  (1.2 s)  ETA 0:56")
    assert "*" not in describe_event(EpochEvent(stats, 50, 2, None))


def test_format_seconds_is_the_shared_one() -> None:
    assert format_seconds is progress_text.format_seconds  # the GUI imports it from core.finetune
