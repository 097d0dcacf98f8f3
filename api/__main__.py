"""``python -m squeezelens`` and the console/GUI entry points (the command line is :mod:`squeezelens.cli`)."""

from __future__ import annotations

import sys


def main() -> int:
    """``squeezelens``: the command line; with no command, the desktop app."""
    from .cli import main as cli_main
    from .cli.gui import launch_app, qt_checks

    return cli_main(run_gui=launch_app, qt_checks=qt_checks)


def gui_main() -> int:
    """``squeezelens-gui``: the desktop app (or ``--self-test``), whatever the arguments look like."""
    from .cli import main as cli_main
    from .cli.gui import launch_app, qt_checks

    argv = sys.argv[1:] if sys.argv[1:2] == ["--self-test"] else ["gui", *sys.argv[1:]]
    return cli_main(argv, run_gui=launch_app, qt_checks=qt_checks)


if __name__ == "__main__":
    sys.exit(main())
