"""The GUI's background work besides the model: one way to start it, cancel it, hear from it and wait for it.

:class:`~squeezelens.gui.worker.InferenceWorker` owns the model in a thread of its own and stays the
only code that touches it. Everything else that must not run in the GUI thread (a finetune run, the
dataset preview scan, copying images into class folders, confusion-matrix thumbnails) is a
:class:`Task` started with :func:`start_task`: a superqt ``FunctionWorker`` (for a function) or
``GeneratorWorker`` (for a generator function) in ``QThreadPool.globalInstance()``.

* Cancelling is cooperative. The function is called with a :class:`TaskContext` whose ``cancel``
  event :meth:`Task.cancel` sets; the function checks it (core's scans, copies and runs all take such
  an event). A generator is, in addition, stopped at its next ``yield`` (superqt's ``quit``), and then
  answers neither ``on_result`` nor ``on_error``.
* Answers arrive in the GUI thread, in the order the task produced them: ``on_progress`` for each
  :meth:`TaskContext.progress` call (or each value a generator yields), then ``on_result`` with the
  return value or ``on_error`` with the exception, then ``on_finished``. A function that returns after
  a cancel still answers ``on_result``: its owner decides whether a late answer counts. Handlers that
  are methods of a QObject are not called once that QObject is deleted (a closed window); closures
  get the same guarantee from ``owner=`` (an answer queued before a window was deleted, delivered
  after, would otherwise touch its deleted widgets).
* Every task is registered from its start until its function has returned (:func:`running_tasks`).
  :func:`install_quit_hook` makes ``QCoreApplication.aboutToQuit`` cancel what is left and wait for it
  with a deadline (:func:`shutdown_tasks`); ``app.run`` ends the process at once only if something is
  still stuck in code that cannot be interrupted (see there).

Two things differ from superqt's ``WorkerBase``, each for a reason given where it is done: a task
starts at once (:meth:`_TaskWorker.start`), and warnings are not captured (:meth:`_TaskWorker.run`).
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QThreadPool, Signal
from superqt.utils import FunctionWorker, GeneratorWorker, WorkerBase
from superqt.utils._qthreading import GeneratorWorkerSignals  # the signals GeneratorWorker emits; not exported

#: At least this many pool threads: tasks mostly wait for disks, not CPUs, so a long finetune run and a
#: preview scan stuck on a dead network mount must not hold up a copy or the thumbnails (Qt's default is
#: one thread per CPU: two on a small laptop).
MIN_POOL_THREADS = 8
#: How long ``aboutToQuit`` waits for tasks still running after the windows have closed (theirs have
#: already waited within the main window's close budget; this is for the rest, e.g. thumbnails).
QUIT_WAIT_MS = 200

_lock = threading.Lock()
_running: dict[Task, None] = {}  # insertion-ordered set of the tasks whose function has not returned


class TaskContext:
    """What a task's function gets: the cancel event to check, and a way to report progress."""

    def __init__(self, report: Callable[[object], None]) -> None:
        self.cancel = threading.Event()
        self._report = report

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def progress(self, value: object) -> None:
        """Hand ``value`` to the task's ``on_progress`` in the GUI thread (queued: returns at once).

        Every call is delivered: thin out fast progress first (``core.progress_text.Throttle``).
        """
        self._report(value)


class Task:
    """A handle on one job started by :func:`start_task`: cancel it, wait for it, ask whether it is done."""

    def __init__(self, name: str, started_at: str) -> None:
        self.name = name
        #: where :func:`start_task` was called (a stack excerpt), for messages about work left running
        self.started_at = started_at
        self.context: TaskContext
        self._worker: _TaskWorker
        self._done = threading.Event()

    def __repr__(self) -> str:
        state = "done" if self.done else "cancelled" if self.cancelled else "running"
        return f"<Task {self.name} {state}>"

    def cancel(self) -> None:
        """Ask the task to stop (it sees ``context.cancel``; a generator also stops at its next ``yield``)."""
        self.context.cancel.set()
        if isinstance(self._worker, GeneratorWorker):
            self._worker.quit()

    @property
    def cancelled(self) -> bool:
        return self.context.cancel.is_set()

    @property
    def done(self) -> bool:
        """The function has returned (or raised): no more of the task's code runs, only answers wait."""
        return self._done.is_set()

    def wait(self, msecs: int) -> bool:
        """Block up to ``msecs`` ms (never forever) for the function to return; True when it has."""
        return self._done.wait(max(0, msecs) / 1000)

    def _finish(self) -> None:  # in the task's thread, as its very last step
        with _lock:
            _running.pop(self, None)
        self._done.set()


class _TaskSignals(GeneratorWorkerSignals):
    progressed = Signal(object)  # TaskContext.progress(value), emitted in the task's thread


class _TaskWorker(WorkerBase):
    """What :class:`FunctionWorker` and :class:`GeneratorWorker` share here (a mixin ahead of them)."""

    task: Task
    signals: _TaskSignals

    def start(self) -> None:
        """Into the global pool now.

        superqt's ``WorkerBase.start`` defers the start by a 1 ms ``QTimer`` when called from a running
        event loop; a task starts at once, so that cancelling and waiting right after starting (a newer
        scan replacing this one, the app quitting) finds it in the pool, and no timer is left pending.
        """
        WorkerBase._worker_set.add(self)  # superqt's strong reference until _finished reaches the GUI thread
        self._finished.connect(self._set_discard)
        pool = QThreadPool.globalInstance()
        if pool.maxThreadCount() < MIN_POOL_THREADS:
            pool.setMaxThreadCount(MIN_POOL_THREADS)
        pool.start(self)

    def run(self) -> None:
        """``WorkerBase.run`` without its ``warnings.catch_warnings()``.

        That swaps the process-wide warning filters and ``warnings.showwarning`` from a pool thread, which
        is not thread-safe (python/cpython#128384): with two tasks at once (a preview scan during a run)
        each restores the other's state, and every thread's warnings end up in one worker's signal. Here
        warnings go to stderr as they do everywhere else.
        """
        try:
            self.started.emit()
            self._running = True
            try:
                result = self.work()
                if isinstance(result, Exception):  # GeneratorWorker.work returns a RuntimeError it caught
                    raise result
            except Exception as e:  # noqa: BLE001 - handed to on_error in the GUI thread
                self.errored.emit(e)
            else:
                if not self.abort_requested:
                    self.returned.emit(result)
            finally:
                if isinstance(self, GeneratorWorker):
                    self._gen.close()  # a quit generator's `finally:` runs here, in its own thread
            self._running = False
            self.finished.emit()
            self._finished.emit(self)
        finally:
            self.task._finish()


