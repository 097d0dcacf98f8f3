"""Start-up timestamps for bench/gui_startup.py: set SQUEEZELENS_STARTUP_PROBE=FILE to record them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

PROBE_ENV = "SQUEEZELENS_STARTUP_PROBE"
QUIT_ENV = "SQUEEZELENS_STARTUP_PROBE_QUIT"  # quit after this event (e.g. "first_result")


class StartupProbe:
    """Appends ``{"event", "t"}`` (wall-clock seconds) to a file, once per event name."""

    def __init__(self, path: str | None, quit_after: str | None = None, quit: Callable[[], None] | None = None):
        self.path = path
        self.quit_after = quit_after
        self.quit = quit
        self._seen: set[str] = set()

    @classmethod
    def from_env(cls, quit: Callable[[], None] | None = None) -> StartupProbe:
        return cls(os.environ.get(PROBE_ENV) or None, os.environ.get(QUIT_ENV) or None, quit)

    def mark(self, event: str) -> None:
        if not self.path or event in self._seen:
            return
        self._seen.add(event)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "t": time.time()}) + "\n")
        if event == self.quit_after and self.quit is not None:
            self.quit()
