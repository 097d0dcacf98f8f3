"""GUI test fixtures: isolated settings, a shared model, windows that are always shut down, and checks
that fail any test which leaves background work running (after napari's ``_dangling_qthreads`` and
friends): QThreads, thread-pool jobs (superqt workers, our tasks), active QTimers and Python threads.

Each check records where the thing was started (by wrapping ``start`` during the test) and names that
place in its failure. Work a fixture owns is stopped by that fixture's teardown, which runs first.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shiboken6
from PIL import Image
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSettings, QThread, QThreadPool, QTimer

ARCH = "seresnext26d_32x4d"
#: How long a check lets something it found still finish (a thread returning from its last line)
#: before it counts as left running. Work that was really left behind runs far longer.
GRACE_S = 0.5


def _started_here() -> str:
    """Where the wrapped ``start`` was called: the stack without pytest's own frames and this wrapper's."""
    frames = traceback.extract_stack()[:-2]
    ours = [f for f in frames if not any(part in f.filename for part in ("/_pytest/", "/pluggy/", "/pytestqt/"))]
    return "".join(traceback.format_list(ours[-10:]))


def _settle() -> None:
    """Deliver queued answers and delete what was ``deleteLater``-ed (closed test windows and their timers).

    ``processEvents`` alone never deletes: deferred deletes wait for an event loop (pytest-qt runs none
    between tests).
    """
    for _ in range(3):
        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _fail(what: str, places: list[str]) -> None:
    raise AssertionError(f"{len(places)} {what} still running after the test; started at:\n\n"
                         + "\n---\n".join(places))


@pytest.fixture(autouse=True)
def _dangling_qthreads(monkeypatch: pytest.MonkeyPatch, qtbot: Any) -> Iterator[None]:
    """Fail the test if a QThread it started is still running at its end."""
    started: weakref.WeakKeyDictionary[QThread, str] = weakref.WeakKeyDictionary()
    base_start = QThread.start

    def start(self: QThread, *args: Any) -> None:
        started[self] = _started_here()
        base_start(self, *args)

    monkeypatch.setattr(QThread, "start", start)
    yield
    _settle()
    deadline = time.monotonic() + GRACE_S
    dangling = []
    for thread, where in list(started.items()):
        try:
            if thread.isRunning() and not thread.wait(max(0, int((deadline - time.monotonic()) * 1000))):
                dangling.append(where)
        except RuntimeError:  # the C++ object is already gone: not running
            pass
    if dangling:
        _fail("QThread(s)", dangling)


@pytest.fixture(autouse=True)
def _dangling_pool_jobs(monkeypatch: pytest.MonkeyPatch, qtbot: Any) -> Iterator[None]:
    """Fail the test if a job it put in a QThreadPool (the global one: superqt workers and our tasks, or a
    private one) is still running or waiting at its end; tasks are named with where they were started."""
    from superqt.utils import WorkerBase

    from squeezelens.gui.tasks import running_tasks

    # not weak: QThreadPool.globalInstance() hands out a new wrapper each time, gone after the statement
    pools: dict[QThreadPool, list[str]] = {}
    base_start = QThreadPool.start

    def start(self: QThreadPool, runnable: Any, priority: int = 0) -> None:
        pools.setdefault(self, []).append(_started_here())
        base_start(self, runnable, priority)

    monkeypatch.setattr(QThreadPool, "start", start)
    before, workers_before = set(running_tasks()), set(WorkerBase._worker_set)
    yield
    _settle()
    deadline = time.monotonic() + GRACE_S
    tasks = [t for t in running_tasks() if t not in before]
    for task in tasks:
        task.wait(int((deadline - time.monotonic()) * 1000))
    left = [t for t in tasks if not t.done]
    if left:
        _fail("task(s)", [f"{t!r}\n{t.started_at}" for t in left])
    busy = []
    for pool, places in list(pools.items()):
        try:
            if not pool.waitForDone(max(0, int((deadline - time.monotonic()) * 1000))):
                busy.append("".join(dict.fromkeys(places)))  # each place once (a loader starts many jobs)
        except RuntimeError:  # a private pool deleted with its owner: it waited for its jobs then
            pass
    if busy:
        _fail("thread pool(s) with jobs", busy)
    _settle()  # the finished superqt workers' last signal: superqt lets go of them
    kept = WorkerBase._worker_set - workers_before
    assert not kept, f"superqt workers not released after the test: {kept}"


@pytest.fixture(autouse=True)
def _dangling_qtimers(monkeypatch: pytest.MonkeyPatch, qtbot: Any) -> Iterator[None]:
    """Fail the test if a QTimer started during it (``start()`` or ``QTimer.singleShot``) is still pending
    at its end, its owner still alive (a deleted owner takes its timers with it)."""
    timers: weakref.WeakKeyDictionary[QTimer, str] = weakref.WeakKeyDictionary()
    single_shots: list[tuple[list[bool], QObject | None, str]] = []  # (fired?, context object, where)
    base_start = QTimer.start
    base_single_shot = QTimer.singleShot

    def start(self: QTimer, *args: Any) -> None:
        timers[self] = _started_here()
        base_start(self, *args)

    def single_shot(msec: int, *args: Any) -> None:
        functor = args[-1]
        if not callable(functor):  # (msec, [timerType,] receiver, b"SLOT"): not checked
            base_single_shot(msec, *args)
            return
        context = args[0] if len(args) == 2 else getattr(functor, "__self__", None)  # (msec, [context,] functor)
        context = context if isinstance(context, QObject) else None  # a QObject's method: it stays the context
        fired = [False]

        def call() -> None:
            fired[0] = True
            functor()

        single_shots.append((fired, context, _started_here()))
        if context is None:
            base_single_shot(msec, call)
        else:
            base_single_shot(msec, context, call)

    monkeypatch.setattr(QTimer, "start", start)
    monkeypatch.setattr(QTimer, "singleShot", staticmethod(single_shot))
    yield
    _settle()
    active = []
    for timer, where in list(timers.items()):
        try:
            if timer.isActive():
                active.append(where)
                timer.stop()
        except RuntimeError:  # deleted with its owner
            pass
    active += [where for fired, context, where in single_shots
               if not fired[0] and (context is None or shiboken6.isValid(context))]
    if active:
        _fail("QTimer(s)", active)


@pytest.fixture(autouse=True)
def _dangling_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if a Python thread started during it is still alive at its end."""
    started: dict[threading.Thread, str] = {}
    base_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started[self] = _started_here()
        base_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    yield
    deadline = time.monotonic() + GRACE_S
    alive = []
    for thread, where in started.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            alive.append(f"{thread.name}\n{where}")
    if alive:
        _fail("Python thread(s)", alive)


