"""Where SqueezeLens keeps its own files (exported graphs, feature caches): the user cache folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Overrides the cache folder (tests point it at a temp folder; a portable install may too).
CACHE_ENV = "SQUEEZELENS_CACHE_DIR"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """The user cache folder (``$SQUEEZELENS_CACHE_DIR``, else the platform's), or a subfolder of it.

    Linux ``$XDG_CACHE_HOME/squeezelens`` (``~/.cache/squeezelens``), macOS ``~/Library/Caches/SqueezeLens``,
    Windows ``%LOCALAPPDATA%\\SqueezeLens\\Cache``. Read at call time, so tests may change the variable.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        base = Path(override)
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "SqueezeLens" / "Cache"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "SqueezeLens"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "squeezelens"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


#: A Hugging Face hub cache (same layout) of weights shipped with an installer; searched before the user's.
BUNDLED_HUB_ENV = "SQUEEZELENS_BUNDLED_HUB"


def bundled_hub_cache() -> Path | None:
    """The bundled weights folder: ``$SQUEEZELENS_BUNDLED_HUB``, else ``hf-hub/`` inside a frozen app.

    packaging/build.py ``--weights`` fills it, so an installed app works offline from its first start.
    """
    override = os.environ.get(BUNDLED_HUB_ENV)
    if override:
        return Path(override)
    meipass = getattr(sys, "_MEIPASS", None) if getattr(sys, "frozen", False) else None
    if meipass and (Path(meipass) / "hf-hub").is_dir():
        return Path(meipass) / "hf-hub"
    return None
