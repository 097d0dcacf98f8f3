"""import-linter contracts (core is Qt-free and knows neither gui nor cli; gui never imports torch, nor
the CLI) hold for the tree as it is, and break when a module breaks them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_kept() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "lint_imports.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout


def _unlink_folder(pkg: Path, sub: str) -> Path:
    """Turn the layout's link to a whole source folder into a folder of links, one per entry, so a
    module can be added to the layout without touching the repository."""
    link = pkg / sub
    source = link.resolve()
    link.unlink()
    link.mkdir()
    for entry in source.iterdir():
        if entry.name != "__pycache__":
            (link / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return link


def test_contracts_catch_imports_of_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """core importing squeezelens.cli, and gui reaching it through another module, both break a contract."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from lint_imports import lint
    from package_layout import installed_layout

    with installed_layout() as tmp:
        pkg = tmp / "squeezelens"
        (_unlink_folder(pkg, "core") / "leaky.py").write_text("from squeezelens.cli import main\n")
        # gui -> squeezelens.bridge -> squeezelens.cli.models: indirect, which the cli contract also forbids
        (pkg / "bridge.py").write_text("import squeezelens.cli.models\n")
        (_unlink_folder(pkg, "gui") / "leaky.py").write_text("import squeezelens.bridge\n")
        proc = lint(tmp, capture=True)
    report = proc.stdout + proc.stderr
    assert proc.returncode != 0, report
    assert "core is Qt-free and knows neither the GUI nor the command line BROKEN" in report
    assert "gui never imports the command line, not even through another module BROKEN" in report
    assert "gui never imports torch or timm directly KEPT" in report
    assert "1 kept, 2 broken" in report
    assert "squeezelens.core.leaky -> squeezelens.cli" in report
    assert "squeezelens.gui.leaky -> squeezelens.bridge" in report
