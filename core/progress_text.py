"""Progress in words and at a bearable rate: byte counts, time left, and a throttle for updates.

The CLI, the finetune events and the GUI's status texts all use these, so a download or a run
reads the same wherever it is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Bytes in one megabyte as download sizes are usually given (SI, like Hugging Face and browsers).
MB = 1_000_000


def format_bytes(done: int, total: int | None = None) -> str:
    """``"12.3 MB"`` or, with a known total, ``"12.3/98.0 MB"`` (SI megabytes, one decimal)."""
    if total:
        return f"{done / MB:.1f}/{total / MB:.1f} MB"
    return f"{done / MB:.1f} MB"


def format_seconds(s: float) -> str:
    """A duration as ``0:07``, ``3:12`` or ``1:02:03`` (rounded to whole seconds, never negative)."""
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def eta_seconds(elapsed_s: float, done: int, total: int) -> float | None:
    """Seconds left when ``done`` of ``total`` steps took ``elapsed_s``, at the same rate; None before
    the first step."""
    return elapsed_s / done * (total - done) if done > 0 else None


class Throttle:
    """Says yes at most ``per_second`` times a second: for progress that arrives faster than a person
    can read it (batch events, download chunks).

    Example:
        >>> t = Throttle(20)
        >>> if t.ready(): show(progress)
    """

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.interval = 1.0 / per_second
        self._clock = clock
        self._last: float | None = None

    def ready(self, force: bool = False) -> bool:
        """True (and the clock restarts) when the interval has passed since the last yes, or ``force``."""
        now = self._clock()
        if force or self._last is None or now - self._last >= self.interval:
            self._last = now
            return True
        return False
