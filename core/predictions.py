"""What classifying one input gives: its top classes, or the error that stopped it.

The public API exports both classes from :mod:`.engine` (``squeezelens.Prediction``,
``squeezelens.TopClass``); the CLI's JSON and CSV and the GUI's result views read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TopClass:
    """One of the top-k classes of a prediction."""

    index: int
    label: str
    prob: float


@dataclass
class Prediction:
    """The result for one input: its top classes, or the error that stopped it."""

    source: str
    model: str
    top: list[TopClass] = field(default_factory=list)
    error: str | None = None  # "PATH: REASON", as JSON and CSV carry it
    untrained: bool = False
    load_ms: float = 0.0  # decode + preprocess of this input
    infer_ms: float = 0.0  # this input's share of its batch's forward pass
    # last, so code that builds a Prediction by position keeps working
    error_reason: str | None = None  # the error without the path, for views that show the path apart
    # None: no unknown threshold in force (an ImageNet model, or "off"); True: the top-1 probability
    # is below the threshold, i.e. none of the model's classes (core/unknown.py)
    unknown: bool | None = None
    # None: computed in fp32; else the reduced precision its batch ran in (``int8``, ``bf16``, or CUDA
    # autocast's ``float16``/``bfloat16``), so its time_ms is never mistaken for an fp32 one
    precision: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of one input: path, model, untrained, top (index, label, prob), time_ms (load,
        inference), ``unknown`` (true/false) only when an unknown threshold is in force and ``precision``
        only when the batch ran in reduced precision (e.g. ``"int8"``); or path, model, untrained, error."""
        if self.error is not None:
            return {"path": self.source, "model": self.model, "untrained": self.untrained, "error": self.error}
        out = {
            "path": self.source,
            "model": self.model,
            "untrained": self.untrained,
            "top": [{"index": t.index, "label": t.label, "prob": t.prob} for t in self.top],
            "time_ms": {"load": round(self.load_ms, 2), "inference": round(self.infer_ms, 2)},
        }
        if self.unknown is not None:
            out["unknown"] = self.unknown
        if self.precision is not None:
            out["precision"] = self.precision
        return out
