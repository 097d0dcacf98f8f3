"""The "unknown" verdict: a calibrated threshold below which a prediction is "none of your classes".

A finetuned model must otherwise always pick one of its classes (a face becomes "truck"). At save
time :func:`calibrate` looks at the validation predictions of the model being saved and picks a
threshold on a confidence score; the engine then flags an input whose score is below it.

Score: the maximum softmax probability (MSP, Hendrycks & Gimpel 2017, "A Baseline for Detecting
Misclassified and Out-of-Distribution Examples"). The energy score (Liu et al. 2020, "Energy-based
Out-of-distribution Detection": ``logsumexp(logits)``) was measured beside it on the generated
shapes dataset (``bench/unknown_scores.py``, numbers in ``docs/TRUST.md``); MSP separated the
unseen kind at least as well there and is what every backend already returns (the top-1
probability), so no backend has to hand out logits. Both score functions are here so the
measurement can be repeated.

Rule (:data:`DEFAULT_KEEP`): the threshold is the score that keeps 95% of the *correct* validation
predictions above it (their 5th percentile, linear interpolation, ``numpy.quantile``). On new
images of the known classes about 5% are then flagged; an image whose score is lower than that
of most correctly recognised images is called unknown.

The calibration is stored in the model's ``config.json`` under :data:`CONFIG_KEY` (a key timm
ignores, so ``timm.create_model("local-dir:DIR", pretrained=True)`` still loads the folder)::

    "squeezelens_unknown": {"score": "msp", "threshold": 0.41, "rule": "keep 95% of correct
        validation predictions", "keep": 0.95, "val_correct": 30, "val_total": 32}

Models without it (the ImageNet ones) get no unknown verdict unless the user sets a threshold.
Plain functions, no torch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import UsageError

#: The ``config.json`` key of the calibration (a dict; the shared contract, read by the ONNX export too).
CONFIG_KEY = "squeezelens_unknown"
#: The score every threshold applies to.
SCORE = "msp"
#: Fraction of correct validation predictions the calibrated threshold keeps (not unknown).
DEFAULT_KEEP = 0.95
#: What the user may pass as a threshold: a number in 0..1, ``"off"``, or None (the model's own).
ThresholdSetting = float | Literal["off"] | None


def msp_score(logits: np.ndarray) -> np.ndarray:
    """Maximum softmax probability of ``(N, C)`` logits: ``(N,)`` in ``(1/C, 1]``; higher = more known."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return np.asarray(p.max(axis=1) / p.sum(axis=1))


def energy_score(logits: np.ndarray) -> np.ndarray:
    """Negative free energy of ``(N, C)`` logits, ``logsumexp(logits)`` (temperature 1).

    Returns ``(N,)``; higher = more known."""
    m = logits.max(axis=1).astype(np.float64)
    return np.asarray(m + np.log(np.exp(logits.astype(np.float64) - m[:, None]).sum(axis=1)))


def threshold_keeping(scores: Sequence[float] | np.ndarray, keep: float = DEFAULT_KEEP) -> float:
    """The score that keeps the fraction ``keep`` of ``scores`` at or above it (``numpy.quantile``, linear).

    Raises:
        UsageError: ``scores`` is empty or ``keep`` is outside (0, 1].
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size == 0:
        raise UsageError("no correct validation predictions to calibrate the unknown threshold on")
    if not 0.0 < keep <= 1.0:
        raise UsageError("keep must be in (0, 1]")
    return float(np.quantile(arr, 1.0 - keep))


@dataclass(frozen=True)
class UnknownCalibration:
    """A threshold on the :data:`SCORE` and how it was chosen.

    Attributes:
        threshold: a prediction whose top-1 probability is below it is unknown (0..1).
        keep: the fraction of correct validation predictions kept above the threshold.
        val_correct: correct validation predictions it was computed from; ``val_total``: all of them.
    """

    threshold: float
    keep: float = DEFAULT_KEEP
    val_correct: int = 0
    val_total: int = 0
    score: str = SCORE

    @property
    def rule(self) -> str:
        return f"keep {self.keep:.0%} of correct validation predictions"

    def to_config(self) -> dict[str, Any]:
        """The ``config.json`` value (:data:`CONFIG_KEY`)."""
        return {"score": self.score, "threshold": round(self.threshold, 6), "rule": self.rule, "keep": self.keep,
                "val_correct": self.val_correct, "val_total": self.val_total}

    @classmethod
    def from_config(cls, value: Any) -> UnknownCalibration | None:
        """The calibration in a ``config.json`` value, or None when absent or not understood (then no verdict)."""
        if not isinstance(value, dict) or value.get("score", SCORE) != SCORE:
            return None
        t = value.get("threshold")
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
            return None
        return cls(float(t), float(value.get("keep", DEFAULT_KEEP)), int(value.get("val_correct", 0)),
                   int(value.get("val_total", 0)))


def calibrate(top1_probs: Sequence[float], correct: Sequence[bool], keep: float = DEFAULT_KEEP) -> UnknownCalibration:
    """Calibrate on validation predictions: each one's top-1 probability and whether it was right.

    Raises:
        UsageError: no validation prediction was correct.
    """
    right = [float(p) for p, c in zip(top1_probs, correct) if c]
    return UnknownCalibration(threshold_keeping(right, keep), keep, len(right), len(list(correct)))


def read_calibration(model_dir: str | os.PathLike[str]) -> UnknownCalibration | None:
    """The calibration stored in ``model_dir/config.json``; None for no folder, no file, or no key."""
    path = Path(model_dir) / "config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return UnknownCalibration.from_config(cfg.get(CONFIG_KEY)) if isinstance(cfg, dict) else None


def parse_threshold(text: str) -> ThresholdSetting:
    """``--unknown-threshold``'s value: ``off`` or a number in 0..1 (a percentage like ``40%`` too).

    Raises:
        UsageError: anything else.
    """
    t = text.strip().lower()
    if t == "off":
        return "off"
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise UsageError(f"unknown threshold must be a number in 0..1 or 'off', not '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"unknown threshold must be in 0..1, not {text}")
    return value


def resolve_threshold(setting: ThresholdSetting | str, calibration: UnknownCalibration | None) -> float | None:
    """The threshold in force: the user's number, None for ``off``, else the model's calibrated one (or None).

    Raises:
        UsageError: ``setting`` is a string other than ``off`` or a number outside 0..1.
    """
    if setting is None:
        return None if calibration is None else calibration.threshold
    value = parse_threshold(setting) if isinstance(setting, str) else setting
    if value is None or value == "off":
        return None
    if not 0.0 <= float(value) <= 1.0:
        raise UsageError(f"unknown threshold must be in 0..1, not {value}")
    return float(value)


def is_unknown(top1_prob: float, threshold: float | None) -> bool | None:
    """None without a threshold; else whether ``top1_prob`` is below it."""
    return None if threshold is None else top1_prob < threshold
