"""Run import-linter (the contracts in pyproject.toml) on the installed package layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from package_layout import ROOT, installed_layout


def lint(layout: Path, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` with pyproject.toml's contracts on the ``squeezelens`` package in ``layout``.

    Args:
        layout: a folder holding ``squeezelens/`` (:func:`package_layout.installed_layout`).
        capture: keep the report in the result's ``stdout``/``stderr`` instead of printing it.
    """
    path = os.pathsep.join([str(layout), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = dict(os.environ, PYTHONPATH=path)
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), str(ROOT / "pyproject.toml"), "--no-cache"], env=env, cwd=layout,
                          capture_output=capture, text=True)


def main() -> int:
    with installed_layout() as tmp:
        return lint(tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
