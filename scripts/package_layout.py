"""The installed package layout (``squeezelens``, ``squeezelens.core``, ...) as links in a scratch folder.

The distribution maps top-level folders onto ``squeezelens.*`` (package-dir), which an editable
install resolves with an import hook; tools that walk folders instead (import-linter's graph
builder, mypy) would look for ``core`` inside ``api/``. So they are pointed at this scratch copy.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: squeezelens.<sub> -> the repository folder it is installed from (api/ itself is ``squeezelens``).
MAPPING = {"core": "core", "gui": "gui", "resources": "resources"}


@contextlib.contextmanager
def installed_layout() -> Iterator[Path]:
    """Yield a folder holding ``squeezelens/`` laid out as installed (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="squeezelens-layout-") as tmp:
        pkg = Path(tmp) / "squeezelens"
        pkg.mkdir()
        for entry in (ROOT / "api").iterdir():
            if entry.suffix == ".py" or (entry.is_dir() and (entry / "__init__.py").is_file()):
                (pkg / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        for sub, folder in MAPPING.items():
            (pkg / sub).symlink_to(ROOT / folder, target_is_directory=True)
        yield Path(tmp)
