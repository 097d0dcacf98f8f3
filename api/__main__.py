"""``python -m squeezelens`` and the console/GUI entry points."""

from __future__ import annotations

import sys


def run_gui(images: list[str]) -> int:
    """Open the desktop app; imported only now, so the CLI never loads Qt."""
    from .gui.app import run

    return run(images)


def main() -> int:
    from .core.cli import main as cli_main

    return cli_main(run_gui=run_gui)


def gui_main() -> int:
    from .core.cli import main as cli_main

    return cli_main(["gui", *sys.argv[1:]], run_gui=run_gui)


if __name__ == "__main__":
    sys.exit(main())
