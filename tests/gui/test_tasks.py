"""The background-task mechanism (gui/tasks.py): answers in the GUI thread and in order, cooperative
cancellation of functions and generators, errors, the registry, the quit hook, and the process-wide
state superqt's own worker loop would change."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QThreadPool, QTimer

from squeezelens.gui.tasks import (
    MIN_POOL_THREADS,
    TaskContext,
    install_quit_hook,
    running_tasks,
    shutdown_tasks,
    start_task,
)


def in_gui_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def test_answers_arrive_in_the_gui_thread_in_the_order_they_were_given(qtbot: Any) -> None:
    seen: list[tuple[str, Any, bool]] = []

    def work(context: TaskContext) -> str:
        for i in range(5):
            context.progress(i)
        return "done"

    task = start_task(work, name="count",
                      on_progress=lambda v: seen.append(("progress", v, in_gui_thread())),
                      on_result=lambda v: seen.append(("result", v, in_gui_thread())),
                      on_finished=lambda: seen.append(("finished", None, in_gui_thread())))
    assert task.wait(5000)
    qtbot.waitUntil(lambda: len(seen) == 7, timeout=5000)
    assert seen == [("progress", i, True) for i in range(5)] + [("result", "done", True), ("finished", None, True)]
    assert task not in running_tasks()


def test_closures_are_not_called_once_their_owner_is_deleted(qtbot: Any) -> None:
    """An answer queued while the owner lived and delivered after it was deleted (a window closed at the
    end of a run) must not reach its widgets: the version panel's rollback once raised 'Internal C++
    object already deleted' from its on_finished closure this way."""
    from PySide6.QtWidgets import QPushButton, QWidget

    owner, kept = QWidget(), QWidget()
    button = QPushButton(owner)
    calls: list[str] = []
    release = threading.Event()

    def work(context: TaskContext) -> str:
        release.wait(10)
        context.progress(1)
        return "done"

    def touch(name: str) -> Any:
        return lambda *_: (button.setEnabled(True), calls.append(name))

    gone = start_task(work, name="owner-deleted", on_progress=touch("progress"), on_result=touch("result"),
                      on_finished=touch("finished"), owner=owner)
    alive = start_task(work, name="owner-alive", on_result=lambda _: calls.append("alive"), owner=kept)
    release.set()
    assert gone.wait(5000) and alive.wait(5000)  # the answers are queued now, not yet delivered
    import shiboken6

    shiboken6.delete(owner)  # the window is gone, its answers still queued
    qtbot.waitUntil(lambda: "alive" in calls, timeout=5000)
    QCoreApplication.processEvents()
    assert calls == ["alive"]
    kept.deleteLater()


def test_a_cancelled_function_still_answers_and_its_owner_decides(qtbot: Any) -> None:
    results: list[str] = []

    def work(context: TaskContext) -> str:
        context.cancel.wait(10)
        return "stopped" if context.cancelled else "timed out"

    task = start_task(work, name="cooperative", on_result=results.append)
    task.cancel()
    assert task.wait(5000) and task.cancelled
    qtbot.waitUntil(lambda: results == ["stopped"], timeout=5000)


def test_a_cancelled_generator_stops_at_its_next_yield_without_an_answer(qtbot: Any) -> None:
    answers: list[Any] = []
    ended_in: list[bool] = []
    finished: list[bool] = []

    def endless(context: TaskContext) -> Iterator[int]:
        try:
            i = 0
            while True:
                time.sleep(0.005)
                yield i
                i += 1
        finally:
            ended_in.append(in_gui_thread())

    task = start_task(endless, name="endless", on_progress=lambda v: None, on_result=answers.append,
                      on_error=answers.append, on_finished=lambda: finished.append(True))
    time.sleep(0.05)
    task.cancel()
    assert task.wait(5000)
    qtbot.waitUntil(lambda: finished == [True], timeout=5000)
    assert answers == []
    assert ended_in == [False]  # the generator was closed (its `finally:` ran) in its own thread


def test_errors_go_to_on_error_or_else_to_sys_excepthook(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(context: TaskContext) -> None:
        raise OSError("disk gone")

    errors: list[BaseException] = []
    start_task(boom, name="boom", on_error=errors.append).wait(5000)
    hooked: list[BaseException] = []
    monkeypatch.setattr("sys.excepthook", lambda kind, error, tb: hooked.append(error))
    start_task(boom, name="boom").wait(5000)
    qtbot.waitUntil(lambda: len(errors) == len(hooked) == 1, timeout=5000)
    assert isinstance(errors[0], OSError) and str(hooked[0]) == "disk gone"


def test_shutdown_cancels_and_waits_no_longer_than_its_deadline(qtbot: Any) -> None:
    release = threading.Event()

    def cooperative(context: TaskContext) -> None:
        context.cancel.wait(10)

    def stuck(context: TaskContext) -> None:  # inside something that cannot be interrupted
        release.wait(10)

    polite = start_task(cooperative, name="cooperative")
    rude = start_task(stuck, name="stuck")
    t0 = time.monotonic()
    assert not shutdown_tasks(300)
    assert 0.25 < time.monotonic() - t0 < 1.5
    assert polite.done and polite.cancelled
    assert running_tasks() == [rude] and rude.cancelled
    release.set()
    assert rude.wait(5000) and shutdown_tasks(0)


def test_the_quit_hook_cancels_and_awaits_the_tasks(qtbot: Any) -> None:
    app = QCoreApplication.instance()
    assert app is not None
    install_quit_hook(app)
    install_quit_hook(app)  # once per application

    def cooperative(context: TaskContext) -> None:
        context.cancel.wait(10)

    task = start_task(cooperative, name="cooperative")
    app.aboutToQuit.emit()
    assert task.done and task.cancelled


def test_tasks_do_not_wait_for_each_other_on_a_small_machine(qtbot: Any) -> None:
    """A long run and a stuck scan must not hold up a copy, even where Qt's pool has one thread per CPU."""
    release = threading.Event()
    blockers = [start_task(lambda context: release.wait(10), name=f"blocker {i}") for i in range(3)]
    quick = start_task(lambda context: None, name="quick")
    try:
        assert quick.wait(3000), "a task waited for others to finish"
    finally:
        release.set()
    assert all(b.wait(5000) for b in blockers)
    assert QThreadPool.globalInstance().maxThreadCount() >= MIN_POOL_THREADS


def test_tasks_leave_the_process_warning_state_alone(qtbot: Any) -> None:
    """superqt's own worker loop swaps the process-wide warning filters and ``showwarning`` while it runs,
    which two tasks at once would restore in the wrong order (python/cpython#128384)."""
    filters, show = list(warnings.filters), warnings.showwarning
    started, release = threading.Event(), threading.Event()

    def work(context: TaskContext) -> None:
        started.set()
        release.wait(10)

    task = start_task(work, name="waits")
    try:
        assert started.wait(5)
        assert warnings.showwarning is show and warnings.filters == filters
    finally:
        release.set()
    assert task.wait(5000)


def test_a_task_started_inside_the_event_loop_runs_at_once(qtbot: Any) -> None:
    """superqt defers a start made inside a running event loop by a 1 ms QTimer; a task is in the pool at once,
    so waiting for it right away (a newer scan replacing it, the app quitting) does not wait for nothing."""
    waited: list[bool] = []

    def from_a_slot() -> None:
        task = start_task(lambda context: None, name="at once")
        waited.append(task.wait(2000))

    QTimer.singleShot(0, from_a_slot)
    qtbot.waitUntil(lambda: bool(waited), timeout=5000)
    assert waited == [True]
