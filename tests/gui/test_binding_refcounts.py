"""The Qt binding must not leak or drop references: PySide6 6.12.0's abi3 wheels on Python 3.11 drop
one reference to True per signal emit and one to None per void method call, which crashes a long
session in bool_dealloc. pyproject.toml pins below 6.12; this test keeps the pin honest."""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

CALLS = 3000


class _Emitter(QObject):
    fired = Signal(int)


def test_signal_emits_and_void_calls_keep_refcounts(qtbot: Any) -> None:
    emitter, label = _Emitter(), QLabel()
    qtbot.addWidget(label)
    received = []
    emitter.fired.connect(received.append)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(CALLS):
        emitter.fired.emit(i)
        label.setText("x")
    true_delta = sys.getrefcount(True) - true_before
    none_delta = sys.getrefcount(None) - none_before
    assert len(received) == CALLS
    # a broken binding moves these by -CALLS; other code may move them by a few
    assert abs(true_delta) < CALLS // 10, f"True lost {-true_delta} references over {CALLS} emits"
    assert abs(none_delta) < CALLS // 10, f"None lost {-none_delta} references over {CALLS} void calls"