@pytest.fixture(autouse=True)
def _no_unanswered_modal_boxes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail, instead of hanging for ever, when a test reaches one of QMessageBox's modal static boxes.

    Offscreen nobody clicks: ``QMessageBox.question`` & co. run a nested event loop that never returns
    (tests/gui/test_finetune_issue14.py hung that way in pytest-qt's close of a window mid-run). A test
    that expects a box patches it (or the window's ``_confirm``) itself; its patch replaces this one.
    """
    from PySide6.QtWidgets import QMessageBox

    def unanswered(name: str) -> Callable[..., Any]:
        def box(*args: Any, **kwargs: Any) -> Any:
            shown = [a for a in args[1:3] if isinstance(a, str)]
            raise AssertionError(f"a modal QMessageBox.{name} was shown and nobody would answer it: {shown}")

        return box

    for name in ("question", "warning", "critical", "information", "about"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(unanswered(name)))


@pytest.fixture(autouse=True)
def _private_settings(tmp_path: Path) -> None:
    """QSettings (INI, user scope) in this test's temp folder: never the developer's own settings."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))


@pytest.fixture(scope="session")
def classifier(confident_weights: Path) -> Any:
    """One real seresnext26d_32x4d (seed-0 weights with a confident head) shared by the GUI tests."""
    from squeezelens.core.engine import Classifier

    return Classifier.load(ARCH, weights=confident_weights, device="cpu", backend="torch")


@pytest.fixture(scope="session")
def onnx_classifier(confident_weights: Path) -> Any:
    """The same model on ONNX Runtime, the app's default backend on a CPU (exported once per session,
    into the private cache of the test that first asks for it)."""
    from squeezelens.core.engine import Classifier

    clf = Classifier.load(ARCH, weights=confident_weights, device="cpu", backend="onnxruntime")
    assert clf.backend == "onnxruntime", clf.backend_note
    return clf


@pytest.fixture(scope="session")
def untrained_classifier() -> Any:
    from squeezelens.core.engine import Classifier

    return Classifier.load(ARCH, device="cpu", backend="torch", allow_download=False)


@contextlib.contextmanager
def objects_frozen_as_in_the_app() -> Iterator[None]:
    """Freeze the objects alive now out of garbage collection while a wall-clock gap is measured, then thaw them.

    The app freezes what its imports made (``core.model_stack.freeze_imported_objects``), so a full
    collection there scans little. This process also holds every earlier test's objects (about 700,000 late
    in the suite, 0.7 s per full collection); one that runs mid-measurement would charge that pause,
    which the app does not have, to the code under test."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def watch_gaps(qtbot: Any, seconds: float = 0.5, *, action: Callable[[], Any] | None = None,
               sample: Callable[[], Any] | None = None) -> list[float]:
    """Run a 10 ms timer in the GUI thread for ``seconds`` and return the gaps between its ticks (seconds):
    ``action`` is called once the timer runs, ``sample`` at each tick. This process's objects are frozen
    out of garbage collection meanwhile, as the app's are (:func:`objects_frozen_as_in_the_app`)."""
    with objects_frozen_as_in_the_app():
        stamps = [time.perf_counter()]

        def tick() -> None:
            stamps.append(time.perf_counter())
            if sample is not None:
                sample()

        timer = QTimer(interval=10)
        timer.timeout.connect(tick)
        timer.start()
        if action is not None:
            action()
        qtbot.wait(int(seconds * 1000))
        timer.stop()
        stamps.append(time.perf_counter())
    return [b - a for a, b in zip(stamps, stamps[1:])]


class SlowClassifier:
    """A classifier that takes at least ``delay`` seconds per input: time for tests to act mid-work."""

    def __init__(self, clf: Any, delay: float) -> None:
        self._clf = clf
        self.delay = delay
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clf, name)

    def classify(self, inputs: Any, *args: Any, on_result: Any = None, **kwargs: Any) -> Any:
        self.calls += 1
        if on_result is None:
            time.sleep(self.delay * len(inputs))
            return self._clf.classify(inputs, *args, **kwargs)

        def slow(i: int, pred: Any) -> None:
            time.sleep(self.delay)
            on_result(i, pred)

        return self._clf.classify(inputs, *args, on_result=slow, **kwargs)


class Renamed:
    """A classifier that answers under another model name (to tell two loaded models apart)."""

    def __init__(self, clf: Any, name: str) -> None:
        self._clf = clf
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._clf, attr)

    def classify(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        preds = self._clf.classify(inputs, *args, **kwargs)
        for p in preds:
            p.model = self.name
        return preds


def fixed_loader(clf: Any) -> Callable[..., Any]:
    """A worker loader that hands out an already loaded classifier (no model build per test)."""

    def load(spec: Any, progress: Any, cancel: threading.Event) -> Any:
        return clf

    return load


@pytest.fixture
def make_window(qtbot: Any, classifier: Any) -> Iterator[Callable[..., Any]]:
    """``make_window(loader=None, images=None)``: a shown, started MainWindow, closed at teardown."""
    from squeezelens.gui.app import create_app
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import AppSettings
    from squeezelens.gui.worker import InferenceClient

    create_app()  # names, icon: what the real start-up sets on pytest-qt's QApplication
    windows = []

    def make(loader: Callable[..., Any] | None = None, images: list[str] | None = None, start: bool = True) -> Any:
        client = InferenceClient(loader or fixed_loader(classifier))
        window = MainWindow(client, AppSettings())
        windows.append(window)
        window.show()
        if start:
            window.start(images)
        return window

    yield make
    from squeezelens.gui.tasks import running_tasks

    for window in windows:
        window.close()
        # the private pool (display decoding) and the copies must be idle too, not only the worker
        assert window.loader._pool.activeThreadCount() == 0, "display decoding still running after close"
        assert not [t for t in running_tasks() if t.name == "copy-to-class-folders"], \
            "a copy to class folders still running after close"
    for window in windows:
        # Closing waits for the worker within the app's close budget (1.8 s), which a batch of 8 on a busy
        # 2-core machine can exceed; the fixture owns the worker, so it waits for it to stop here.
        qtbot.waitUntil(lambda w=window: not w.client.running, timeout=30_000)
        window.deleteLater()  # with its timers (a notice fading out)


@pytest.fixture(scope="session")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 24 small made-up photos (JPEG and PNG) and one broken file in the middle."""
    rng = np.random.default_rng(1)
    d = tmp_path_factory.mktemp("many")
    for i in range(24):
        arr = rng.integers(0, 256, (48 + i, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(d / f"img{i:02d}.{'jpg' if i % 2 else 'png'}")
    (d / "img12_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d
