"""Garbage-collection pauses with the model stack imported, before and after the app freezes the objects
that imports made (``core.model_stack.freeze_imported_objects``, called by the GUI's stack import).

A full (generation 2) collection holds the GIL for as long as it scans, in whichever thread triggered it:
one that runs during a model load in the worker stops the GUI thread for as long. For each phase the
script loads the same model twice (untrained SE-ResNeXt on torch, no download) and reports the
collections Python ran by itself during the loads (count, longest, total) and the duration of one full
``gc.collect()``, with the number of objects it scans.

1. Baseline: the stack (torch, timm, ONNX Runtime...) and the GUI's modules imported, nothing frozen.
2. Frozen: the same process after ``freeze_imported_objects()``.

Run:  HF_HUB_OFFLINE=1 python bench/gc_pause.py [--model seresnext26d_32x4d] [--loads 2]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class PauseLog:
    """Records the duration of each collection Python runs (``gc.callbacks``), by generation."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._start))

    def summary(self) -> str:
        full = [t for g, t in self.pauses if g == 2]
        longest = max((t for _, t in self.pauses), default=0.0)
        return (f"{len(self.pauses)} collections ({len(full)} full), longest {longest * 1000:.1f} ms, "
                f"total {sum(t for _, t in self.pauses) * 1000:.1f} ms")


def full_collection_ms(repeats: int = 3) -> float:
    """Median duration of ``gc.collect()`` in ms (a full collection of everything not frozen)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def phase(name: str, model: str, loads: int) -> float:
    from squeezelens.core.engine import Classifier

    log = PauseLog()
    gc.callbacks.append(log)
    try:
        for _ in range(loads):
            clf = Classifier.load(model, device="cpu", backend="torch", allow_download=False)
            del clf
    finally:
        gc.callbacks.remove(log)
    ms = full_collection_ms()
    print(f"{name:9s} tracked objects {len(gc.get_objects()):>8,}  frozen {gc.get_freeze_count():>8,}  "
          f"full gc.collect() {ms:7.1f} ms  during {loads} loads: {log.summary()}")
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="seresnext26d_32x4d")
    parser.add_argument("--loads", type=int, default=2)
    args = parser.parse_args()

    from squeezelens.core.model_stack import freeze_imported_objects, import_model_stack

    import_model_stack()
    import squeezelens.gui.app  # noqa: F401 - the GUI's own modules and Qt, as in the app

    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    base = phase("baseline", args.model, args.loads)
    freeze_imported_objects()
    frozen = phase("frozen", args.model, args.loads)
    ratio = f"{base / frozen:.0f}x shorter" if frozen >= 0.05 else "under 0.05 ms"
    print(f"full collection: {base:.1f} ms before the freeze, {frozen:.2f} ms after ({ratio})")


if __name__ == "__main__":
    main()
