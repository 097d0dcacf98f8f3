"""Live mode's pipeline with synthetic frames: the one-slot mailbox, results always newer than the last,
no queue growth, a responsive GUI at 30 fps, and a 10,000-frame soak without memory growth."""

from __future__ import annotations

import gc
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QImage

from squeezelens.gui.frame_mailbox import FrameMailbox

from .conftest import fixed_loader, watch_gaps

WAIT_MS = 20_000


# -- the mailbox ---------------------------------------------------------------------------------------
def test_mailbox_keeps_only_the_newest_frame_and_wakes_once() -> None:
    box = FrameMailbox()
    assert box.put("a") is True  # first frame: wake the worker
    assert box.put("b") is False  # a wake-up is already queued
    assert box.put("c") is False
    assert box.pending == 1 and box.dropped == 2
    item = box.take()
    assert item is not None and item.frame == "c" and item.seq == 3
    assert box.pending == 0 and box.take() is None
    assert box.put("d") is True  # the worker took the slot: the next frame wakes it again


def test_mailbox_clear_leaves_the_queued_wakeup_with_nothing() -> None:
    box = FrameMailbox()
    assert box.put("a")
    box.clear()
    assert box.put("b") is False  # the wake-up posted for "a" is still queued and will take "b"
    assert box.take().frame == "b"
    box.clear()
    assert box.take() is None


def test_mailbox_under_two_threads_never_queues_more_than_one_wakeup() -> None:
    """The GUI thread posts a wake-up only when ``put`` says so; the worker takes one frame per wake-up.
    However the two threads interleave, at most one wake-up is ever queued, none finds the slot empty,
    and every frame is either classified or dropped."""
    box = FrameMailbox()
    wakeups: queue.SimpleQueue[object] = queue.SimpleQueue()
    taken: list[int] = []
    empty_wakeups = 0
    done = object()

    def worker() -> None:
        nonlocal empty_wakeups
        while wakeups.get() is not done:
            item = box.take()
            if item is None:
                empty_wakeups += 1
            else:
                taken.append(item.seq)
                if item.seq % 7 == 0:
                    time.sleep(0.0001)  # a slow frame now and then: the producer runs ahead

    t = threading.Thread(target=worker)
    t.start()
    most_queued = posted = 0
    for i in range(20_000):
        if box.put(i):
            wakeups.put(i)
            posted += 1
        most_queued = max(most_queued, wakeups.qsize())
    while box.wake_pending:
        time.sleep(0.001)
    wakeups.put(done)
    t.join()
    assert most_queued <= 1 and posted > 1 and posted == len(taken) and empty_wakeups == 0
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert box.dropped + box.taken == 20_000 and box.dropped > 0


# -- pure helpers --------------------------------------------------------------------------------------
def test_smoother_averages_the_last_n_results() -> None:
    from squeezelens.gui.live_controller import Smoother

    s = Smoother(1)
    assert s.add([("cat", 0.9), ("dog", 0.1)], 2) == [("cat", 0.9), ("dog", 0.1)]
    s.set_n(2)
    rows = s.add([("dog", 0.7), ("fox", 0.3)], 2)  # averaged with the one before
    assert rows == [("cat", pytest.approx(0.45)), ("dog", pytest.approx(0.4))]
    assert dict(s.add([("dog", 0.7), ("fox", 0.3)], 3)) == {"dog": pytest.approx(0.7), "fox": pytest.approx(0.3)}


class _Fmt:
    def __init__(self, w: int, h: int, fps: float = 30.0) -> None:
        self._size, self._fps = QSize(w, h), fps

    def resolution(self) -> QSize:
        return self._size

    def maxFrameRate(self) -> float:
        return self._fps


@pytest.mark.parametrize(("sizes", "wanted", "expected"), [
    ([(320, 240), (640, 480), (1280, 720), (1920, 1080)], "", "640x480"),
    ([(1920, 1080), (1280, 720), (800, 600)], "", "800x600"),
    ([(1920, 1080), (3840, 2160)], "", "1920x1080"),  # nothing in range, nothing smaller: the smallest
    ([(160, 120), (320, 240), (1920, 1080)], "", "320x240"),  # nothing in range: the largest below
    ([(640, 480), (1280, 720)], "1280x720", "1280x720"),
    ([(640, 480), (1280, 720)], "999x999", "640x480"),  # a saved size this camera lacks
])
def test_default_resolution(sizes: list[tuple[int, int]], wanted: str, expected: str) -> None:
    from squeezelens.gui.camera_source import format_key, pick_format

    formats = [_Fmt(w, h, fps) for w, h in sizes for fps in (15.0, 30.0)]
    chosen = pick_format(formats, wanted)
    assert format_key(chosen) == expected
    assert chosen.maxFrameRate() == 30.0  # the fastest of that size
    assert pick_format([]) is None


