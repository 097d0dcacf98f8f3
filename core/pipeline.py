"""Pipelined batch work: inputs loaded in a thread pool, overlapped with batched inference.

Decoding a photo is mostly Pillow and numpy work that releases the GIL, and so is a forward pass
(torch and ONNX Runtime both run outside it), so a few loader threads keep the next batches ready
while the calling thread runs the current one. Results come back in input order, and at most
``batches_ahead`` batches beyond the current one are loaded at any time, so memory stays bounded
however long the list is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from .device_info import usable_cpus

T = TypeVar("T")  # an input
X = TypeVar("X")  # a loaded input, ready for the batch
R = TypeVar("R")  # a result

#: Batches loaded ahead of the one being inferred (memory bound: (1 + this) * batch_size inputs).
BATCHES_AHEAD = 2


def default_workers() -> int:
    """Loader threads: one per CPU this process may use, at most 4 (JPEG decode scales little past it)."""
    return min(4, usable_cpus())


class _Skipped:
    """Stands in for an input whose load was skipped because work was cancelled."""


_SKIPPED = _Skipped()


class _Loaded(Generic[X]):
    __slots__ = ("value", "error")

    def __init__(self, value: X | None = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error


def run_batched(
    inputs: Sequence[T],
    load: Callable[[T], X],
    infer: Callable[[list[X]], list[R]],
    *,
    failed: Callable[[T, BaseException], R],
    cancelled: Callable[[T], R],
    batch_size: int = 16,
    workers: int | None = None,
    batches_ahead: int = BATCHES_AHEAD,
    expected_errors: tuple[type[BaseException], ...] = (Exception,),
    on_result: Callable[[int, R], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[R]:
    """Load every input in a thread pool and infer them in batches on the calling thread.

    Batch ``b`` holds inputs ``b * batch_size`` up to the next multiple; an input whose load raises
    one of ``expected_errors`` gets ``failed(input, error)`` and the rest of its batch still runs.
    Any other exception stops the work and is raised here.

    Args:
        inputs: the items, in order.
        load: turns one input into what ``infer`` takes; runs in a worker thread.
        infer: one batch of loaded inputs to one result each, in order; runs on the calling thread.
        failed: the result for an input whose load failed.
        cancelled: the result for an input not done when ``cancel`` was set.
        batch_size: inputs per ``infer`` call.
        workers: loader threads (default :func:`default_workers`); 0 loads on the calling thread.
        batches_ahead: batches loaded ahead of the current one.
        expected_errors: load errors that belong to one input rather than to the whole run.
        on_result: called on the calling thread with (index, result), in input order, as batches
            finish; never for cancelled inputs.
        cancel: when set, no new load or batch starts; the inputs not done get ``cancelled``.

    Returns:
        One result per input, in input order.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    n = len(inputs)
    results: list[R | None] = [None] * n
    workers = default_workers() if workers is None else max(0, workers)
    is_cancelled = cancel.is_set if cancel is not None else (lambda: False)

    def guarded(item: T) -> _Loaded[X] | _Skipped:
        if is_cancelled():
            return _SKIPPED
        try:
            return _Loaded(load(item))
        except expected_errors as e:
            return _Loaded(error=e)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="squeezelens-load") if workers and n > 1 else None
    futures: dict[int, Future] = {}
    window = batch_size * (1 + max(0, batches_ahead))
    submitted = 0

    def fill(upto: int) -> None:
        nonlocal submitted
        while pool is not None and submitted < min(n, upto) and not is_cancelled():
            futures[submitted] = pool.submit(guarded, inputs[submitted])
            submitted += 1

    def loaded(i: int) -> _Loaded[X] | _Skipped:
        fut = futures.pop(i, None)
        return fut.result() if fut is not None else guarded(inputs[i])

    done = 0
    try:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            fill(start + window)
            if is_cancelled():
                break
            values: list[X] = []
            slots: list[int] = []
            for i in range(start, stop):
                item = loaded(i)
                if isinstance(item, _Skipped):
                    continue
                if item.error is not None:
                    results[i] = failed(inputs[i], item.error)
                else:
                    values.append(item.value)  # type: ignore[arg-type]
                    slots.append(i)
            if is_cancelled():
                break  # this batch is dropped whole: it counts as not done
            if values:
                for i, r in zip(slots, infer(values)):
                    results[i] = r
            if on_result is not None:
                for i in range(start, stop):
                    on_result(i, results[i])  # type: ignore[arg-type]
            done = stop
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    for i in range(done, n):  # every input of an unfinished batch
        results[i] = cancelled(inputs[i])
    return results  # type: ignore[return-value]
