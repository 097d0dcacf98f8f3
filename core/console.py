"""Terminal output of the ``classify`` command: engine warnings and a progress counter on stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


def log_warnings_to_stderr() -> None:
    """Warnings logged under ``squeezelens`` appear as ``squeezelens: warning: ...`` lines (set up once)."""
    logger = logging.getLogger("squeezelens")
    if not any(getattr(h, "_squeezelens_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("squeezelens: warning: %(message)s"))
        handler._squeezelens_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def stderr_counter(total: int) -> Callable[[int, object], None] | None:
    """A ``classified i/total`` line on a terminal's stderr for runs of many inputs; None otherwise."""
    if total < 2 or not sys.stderr.isatty():
        return None

    def show(index: int, _result: object) -> None:
        end = "\n" if index + 1 == total else ""
        print(f"\rclassified {index + 1}/{total}", end=end, file=sys.stderr, flush=True)

    return show
