"""The checks in conftest.py fail a test that leaves background work running, and say where it started.

Each case runs in a pytest of its own (pytester, in a subprocess) with this folder's conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")

LEFTOVERS = '''
import threading, time
from PySide6.QtCore import QThread, QThreadPool, QTimer
from squeezelens.gui.tasks import start_task

LINGER_S = 1.5  # longer than the checks' grace, short enough to end before the session does


def test_python_thread(qtbot):
    threading.Thread(target=time.sleep, args=(LINGER_S,), name="leftover").start()


class Sleeper(QThread):
    def run(self):
        time.sleep(LINGER_S)


THREADS = []


def test_qthread(qtbot):
    THREADS.append(Sleeper())
    THREADS[-1].start()


def test_task(qtbot):
    start_task(lambda context: time.sleep(LINGER_S), name="leftover-task")


def test_pool_job(qtbot):
    QThreadPool.globalInstance().start(lambda: time.sleep(LINGER_S))


TIMERS = []


def test_timer(qtbot):
    TIMERS.append(QTimer(interval=60_000))
    TIMERS[-1].start()


def test_single_shot(qtbot):
    QTimer.singleShot(60_000, lambda: None)


def test_clean(qtbot):
    t = threading.Thread(target=time.sleep, args=(0.01,))
    t.start()
    t.join()


def test_last_waits_for_the_rest(qtbot):
    time.sleep(LINGER_S + 0.5)
    for t in THREADS:
        t.wait()
'''


def test_each_kind_of_leftover_fails_its_test_and_names_where_it_started(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_leftovers=LEFTOVERS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=8, errors=6)
    out = result.stdout.str()
    for name, what, line in [("test_python_thread", "Python thread(s)", "threading.Thread(target"),
                             ("test_qthread", "QThread(s)", "THREADS[-1].start()"),
                             ("test_task", "task(s)", "start_task(lambda context"),
                             ("test_pool_job", "thread pool(s) with jobs", "QThreadPool.globalInstance().start"),
                             ("test_timer", "QTimer(s)", "TIMERS[-1].start()"),
                             ("test_single_shot", "QTimer(s)", "QTimer.singleShot(60_000")]:
        section = out.split(f"ERROR at teardown of {name} ", 1)[1].split("ERROR at teardown of", 1)[0]
        assert f"{what} still running after the test; started at" in section, section[-3000:]
        assert "test_leftovers.py" in section and line in section, section[-3000:]
