"""What the screenshot scripts share (window, camera, Finetune window, issue 16's views): the dark
palette they show under Xvfb, an event-loop wait, the made-up shapes dataset, and the exit.

Not a user feature. The scripts import it as a sibling (``python scripts/X.py`` puts scripts/ on sys.path).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def apply_dark_palette(app: Any) -> None:
    """Fusion with a dark palette, as a dark desktop gives (Xvfb has no theme to follow); disabled
    controls get a disabled colour, so a running window's Start does not look clickable."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    app.styleHints().setColorScheme(Qt.ColorScheme.Dark)
    pal = QPalette()
    R = QPalette.ColorRole
    for role, colour in ((R.Window, "#2b2b2b"), (R.WindowText, "#e6e6e6"), (R.Base, "#1f1f1f"),
                         (R.AlternateBase, "#353535"), (R.Text, "#e6e6e6"), (R.Button, "#353535"),
                         (R.ButtonText, "#e6e6e6"), (R.Highlight, "#3d8ee6"), (R.HighlightedText, "#ffffff"),
                         (R.Mid, "#5a5a5a"), (R.PlaceholderText, "#a0a0a0"), (R.ToolTipBase, "#353535"),
                         (R.ToolTipText, "#e6e6e6")):
        pal.setColor(role, QColor(colour))
    for role in (R.WindowText, R.Text, R.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#808080"))
    app.setPalette(pal)


def spin(app: Any, done: Callable[[], object], seconds: float) -> bool:
    """Run ``app``'s events until ``done()`` is true or ``seconds`` pass; whether it is true."""
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    return bool(done())


def shapes_dataset() -> Any:
    """``tests/core/shapes_dataset.py`` (made-up classes of shapes and textures), loaded by path."""
    spec = importlib.util.spec_from_file_location("shapes_dataset", ROOT / "tests" / "core" / "shapes_dataset.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def exit_now(code: int) -> None:
    """As ``app.run``: a worker still inside ``import timm`` (slow on a busy machine) cannot be stopped, and
    letting Python exit would destroy its running QThread (abort): end the process, scratch already removed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
