"""Run import-linter on the installed package layout.

The distribution maps top-level folders onto ``squeezelens.*`` (package-dir), which an editable
install resolves with an import hook; import-linter's graph builder walks folders instead, and would
look for ``core`` inside ``api/``. So lay the same mapping out as links in a scratch folder and
point it there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"core": "core", "gui": "gui", "resources": "resources"}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="squeezelens-lint-") as tmp:
        pkg = Path(tmp) / "squeezelens"
        pkg.mkdir()
        for entry in (ROOT / "api").iterdir():
            if entry.suffix == ".py":
                (pkg / entry.name).symlink_to(entry)
        for sub, folder in MAPPING.items():
            (pkg / sub).symlink_to(ROOT / folder, target_is_directory=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tmp, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        exe = Path(sys.executable).with_name("lint-imports")
        return subprocess.call([str(exe), str(ROOT / "pyproject.toml"), "--no-cache"], env=env, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
