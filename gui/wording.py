"""Plain-English wording shared by the windows: counts with the right plural (no "image(s)")."""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    """``"1 image"``, ``"6 images"``, ``"2 class folders"`` (English ``-s`` plurals only)."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_prob(p: float) -> str:
    """A probability as the results panel shows it: ``"0.1%"``, ``"41.3%"`` (one decimal, so a small one
    never reads as "0%")."""
    return f"{p * 100:.1f}%"