# -- the pipeline ----------------------------------------------------------------------------------------
def start_live(qtbot: Any, clf: Any, size: tuple[int, int] = (640, 480), fps: float = 30.0,
               with_view: bool = True) -> tuple[Any, Any, Any, list]:
    """A worker with ``clf``, a live controller, a synthetic source at ``fps`` (not started)."""
    from squeezelens.gui.camera_view import CameraView
    from squeezelens.gui.dev_tools import SyntheticSource
    from squeezelens.gui.live_controller import LiveController
    from squeezelens.gui.worker import InferenceClient, ModelSpec

    client = InferenceClient(fixed_loader(clf))
    client.load_model(ModelSpec())
    qtbot.waitUntil(lambda: client.model is not None, timeout=WAIT_MS)
    controller = LiveController(client, lambda: 5)
    raw: list = []  # every LiveResult the worker sent, before any filtering
    client.liveResult.connect(raw.append)
    if with_view:
        view = CameraView()
        view.resize(320, 240)
        view.show()
        controller.frameShown.connect(view.set_frame)
        controller._test_view = view
    source = SyntheticSource(controller.sink, size=size, fps=fps)
    controller.set_source(source)
    return client, controller, source, raw


@pytest.mark.parametrize("model", ["untrained_classifier", "onnx_classifier"])
def test_live_pipeline_at_30fps_with_a_real_model(qtbot: Any, request: pytest.FixtureRequest, model: str) -> None:
    """A real SE-ResNeXt (untrained on torch; on ONNX Runtime, the app's CPU default): at most one frame
    waits, results come in frame order, each newer than the last, the worker's queue never grows, and
    no call of live-mode code in the GUI thread (a frame, a result, a paint) takes 100 ms.

    That bound is on the GUI thread's own CPU time per call, so a machine busy with other work does not
    fail it; the wall-clock gap between event-loop passes depends on that load (and on torch's spinning
    OpenMP threads, docs/PERFORMANCE.md "torch on a busy CPU"), so it is printed, as bench/live_camera.py
    reports it, not asserted.
    """
    client, controller, source, raw = start_live(qtbot, request.getfixturevalue(model))
    waiting: list[int] = []
    queued: list[int] = []
    controller.start()
    try:
        qtbot.waitUntil(lambda: controller.stats.results >= 2, timeout=WAIT_MS)
        gaps = watch_gaps(qtbot, 3.0, sample=lambda: (waiting.append(controller.mailbox.pending),
                                                      queued.append(client.queued_live_jobs)))
    finally:
        controller.set_source(None)
        client.shutdown()
    seqs = [r.seq for r in raw]
    assert all(b > a for a, b in zip(seqs, seqs[1:])), "a result for an older frame came after a newer one"
    assert all(r.error is None and r.pred.ok and len(r.pred.top) == 5 for r in raw)
    assert max(waiting) <= 1 and max(queued) <= 1 and controller.max_pending_jobs <= 1
    frames = controller.mailbox.put_count
    assert controller.mailbox.taken + controller.mailbox.dropped + controller.mailbox.pending == frames
    view, stats = controller._test_view, controller.stats
    print(f"{model}: frames {frames}, results {len(raw)}, dropped {controller.mailbox.dropped}, "
          f"longest GUI gap {max(gaps) * 1000:.1f} ms, mean latency {stats.latency_ms():.0f} ms, "
          f"longest live call {stats.slot_cpu_ms:.1f} ms CPU ({stats.slot_wall_ms:.1f} ms wall), "
          f"longest paint {view.paint_cpu_ms:.1f} ms CPU ({view.paint_wall_ms:.1f} ms wall)")
    assert source.sent >= 80  # over 3 s at 30 fps
    assert view.paints > 30  # the video was drawn at camera rate, not result rate
    assert len(gaps) > 100
    assert 0 < stats.slot_cpu_ms < 100, f"a live-mode call took {stats.slot_cpu_ms:.0f} ms of GUI-thread CPU"
    assert 0 < view.paint_cpu_ms < 100, f"a paint took {view.paint_cpu_ms:.0f} ms of GUI-thread CPU"


