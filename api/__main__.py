"""``python -m squeezelens`` and the console/GUI entry points."""

from __future__ import annotations

import sys


def run_gui(images: list[str]) -> int:
    """Open the desktop app; imported only now, so the CLI never loads Qt."""
    from .gui.app import run

    return run(images)


def qt_checks() -> list:
    """The self-test's Qt checks; imported only for ``--self-test``, so the CLI never loads Qt otherwise."""
    from .gui.self_test_qt import qt_checks as checks

    return checks()


def main() -> int:
    from .core.cli import main as cli_main

    return cli_main(run_gui=run_gui, qt_checks=qt_checks)


def gui_main() -> int:
    from .core.cli import main as cli_main

    argv = sys.argv[1:] if sys.argv[1:2] == ["--self-test"] else ["gui", *sys.argv[1:]]
    return cli_main(argv, run_gui=run_gui, qt_checks=qt_checks)


if __name__ == "__main__":
    sys.exit(main())
