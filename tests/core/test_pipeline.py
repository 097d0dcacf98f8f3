"""run_batched: order, per-input errors, bounded look-ahead, cancel, threads (no model needed)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from squeezelens.core.pipeline import run_batched


class Broken(Exception):
    pass


def make_pipeline(delays: list[float], broken: set[int] = frozenset()):  # type: ignore[assignment]
    """A load that sleeps (as a decode would, GIL released) and fails for ``broken``; an infer that doubles."""
    state = {"loaded": 0, "inferred": 0, "max_ahead": 0, "load_threads": set(), "batches": []}
    lock = threading.Lock()

    def load(i: int) -> int:
        time.sleep(delays[i])
        with lock:
            state["loaded"] += 1
            state["max_ahead"] = max(state["max_ahead"], state["loaded"] - state["inferred"])
            state["load_threads"].add(threading.current_thread().name)
        if i in broken:
            raise Broken(f"input {i} is broken")
        return i

    def infer(batch: list[int]) -> list[str]:
        with lock:
            state["inferred"] += len(batch)
            state["batches"].append(list(batch))
        return [f"ok {i}" for i in batch]

    return load, infer, state


def failed(i: int, e: BaseException) -> str:
    return f"error {e}"


def cancelled(i: int) -> str:
    return "cancelled"


def test_results_in_input_order_with_a_broken_input_in_the_middle() -> None:
    rng = random.Random(0)
    n = 23
    load, infer, state = make_pipeline([rng.uniform(0, 0.01) for _ in range(n)], broken={11})
    seen: list[tuple[int, str]] = []
    caller = threading.get_ident()
    threads: set[int] = set()

    def on_result(i: int, r: str) -> None:
        seen.append((i, r))
        threads.add(threading.get_ident())

    out = run_batched(list(range(n)), load, infer, failed=failed, cancelled=cancelled, batch_size=4,
                      workers=3, expected_errors=(Broken,), on_result=on_result)

    expected = [f"ok {i}" if i != 11 else "error input 11 is broken" for i in range(n)]
    assert out == expected
    assert seen == list(enumerate(expected))  # every result, in input order
    assert threads == {caller}  # on_result runs on the calling thread
    assert state["batches"][2] == [8, 9, 10]  # the broken input left its batch, the rest still ran
    assert all(name.startswith("squeezelens-load") for name in state["load_threads"])


def test_look_ahead_is_bounded() -> None:
    n, batch = 60, 4
    load, infer, state = make_pipeline([0.0] * n)

    def slow_infer(items: list[int]) -> list[str]:
        time.sleep(0.005)  # loads race ahead unless the window holds them back
        return infer(items)

    run_batched(list(range(n)), load, slow_infer, failed=failed, cancelled=cancelled, batch_size=batch,
                workers=4, batches_ahead=2)
    assert state["inferred"] == n
    assert state["max_ahead"] <= batch * 3  # the current batch plus two ahead, never the whole list


def test_cancel_stops_within_a_batch() -> None:
    n = 40
    load, infer, state = make_pipeline([0.001] * n)
    cancel = threading.Event()
    seen: list[int] = []

    def on_result(i: int, r: str) -> None:
        seen.append(i)
        if i == 5:
            cancel.set()  # e.g. the user pressed Stop while batch 2 (inputs 4..7) was being reported

    out = run_batched(list(range(n)), load, infer, failed=failed, cancelled=cancelled, batch_size=4,
                      workers=2, on_result=on_result, cancel=cancel)
    assert out[:8] == [f"ok {i}" for i in range(8)]
    assert out[8:] == ["cancelled"] * (n - 8)
    assert seen == list(range(8))  # never called for cancelled inputs
    assert state["inferred"] == 8  # no batch started after the cancel
    assert state["loaded"] <= 8 + 4 * 3  # and loading stopped with the window it had


def test_cancel_before_start_and_sequential_mode() -> None:
    load, infer, state = make_pipeline([0.0] * 5, broken={1})
    cancel = threading.Event()
    cancel.set()
    assert run_batched(list(range(5)), load, infer, failed=failed, cancelled=cancelled,
                       cancel=cancel) == ["cancelled"] * 5
    assert state["loaded"] == 0

    out = run_batched(list(range(5)), load, infer, failed=failed, cancelled=cancelled, batch_size=2,
                      workers=0, expected_errors=(Broken,))
    assert out == ["ok 0", "error input 1 is broken", "ok 2", "ok 3", "ok 4"]
    assert state["load_threads"] == {threading.current_thread().name}


def test_unexpected_load_error_propagates_and_bad_batch_size() -> None:
    load, infer, _ = make_pipeline([0.0] * 6, broken={3})
    with pytest.raises(Broken):
        run_batched(list(range(6)), load, infer, failed=failed, cancelled=cancelled, batch_size=2,
                    expected_errors=(KeyError,))
    with pytest.raises(ValueError, match="batch_size"):
        run_batched([1], load, infer, failed=failed, cancelled=cancelled, batch_size=0)
    assert run_batched([], load, infer, failed=failed, cancelled=cancelled) == []


def test_loading_overlaps_inference() -> None:
    """With loads and infers both sleeping (both release the GIL), the pipeline beats doing them in turn."""
    n = 16
    load, infer, _ = make_pipeline([0.02] * n)

    def slow_infer(items: list[int]) -> list[str]:
        time.sleep(0.02 * len(items))
        return infer(items)

    t0 = time.perf_counter()
    run_batched(list(range(n)), load, slow_infer, failed=failed, cancelled=cancelled, batch_size=4, workers=2)
    piped = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_batched(list(range(n)), load, slow_infer, failed=failed, cancelled=cancelled, batch_size=4, workers=0)
    serial = time.perf_counter() - t0
    assert piped < 0.75 * serial  # serial: 16 * 0.04 s; piped: about 16 * 0.02 s + one batch of loads