class FastFake:
    """A classifier answering in about 1 ms: the soak measures the pipeline, not the model.

    A batch (``on_result`` given) takes ``batch_s`` per chunk of ``batch_size`` and reports each item."""

    name = "fake"
    labels = ["a", "b", "c"]
    untrained = False
    export_pending = False  # no background ONNX export: what the worker joins when it stops

    def wait_for_export(self, timeout: float | None = None) -> bool:
        return True

    def __init__(self, size: tuple[int, int] = (32, 24), batch_s: float = 0.05) -> None:
        self.size, self.batch_s = size, batch_s

    def classify(self, inputs: list, top_k: int = 5, batch_size: int = 16, on_result: Any = None,
                 cancel: Any = None, **_: Any) -> list:
        from squeezelens.core.engine import Prediction, TopClass

        if on_result is not None:  # a batch job
            preds = []
            for start in range(0, len(inputs), batch_size):
                time.sleep(self.batch_s)
                for i in range(start, min(start + batch_size, len(inputs))):
                    preds.append(Prediction(str(inputs[i]), self.name, [TopClass(0, "a", 1.0)]))
                    on_result(i, preds[-1])
            return preds
        img = inputs[0]
        assert img.size == self.size
        time.sleep(0.001)
        return [Prediction("frame", self.name, [TopClass(0, "a", 0.7), TopClass(1, "b", 0.2),
                                                TopClass(2, "c", 0.1)])]

    @property
    def loaded(self) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(architecture="fake", untrained_reason=None, license=None)

    device = "cpu"
    backend = "onnxruntime"


def rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return peak / (1024 * 1024 if os.uname().sysname == "Darwin" else 1024)


SOAK_SIZE = (160, 120)  # 75 KiB a frame: keeping every frame would cost ~700 MB over the soak


def test_soak_10000_frames_no_memory_or_queue_growth(qtbot: Any) -> None:
    """10,000 frames, each with its own pixel buffer (as a camera's are), pushed as fast as the event
    loop takes them, through a view and a fast fake model: memory grows < 50 MB (a frame kept by mistake
    would add 75 KiB each, ~700 MB in all), never more than one frame waits or one wake-up queues, and
    results keep coming."""
    from PySide6.QtWidgets import QApplication

    from squeezelens.gui.camera_source import multimedia

    client, controller, source, raw = start_live(qtbot, FastFake(SOAK_SIZE), size=SOAK_SIZE)
    controller.start()
    source._timer.stop()  # drive it by hand, faster than 30 fps
    app = QApplication.instance()
    video_frame = multimedia().QVideoFrame
    worst_waiting = 0
    worst_queued = 0

    def push(n: int) -> None:
        nonlocal worst_waiting, worst_queued
        for _ in range(n):
            image = source.frames[source.sent % len(source.frames)].copy()  # a new buffer per frame
            source.sent += 1
            source.sink.setVideoFrame(video_frame(image))
            del image
            app.processEvents()
            worst_waiting = max(worst_waiting, controller.mailbox.pending)
            worst_queued = max(worst_queued, client.queued_live_jobs)

    try:
        push(500)  # warm-up: caches, first paints
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        push(9500)
        qtbot.waitUntil(lambda: controller.mailbox.pending == 0 and not controller.mailbox.wake_pending, timeout=5000)
        gc.collect()
        after = rss_mb()
        elapsed = time.perf_counter() - t0
    finally:
        controller.set_source(None)
        client.shutdown()
    seqs = [r.seq for r in raw]
    print(f"soak: {source.sent} frames in {elapsed:.1f} s, {len(raw)} results, {controller.mailbox.dropped} dropped, "
          f"RSS {before:.0f} -> {after:.0f} MB")
    assert source.sent >= 10_000
    assert after - before < 50, f"memory grew by {after - before:.0f} MB"
    assert worst_waiting <= 1 and worst_queued <= 1 and controller.max_pending_jobs <= 1
    assert len(raw) > 100
    assert all(b > a for a, b in zip(seqs, seqs[1:]))
    assert controller.mailbox.taken + controller.mailbox.dropped == controller.mailbox.put_count


