"""The one-slot mailbox between the camera (GUI thread) and the inference worker.

Only the newest frame waits: a frame that arrives while another is waiting replaces it (the older
one is dropped and counted), so a result is never more than one inference behind the camera. The
GUI thread wakes the worker only when the slot goes from "nothing pending" to "a frame pending",
so at most one wake-up job is ever queued, however fast frames come.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .qimage_convert import qimage_to_pil


@dataclass(frozen=True)
class LiveFrame:
    """A frame waiting to be classified: the frame itself (a ``QVideoFrame`` or ``QImage``, not yet
    converted), its sequence number, and when it reached the app (``time.perf_counter()``)."""

    frame: Any
    seq: int
    captured: float


class FrameMailbox:
    """A thread-safe one-slot mailbox: ``put`` from the GUI thread, ``take`` from the worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slot: LiveFrame | None = None
        self._wake_pending = False  # a wake-up job is queued and has not taken the slot yet
        self._seq = itertools.count(1)
        self.put_count = 0
        self.dropped = 0  # frames replaced while waiting (never classified)
        self.taken = 0

    def put(self, frame: Any, captured: float | None = None) -> bool:
        """Leave ``frame`` as the one waiting; True when the worker must be woken (no wake-up is pending)."""
        item = LiveFrame(frame, next(self._seq), time.perf_counter() if captured is None else captured)
        with self._lock:
            self.put_count += 1
            if self._slot is not None:
                self.dropped += 1
            self._slot = item
            if self._wake_pending:
                return False
            self._wake_pending = True
            return True

    def take(self, keep_wake: bool = False) -> LiveFrame | None:
        """The waiting frame (the slot is empty afterwards), or None when it was cleared meanwhile.

        ``keep_wake``: taken by someone other than the queued wake-up job (the worker between a batch's
        chunks), so that job is still queued and the next ``put`` must not post another one."""
        with self._lock:
            item, self._slot = self._slot, None
            if not keep_wake:
                self._wake_pending = False
            if item is not None:
                self.taken += 1
            return item

    def clear(self) -> None:
        """Drop the waiting frame (pause, stop); a queued wake-up then finds nothing."""
        with self._lock:
            if self._slot is not None:
                self.dropped += 1
            self._slot = None

    @property
    def pending(self) -> int:
        """Frames waiting: 0 or 1."""
        with self._lock:
            return 0 if self._slot is None else 1

    @property
    def wake_pending(self) -> bool:
        with self._lock:
            return self._wake_pending


def frame_to_pil(frame: Any) -> Image.Image:
    """A taken frame (``QVideoFrame`` or ``QImage``) as an RGB PIL image, for the worker thread.

    ``QVideoFrame.toImage()`` gives ``Format_RGB32`` for camera formats, which :func:`qimage_to_pil`
    unpacks straight from its buffer.
    """
    return qimage_to_pil(frame.toImage() if hasattr(frame, "toImage") else frame)
