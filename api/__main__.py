"""``python -m squeezelens`` and the console/GUI entry points."""

from __future__ import annotations

import sys


def main() -> int:
    from .core.cli import main as cli_main

    return cli_main()


def gui_main() -> int:
    from .core.cli import main as cli_main

    return cli_main(["gui", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