def test_pause_freezes_the_frame_and_stops_classifying(qtbot: Any) -> None:
    client, controller, source, raw = start_live(qtbot, FastFake(), size=(32, 24), fps=60)
    controller.start()
    try:
        qtbot.waitUntil(lambda: len(raw) >= 3, timeout=WAIT_MS)
        controller.set_paused(True)
        qtbot.wait(100)  # a result in flight may still land
        frozen, n_results, n_taken = controller.last_frame, controller.stats.results, controller.mailbox.taken
        qtbot.wait(300)
        assert controller.last_frame is frozen and controller.mailbox.taken == n_taken
        assert controller.stats.results == n_results
        controller.set_paused(False)
        qtbot.waitUntil(lambda: controller.stats.results > 0 and controller.last_frame is not frozen, timeout=WAIT_MS)
    finally:
        controller.set_source(None)
        client.shutdown()


def test_frames_converted_only_when_classified(qtbot: Any) -> None:
    """``toImage()`` runs in the worker thread, once per classified frame, never for dropped frames."""
    from squeezelens.gui import camera_source

    calls: list[bool] = []

    class CountingFrame:
        def __init__(self, frame: Any) -> None:
            self._f = frame

        def __getattr__(self, name: str) -> Any:
            return getattr(self._f, name)

        def toImage(self) -> QImage:
            calls.append(threading.current_thread() is threading.main_thread())
            return self._f.toImage()

    client, controller, source, raw = start_live(qtbot, FastFake(), size=(32, 24), with_view=False)
    try:
        controller.running = True
        for _ in range(50):
            frame = camera_source.multimedia().QVideoFrame(source.frames[0])
            controller._on_frame(CountingFrame(frame))
        qtbot.waitUntil(lambda: controller.mailbox.pending == 0 and not controller.mailbox.wake_pending, timeout=5000)
        qtbot.waitUntil(lambda: len(raw) == controller.mailbox.taken, timeout=5000)
    finally:
        controller.set_source(None)
        client.shutdown()
    assert len(calls) == controller.mailbox.taken < 50
    assert not any(calls), "a frame was converted in the GUI thread"


def test_frame_to_pil_matches_qimage_to_pil() -> None:
    """The worker's fast unpacking of RGB32 frames gives the same pixels as the general conversion."""
    import numpy as np

    from squeezelens.gui.camera_source import multimedia
    from squeezelens.gui.dev_tools import SyntheticSource
    from squeezelens.gui.frame_mailbox import frame_to_pil
    from squeezelens.gui.qimage_convert import qimage_to_pil

    mm = multimedia()
    image = SyntheticSource(mm.QVideoSink(), size=(641, 480)).frames[7]  # odd width: row padding
    for frame in (mm.QVideoFrame(image), image, image.convertToFormat(QImage.Format.Format_RGB888),
                  image.convertToFormat(QImage.Format.Format_ARGB32)):
        fast = frame_to_pil(frame)
        assert fast.mode == "RGB" and fast.size == (641, 480)
        assert np.array_equal(np.asarray(fast), np.asarray(qimage_to_pil(image)))
    with pytest.raises(ValueError):
        frame_to_pil(QImage())


class OtherFake(FastFake):
    """A second model with other labels, for model switches."""

    name = "other"
    labels = ["x", "y"]

    def classify(self, inputs: list, top_k: int = 5, **kwargs: Any) -> list:
        from squeezelens.core.engine import Prediction, TopClass

        time.sleep(0.001)
        return [Prediction("frame", self.name, [TopClass(0, "x", 0.9), TopClass(1, "y", 0.1)])]


