"""Run mypy on the installed package layout: ``squeezelens`` (api/) and ``squeezelens.core`` must have
zero errors; ``--gui`` also checks ``squeezelens.gui`` (as far as the PySide6 stubs allow).

Settings are in pyproject.toml's ``[tool.mypy]``. Exit status is mypy's.
"""

from __future__ import annotations

import os
import subprocess
import sys

from package_layout import ROOT, installed_layout


def targets(gui: bool) -> list[str]:
    """mypy's ``-m``/``-p`` arguments: everything in api/ (the ``squeezelens`` package itself, its
    modules and subpackages such as the CLI) and ``squeezelens.core``; ``squeezelens.gui`` on request.

    (``-p squeezelens`` alone would take in the GUI too.)
    """
    out = ["-p", "squeezelens.core"] + (["-p", "squeezelens.gui"] if gui else [])
    for entry in sorted((ROOT / "api").iterdir()):
        if entry.name == "__init__.py":
            out += ["-m", "squeezelens"]
        elif entry.suffix == ".py":
            out += ["-m", f"squeezelens.{entry.stem}"]
        elif (entry / "__init__.py").is_file():
            out += ["-p", f"squeezelens.{entry.name}"]
    return out


def main(argv: list[str]) -> int:
    with installed_layout() as tmp:
        args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                "--cache-dir", os.path.join(tmp, ".mypy_cache"), *targets("--gui" in argv)]
        if "--gui" not in argv:  # gui modules that api/ imports lazily are read for types, not checked
            args.append("--follow-imports=silent")
        return subprocess.call(args, cwd=tmp, env=dict(os.environ, MYPYPATH=str(tmp)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
