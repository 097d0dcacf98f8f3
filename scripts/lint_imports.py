"""Run import-linter (the contracts in pyproject.toml) on the installed package layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from package_layout import ROOT, installed_layout


def main() -> int:
    with installed_layout() as tmp:
        path = os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env = dict(os.environ, PYTHONPATH=path)
        exe = Path(sys.executable).with_name("lint-imports")
        return subprocess.call([str(exe), str(ROOT / "pyproject.toml"), "--no-cache"], env=env, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
