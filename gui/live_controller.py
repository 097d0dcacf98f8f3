"""Live classification: frames from a ``QVideoSink`` are shown at camera rate and the newest one is
handed to the inference worker through a one-slot :class:`FrameMailbox`.

The GUI thread does nothing per frame but count it, keep a reference for the view and ``put`` it in
the mailbox; the worker converts (``toImage()``) and classifies only the frames it takes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from .camera_source import FrameSource, multimedia
from .frame_mailbox import FrameMailbox
from .worker import InferenceClient, LiveResult

#: Window over which video and inference rates are measured.
RATE_WINDOW_S = 2.0
#: Latencies kept for the overlay's mean.
LATENCY_KEEP = 30
#: Extra classes asked for when smoothing, so a class just outside the top-k still averages right.
SMOOTHING_EXTRA = 5


class RateMeter:
    """Events per second over the last ``window`` seconds."""

    def __init__(self, window: float = RATE_WINDOW_S) -> None:
        self.window = window
        self._stamps: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._stamps.append(now)
        while self._stamps and now - self._stamps[0] > self.window:
            self._stamps.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        while self._stamps and now - self._stamps[0] > self.window:
            self._stamps.popleft()
        if len(self._stamps) < 2:
            return 0.0
        span = max(self._stamps[-1] - self._stamps[0], 1e-6)
        return (len(self._stamps) - 1) / span

    def clear(self) -> None:
        self._stamps.clear()


@dataclass
class LiveStats:
    """What the overlay shows and the tests/benchmark read."""

    video: RateMeter = field(default_factory=RateMeter)
    inference: RateMeter = field(default_factory=RateMeter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_KEEP))
    frames: int = 0
    results: int = 0
    # the longest single call of live-mode code in the GUI thread (a frame, a result), in thread CPU ms
    # (what the GUI thread itself spent, so a busy machine's scheduling does not count) and wall ms
    slot_cpu_ms: float = 0.0
    slot_wall_ms: float = 0.0

    def note_slot(self, cpu0: float, wall0: float) -> None:
        """Record one GUI-thread call that began at ``time.thread_time()`` ``cpu0``, ``perf_counter()`` ``wall0``."""
        self.slot_cpu_ms = max(self.slot_cpu_ms, (time.thread_time() - cpu0) * 1000)
        self.slot_wall_ms = max(self.slot_wall_ms, (time.perf_counter() - wall0) * 1000)

    def latency_ms(self) -> float | None:
        return sum(self.latencies_ms) / len(self.latencies_ms) if self.latencies_ms else None

    def clear(self) -> None:
        self.video.clear()
        self.inference.clear()
        self.latencies_ms.clear()


class Smoother:
    """Moving average of the class probabilities over the last ``n`` results (1 = no smoothing)."""

    def __init__(self, n: int = 1) -> None:
        self._last: deque[dict[str, float]] = deque(maxlen=max(1, n))

    @property
    def n(self) -> int:
        return self._last.maxlen or 1

    def set_n(self, n: int) -> None:
        self._last = deque(self._last, maxlen=max(1, n))

    def add(self, rows: list[tuple[str, float]], top_k: int) -> list[tuple[str, float]]:
        """Add one result's (label, prob) rows; the averaged top ``top_k``."""
        self._last.append(dict(rows))
        if len(self._last) == 1 and self.n == 1:
            return rows[:top_k]
        total: dict[str, float] = {}
        for result in self._last:
            for label, prob in result.items():
                total[label] = total.get(label, 0.0) + prob
        avg = sorted(((label, s / len(self._last)) for label, s in total.items()), key=lambda r: -r[1])
        return avg[:top_k]

    def clear(self) -> None:
        self._last.clear()


