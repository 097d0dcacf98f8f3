"""``squeezelens gui [IMAGE ...]`` (also plain ``squeezelens [IMAGE ...]``) and ``squeezelens --self-test``.

The app and the self-test's Qt checks come in as functions (:data:`GuiRunner`, :data:`QtChecks`):
the entry points (:mod:`squeezelens.__main__`) pass :func:`launch_app` and :func:`qt_checks`, which
import Qt only when called, so no other command loads it; tests pass fakes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from squeezelens.core import self_test
from squeezelens.core.errors import UsageError

#: Opens the desktop app with these images and returns the exit code.
GuiRunner = Callable[[list[str]], int]
#: The self-test's Qt checks (platform plugin, image formats, multimedia...), one (name, check) each.
QtChecks = Callable[[], list[self_test.Check]]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``gui`` on the CLI's subparsers."""
    g: argparse.ArgumentParser = subparsers.add_parser("gui", help="open the desktop app")
    g.add_argument("images", nargs="*", metavar="IMAGE")
    return g


def run(args: argparse.Namespace, run_gui: GuiRunner | None) -> int:
    """Open the desktop app on ``args.images`` through ``run_gui``; its exit code.

    Raises:
        UsageError: no ``run_gui`` was given (an entry point without the app).
    """
    if run_gui is None:
        raise UsageError("the desktop app is not available from this entry point; run `squeezelens`")
    return run_gui(list(args.images))


def run_self_test(qt_checks: QtChecks | None) -> int:
    """``--self-test``: 0 when every check passes, 1 (with a FAIL line each) when some do not.

    Qt checks that cannot even be listed (PySide6, or a Qt library it links, does not import) are one
    FAIL line; the Qt-free checks still run.
    """
    def qt_unavailable() -> str:
        raise self_test.SelfTestFailure("not checked: this entry point gave no Qt checks; run `squeezelens`")

    extra: list[self_test.Check]
    try:
        extra = qt_checks() if qt_checks is not None else [("Qt", qt_unavailable)]
    except Exception as e:  # PySide6, or a Qt library it links, does not import: a FAIL line, the rest still runs
        def qt_broken(error: Exception = e) -> str:
            raise self_test.SelfTestFailure(f"PySide6 does not import: {type(error).__name__}: {error}")

        extra = [("Qt", qt_broken)]
    return self_test.run(extra)


def launch_app(images: list[str]) -> int:
    """The real :data:`GuiRunner`: open the desktop app (Qt is imported only now)."""
    from squeezelens.gui.app import run as run_app

    return run_app(images)


def qt_checks() -> list[self_test.Check]:
    """The real :data:`QtChecks` (``squeezelens.gui.self_test_qt``; Qt is imported only now)."""
    from squeezelens.gui.self_test_qt import qt_checks as checks

    return checks()
