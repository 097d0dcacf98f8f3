"""Signals emitted from background threads whose Qt owner may already be gone."""

from __future__ import annotations

from typing import Any


def emit_unless_deleted(owner: Any, signal: str, *args: Any) -> None:
    """Emit ``owner.<signal>(*args)``; if its window closed (and deleted ``owner``) meanwhile, nobody listens."""
    try:
        getattr(owner, signal).emit(*args)
    except RuntimeError:  # "Signal source has been deleted"
        pass
