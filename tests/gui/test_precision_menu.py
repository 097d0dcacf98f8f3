"""Model > Precision: the saved precision is checked, choosing another saves it and loads the model
again with it (the spec the worker's loader gets), and a hand-edited value reads back as fp32."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from squeezelens.gui.settings import AppSettings

WAIT_MS = 60_000


def test_precision_menu_saves_and_reloads(qtbot: Any, make_window: Any, classifier: Any) -> None:
    specs: list[Any] = []

    def loader(spec: Any, progress: Any, cancel: threading.Event) -> Any:
        specs.append(spec)
        return classifier

    window = make_window(loader=loader)
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    checked = [a.data() for a in window.precision_group.actions() if a.isChecked()]
    assert checked == [window.settings.precision] == ["fp32"] and specs[-1].precision == "fp32"

    int8 = next(a for a in window.precision_group.actions() if a.data() == "int8")
    int8.trigger()
    qtbot.waitUntil(lambda: len(specs) == 2, timeout=WAIT_MS)
    assert specs[-1].precision == "int8" and window.settings.precision == "int8"
    int8.trigger()  # the same again: no reload
    qtbot.wait(100)
    assert len(specs) == 2


def test_bad_stored_precision_reads_as_the_default(tmp_path: Path) -> None:
    path = tmp_path / "s.ini"
    path.write_text("[General]\nprecision=fp64\n")
    assert AppSettings(QSettings(str(path), QSettings.Format.IniFormat)).precision == "fp32"