class _FunctionTask(_TaskWorker, FunctionWorker):
    def __init__(self, task: Task, function: Callable[[TaskContext], Any]) -> None:
        FunctionWorker.__init__(self, function)
        self.signals = _TaskSignals()  # FunctionWorker takes no SignalsClass; this one adds `progressed`
        self.task = task
        task.context = TaskContext(self.signals.progressed.emit)
        self._args = (task.context,)


class _GeneratorTask(_TaskWorker, GeneratorWorker):
    def __init__(self, task: Task, function: Callable[[TaskContext], Generator[Any, Any, Any]]) -> None:
        task.context = TaskContext(lambda value: self.signals.progressed.emit(value))
        GeneratorWorker.__init__(self, function, task.context, SignalsClass=_TaskSignals)
        self.task = task


def start_task(
    function: Callable[[TaskContext], Any],
    *,
    name: str,
    on_result: Callable[[Any], Any] | None = None,
    on_error: Callable[[Exception], Any] | None = None,
    on_progress: Callable[[Any], Any] | None = None,
    on_finished: Callable[[], Any] | None = None,
    owner: QObject | None = None,
) -> Task:
    """Run ``function(context)`` in the global thread pool; call from the GUI thread.

    Args:
        function: a function, or a generator function whose every yielded value goes to ``on_progress``,
            called with the task's :class:`TaskContext` (bind other arguments with ``functools.partial``).
        name: what the task does, in messages about work left running (e.g. ``"finetune-preview-scan"``).
        on_result: called with the return value (for a generator: the value it returns).
        on_error: called with the exception the function raised; without it the exception goes to
            ``sys.excepthook`` (a bug: a traceback on stderr, and a failed test under pytest-qt).
        on_progress: called with each ``context.progress(value)`` or yielded value.
        on_finished: called last, whatever happened (also after a generator was stopped).
        owner: the widget the handlers act on; once it is deleted none of the given handlers is called
            (``on_error`` included: the error has nowhere left to be shown). Without ``on_error`` an
            exception still goes to ``sys.excepthook``.

    Returns:
        The running task (registered until its function returns).
    """
    task = Task(name, _caller_stack())
    worker: _TaskWorker
    if inspect.isgeneratorfunction(function):
        worker = _GeneratorTask(task, function)
    else:
        worker = _FunctionTask(task, function)
    task._worker = worker
    signals = worker.signals
    if owner is not None:  # not the default error handler: it touches no widget, and a bug must show
        on_progress, on_result, on_error, on_finished = (
            _while_alive(owner, h) for h in (on_progress, on_result, on_error, on_finished))
    if on_progress is not None:
        signals.progressed.connect(on_progress)
        signals.yielded.connect(on_progress)  # only a generator's worker emits it
    if on_result is not None:
        signals.returned.connect(on_result)
    signals.errored.connect(on_error if on_error is not None else _unhandled)
    if on_finished is not None:
        signals.finished.connect(on_finished)
    with _lock:
        _running[task] = None
    worker.start()
    return task


def _while_alive(owner: QObject, handler: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """``handler``, called only while ``owner``'s C++ object exists."""
    if handler is None:
        return None
    call = handler

    def guarded(*args: Any) -> Any:
        if shiboken6.isValid(owner):
            return call(*args)
        return None

    return guarded


def _caller_stack() -> str:
    """The frames that led to :func:`start_task`, without libraries' (an event loop, a test runner)."""
    frames = [f for f in traceback.extract_stack()[:-2]
              if "site-packages" not in f.filename and not f.filename.startswith("<")]
    return "".join(traceback.format_list(frames[-8:]))


def _unhandled(error: Exception) -> None:
    sys.excepthook(type(error), error, error.__traceback__)


def running_tasks() -> list[Task]:
    """The tasks whose function has not returned yet, oldest first."""
    with _lock:
        return list(_running)


def shutdown_tasks(timeout_ms: int) -> bool:
    """Cancel every running task and wait for them all, at most ``timeout_ms`` ms in total.

    Returns:
        True when none is left running.
    """
    deadline = time.monotonic() + max(0, timeout_ms) / 1000
    tasks = running_tasks()
    for task in tasks:
        task.cancel()
    for task in tasks:
        task.wait(int((deadline - time.monotonic()) * 1000))
    return not running_tasks()


def install_quit_hook(app: QCoreApplication, timeout_ms: int = QUIT_WAIT_MS) -> None:
    """On ``app.aboutToQuit``, cancel the tasks still running and wait up to ``timeout_ms`` ms for them.

    Idempotent: a second call for the same application changes nothing.
    """
    if app.property("squeezelens_tasks_hooked"):
        return
    app.setProperty("squeezelens_tasks_hooked", True)
    app.aboutToQuit.connect(lambda: shutdown_tasks(timeout_ms))