def test_model_switch_never_mixes_the_old_models_results(qtbot: Any) -> None:
    """Switching models mid-stream: no result of the old model is shown once the switch is asked for,
    and the smoothing starts again, so no old label is averaged into the new model's bars."""
    from squeezelens.gui.dev_tools import SyntheticSource
    from squeezelens.gui.live_controller import LiveController
    from squeezelens.gui.worker import InferenceClient, ModelSpec

    models = [FastFake(), OtherFake()]
    client = InferenceClient(lambda spec, progress, cancel: models.pop(0))
    client.load_model(ModelSpec())
    qtbot.waitUntil(lambda: client.model is not None, timeout=WAIT_MS)
    controller = LiveController(client, lambda: 5)
    controller.set_smoothing(5)
    shown: list[tuple[str, list[str], bool]] = []  # (model, labels, switch asked for yet)
    switched = [False]
    controller.resultReady.connect(
        lambda r, rows: shown.append((r.pred.model, [label for label, _ in rows], switched[0])))
    source = SyntheticSource(controller.sink, size=(32, 24), fps=60)
    controller.set_source(source)
    controller.start()
    try:
        qtbot.waitUntil(lambda: len(shown) >= 5, timeout=WAIT_MS)
        switched[0] = True
        client.load_model(ModelSpec(name="other"))  # live wake-ups already queued still run the old model
        qtbot.waitUntil(lambda: client.model is not None, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: sum(s for *_, s in shown) >= 5, timeout=WAIT_MS)
    finally:
        controller.set_source(None)
        client.shutdown()
    after = [(model, labels) for model, labels, s in shown if s]
    assert all(model == "other" for model, _ in after), after
    assert all(set(labels) <= {"x", "y"} for _, labels in after), after  # nothing smoothed in from "fake"
    assert all(model == "fake" for model, _, s in shown if not s)


def test_live_results_keep_coming_during_a_batch(qtbot: Any) -> None:
    """A folder being classified does not freeze live mode: the worker classifies the waiting camera
    frame between the batch's chunks, and still never more than one live wake-up queues."""
    client, controller, source, raw = start_live(qtbot, FastFake(batch_s=0.1), size=(32, 24), with_view=False)
    finished: list[bool] = []
    client.batchFinished.connect(lambda req, cancelled: finished.append(cancelled))
    during: list[Any] = []
    client.liveResult.connect(lambda r: during.append(r) if client.batch_running else None)
    queued: list[int] = []
    controller.start()
    try:
        qtbot.waitUntil(lambda: controller.stats.results >= 2, timeout=WAIT_MS)
        client.classify_batch([f"/nowhere/img{i}.jpg" for i in range(8 * 12)], 5)  # 12 chunks, ~1.2 s
        assert client.batch_running
        timer = QTimer(interval=5)
        timer.timeout.connect(lambda: queued.append(client.queued_live_jobs))
        timer.start()
        qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
        timer.stop()
        qtbot.waitUntil(lambda: controller.mailbox.pending == 0 and not controller.mailbox.wake_pending,
                        timeout=WAIT_MS)
    finally:
        controller.set_source(None)
        client.shutdown()
    assert finished == [False]
    assert len(during) >= 5, f"only {len(during)} live results while the batch ran"
    assert max(queued) <= 1 and controller.max_pending_jobs <= 1
    seqs = [r.seq for r in raw]
    assert all(b > a for a, b in zip(seqs, seqs[1:]))
    assert controller.mailbox.taken + controller.mailbox.dropped == controller.mailbox.put_count


def test_nv12_frames_like_a_real_camera(qtbot: Any) -> None:
    """Synthetic NV12 frames (what most webcams send): the worker converts them to the same picture
    as the RGB source (within YUV rounding), and live mode classifies them."""
    import numpy as np

    from squeezelens.gui.camera_source import multimedia
    from squeezelens.gui.dev_tools import SyntheticSource
    from squeezelens.gui.frame_mailbox import frame_to_pil

    mm = multimedia()
    sink = mm.QVideoSink()
    got: list[Any] = []
    sink.videoFrameChanged.connect(lambda f: got.append(mm.QVideoFrame(f)))
    source = SyntheticSource(sink, size=(320, 240), pixel_format="nv12")
    source.push_frame()
    frame = got[-1]
    assert frame.pixelFormat() == mm.QVideoFrameFormat.PixelFormat.Format_NV12
    rgb = np.asarray(frame_to_pil(frame), np.int16)
    want = np.asarray(frame_to_pil(source.frames[0]), np.int16)
    assert rgb.shape == want.shape == (240, 320, 3)
    assert np.abs(rgb - want).mean() < 4, np.abs(rgb - want).mean()
    with pytest.raises(ValueError):
        SyntheticSource(sink, pixel_format="yuyv")

    client, controller, source, raw = start_live(qtbot, FastFake((32, 24)), size=(32, 24))
    controller.set_source(SyntheticSource(controller.sink, size=(32, 24), fps=60, pixel_format="nv12"))
    controller.start()
    try:
        qtbot.waitUntil(lambda: controller.stats.results >= 3 and controller._test_view.paints > 3, timeout=WAIT_MS)
    finally:
        controller.set_source(None)
        client.shutdown()
    assert all(r.error is None for r in raw)