class LiveController(QObject):
    """Connects a frame source, the view and the worker; owns the mailbox and the sink.

    Signals: ``frameShown(frame)`` for each frame to draw (not while paused), ``resultReady(LiveResult,
    rows)`` with the (smoothed) top-k rows, ``problem(message)`` when the source fails. While a model
    loads, frames are shown but not classified.
    """

    frameShown = Signal(object)
    resultReady = Signal(object, object)
    problem = Signal(str)

    def __init__(self, client: InferenceClient, top_k: Callable[[], int] = lambda: 5,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.top_k = top_k
        self.mailbox = FrameMailbox()
        self._frame_type = multimedia().QVideoFrame
        self.sink = multimedia().QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._on_sink_frame)
        self.source: FrameSource | None = None
        self.stats = LiveStats()
        self.smoother = Smoother()
        self.paused = False
        self.running = False
        self.last_frame: Any = None
        self.last_result: LiveResult | None = None
        self.max_pending_jobs = 0  # the most live wake-ups seen waiting for the worker (tests: no queue growth)
        self._min_seq = 0  # results for frames before the latest (re)start are stale
        client.liveResult.connect(self._on_result)
        client.modelReady.connect(self._on_model_ready)

    # -- control ----------------------------------------------------------------------------------
    def set_source(self, source: FrameSource | None) -> None:
        """Use ``source`` (stopping and discarding the previous one); call ``start()`` to run it."""
        self.stop()
        if self.source is not None:
            self.source.errorOccurred.disconnect(self._on_source_error)
            self.source.deleteLater()
        self.source = source
        if source is not None:
            source.errorOccurred.connect(self._on_source_error)

    def start(self) -> None:
        if self.source is None:
            return
        self.running = True
        self.paused = False
        self._restart_counting()
        self.source.start()

    def stop(self) -> None:
        """Stop the source and forget the waiting frame; results still in flight are ignored."""
        if self.source is not None:
            self.source.stop()
        self.running = False
        self.mailbox.clear()
        self.last_frame = None  # nothing to capture once the video is gone
        self._min_seq = self.mailbox.put_count + 1

    def set_paused(self, paused: bool) -> None:
        """Pause freezes the frame on show and stops classifying (the camera keeps running)."""
        self.paused = paused
        self.mailbox.clear()
        if not paused:
            self._restart_counting()

    def set_smoothing(self, n: int) -> None:
        self.smoother.set_n(n)

    def _restart_counting(self) -> None:
        self._min_seq = self.mailbox.put_count + 1
        self.stats.clear()
        self.smoother.clear()
        self.last_result = None

    def _on_model_ready(self, _state: Any) -> None:
        """Another model: its results must not be averaged with (or measured against) the old one's."""
        self.smoother.clear()
        self.stats.clear()
        self.last_result = None
        self._min_seq = self.mailbox.put_count + 1

    # -- frames -----------------------------------------------------------------------------------
    def _on_sink_frame(self, frame: Any) -> None:
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        # our own (shallow, shared-buffer) copy: the signal's argument belongs to the emitter
        self._on_frame(self._frame_type(frame))
        self.stats.note_slot(cpu0, wall0)

    def _on_frame(self, frame: Any) -> None:
        if not self.running or self.paused or not frame.isValid():
            return
        now = time.perf_counter()
        self.stats.frames += 1
        self.stats.video.tick(now)
        self.last_frame = frame
        self.frameShown.emit(frame)
        if self.client.model is None:
            return  # a model is loading: show the video, classify once it is ready
        k = self.top_k()
        if self.mailbox.put(frame, now):
            self.client.classify_live(self.mailbox, k + SMOOTHING_EXTRA if self.smoother.n > 1 else k)
        self.max_pending_jobs = max(self.max_pending_jobs, self.client.queued_live_jobs)

    def _on_result(self, result: LiveResult) -> None:
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        self._show_result(result)
        self.stats.note_slot(cpu0, wall0)

    def _show_result(self, result: LiveResult) -> None:
        if not self.running or self.paused or result.seq < self._min_seq:
            return
        if self.client.model is None or result.model_req != self.client.model_req:
            return  # answered by a model that is being (or has been) replaced
        if self.last_result is not None and result.seq <= self.last_result.seq:
            return  # cannot happen with one mailbox and one worker; never show an older frame's result
        now = time.perf_counter()
        self.last_result = result
        self.stats.results += 1
        self.stats.inference.tick(now)
        self.stats.latencies_ms.append((now - result.captured) * 1000)
        rows: list[tuple[str, float]] = []
        if result.pred is not None and result.pred.ok:
            rows = self.smoother.add([(t.label, t.prob) for t in result.pred.top], self.top_k())
        self.resultReady.emit(result, rows)

    def _on_source_error(self, message: str) -> None:
        self.running = False
        self.mailbox.clear()
        self.last_frame = None
        self.problem.emit(message)
