"""``--shard I/N``: a deterministic 1/N of a run's inputs, so N machines (a SLURM job array, a few
hosts) split one folder with no coordination.

Round-robin over the inputs sorted by their path text: shard ``I`` takes positions ``I, I+N, I+2N...``.
The N shards partition the (de-duplicated) list: every input lands in exactly one, with no padding,
and shard sizes differ by at most one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import UsageError

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)``, with ``0 <= I < N`` (0-based, as ``$SLURM_ARRAY_TASK_ID`` with ``--array=0-(N-1)``).

    Raises:
        UsageError: not two integers ``I/N`` with ``N >= 1`` and ``0 <= I < N``.
    """
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {text}: give I/N with 0 <= I < N (e.g. 0/4 ... 3/4)")
    return i, n


def take_shard(items: Sequence[T], index: int, count: int, key: Callable[[T], str]) -> list[T]:
    """Shard ``index`` of ``count`` of ``items``: sorted by ``key``, duplicates (same key) dropped,
    then every ``count``-th item from position ``index``.

    Args:
        items: the run's inputs, in any order.
        index: this shard, 0-based.
        count: how many shards the inputs are split into.
        key: the text an item is sorted and de-duplicated by (its path as the output writes it).
    """
    unique: dict[str, T] = {}
    for item in items:
        unique.setdefault(key(item), item)
    ordered = [unique[k] for k in sorted(unique)]
    return ordered[index::count]


__all__ = ["parse_shard", "take_shard"]
