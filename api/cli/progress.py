"""Progress and warnings on stderr, so stdout carries only the results.

On a terminal, progress rewrites one line in place (``\\r``); in a log or pipe, ``classify`` and the
download print nothing and ``finetune`` prints its first batch line of each stage and then one
every :data:`LOG_EVERY_S` seconds. Byte counts and durations read as everywhere else in SqueezeLens
(:mod:`squeezelens.core.progress_text`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from squeezelens.core.progress_text import Throttle, format_bytes

if TYPE_CHECKING:
    from squeezelens.core.finetune import FinetuneEvent

#: Seconds between finetune batch lines when stderr is not a terminal (logs, pipes).
LOG_EVERY_S = 5.0


def log_warnings_to_stderr() -> None:
    """Warnings logged under ``squeezelens`` appear as ``squeezelens: warning: ...`` lines (set up once), and
    only so: a library that configures the root logger (ONNX Runtime's tools call ``logging.basicConfig``
    when the int8 quantizer imports them) must not print each one a second time in its own format."""
    logger = logging.getLogger("squeezelens")
    logger.propagate = False
    if not any(getattr(h, "_squeezelens_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("squeezelens: warning: %(message)s"))
        handler._squeezelens_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def download_progress() -> tuple[Callable[[int, int | None], None], threading.Event]:
    """A weights-download progress callback for stderr, and the cancel event Ctrl+C sets.

    The callback takes bytes done and the total (None when unknown) and, on a terminal, rewrites
    ``downloading weights: 12.3/98.0 MB 12%`` whenever the whole percentage changes.
    """
    cancel = threading.Event()
    last_pct = -1

    def progress(done: int, total: int | None) -> None:
        nonlocal last_pct
        if not sys.stderr.isatty():
            return
        pct = int(done * 100 / total) if total else -1
        if pct != last_pct:
            last_pct = pct
            size = format_bytes(done, total)
            done_line = "\n" if total and done >= total else ""
            text = f"downloading weights: {size} {pct}%" if pct >= 0 else f"downloading weights: {size}"
            print(f"\r{text}{done_line}", end="", file=sys.stderr, flush=True)

    return progress, cancel


def classify_counter(total: int) -> Callable[[int, object], None] | None:
    """A ``classified i/total`` line on a terminal's stderr for runs of many inputs; None otherwise.

    Args:
        total: how many inputs the run classifies; a single input shows no counter.

    Returns:
        An ``on_result(index, prediction)`` callback for :meth:`Classifier.classify
        <squeezelens.core.engine.Classifier.classify>` (index from 0), or None.
    """
    if total < 2 or not sys.stderr.isatty():
        return None

    def show(index: int, _result: object) -> None:
        end = "\n" if index + 1 == total else ""
        print(f"\rclassified {index + 1}/{total}", end=end, file=sys.stderr, flush=True)

    return show


class ProgressPrinter:
    """Turns finetune events into stderr lines: per batch (rewritten in place on a terminal, every
    :data:`LOG_EVERY_S` seconds otherwise), per epoch, stages and warnings.

    Args:
        stream: where to write (``sys.stderr``).
        tty: whether ``stream`` is a terminal; None asks it.
        clock: seconds, for the log throttle (tests pass a fake one).
    """

    def __init__(self, stream: TextIO, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._open = False
        # restarted by every line printed, so a batch line comes LOG_EVERY_S after the last line of any kind
        self._throttle = Throttle(1 / LOG_EVERY_S, clock=clock)
        self._stages: set[str] = set()  # stages whose first batch line was printed (not a terminal)

    def __call__(self, event: FinetuneEvent) -> None:
        from squeezelens.core.finetune import BatchEvent, DownloadEvent, describe_event

        text = describe_event(event)
        if isinstance(event, (BatchEvent, DownloadEvent)):
            if self.tty:
                self.stream.write("\r\033[K" + text)
                self.stream.flush()
                self._open = True
                return
            stage = event.stage if isinstance(event, BatchEvent) else "download"
            if stage in self._stages and not self._throttle.ready():
                return
            self._stages.add(stage)
        self.end_line()
        self.stream.write(text + "\n")
        self.stream.flush()
        self._throttle.ready(force=True)

    def end_line(self) -> None:
        """End a line left open by a terminal's rewritten batch line (before other output)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
