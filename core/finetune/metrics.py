"""Validation metrics of a trained classifier: confusion matrix, accuracy, per-class precision/recall.

Plain Python lists in and out (no torch, no numpy needed), so results cross threads and go to JSON.
The definitions are the usual ones (e.g. scikit-learn's ``confusion_matrix`` and
``precision_recall_fscore_support`` with ``zero_division=0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class on the validation set.

    ``precision`` is 0.0 when the model never predicted the class (``predicted == 0``), and
    ``recall`` is 0.0 when the class has no validation images (``support == 0``).
    """

    name: str
    precision: float
    recall: float
    f1: float
    support: int  # validation images of this class
    predicted: int  # validation images predicted as this class

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> list[list[int]]:
    """``cm[t][p]``: how many images of true class ``t`` were predicted as ``p``.

    Raises:
        ValueError: ``y_true`` and ``y_pred`` differ in length (a programming error).
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    cm = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(y_true, y_pred):
        cm[int(t)][int(p)] += 1
    return cm


def accuracy(cm: Sequence[Sequence[int]]) -> float:
    """Share of the diagonal; 0.0 for an empty matrix."""
    total = sum(sum(row) for row in cm)
    return sum(cm[i][i] for i in range(len(cm))) / total if total else 0.0


def class_metrics(cm: Sequence[Sequence[int]], class_names: Sequence[str]) -> list[ClassMetrics]:
    """Per-class precision (of the column), recall (of the row) and F1, from a confusion matrix.

    Raises:
        ValueError: not one name per row of ``cm`` (a programming error).
    """
    n = len(cm)
    if len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for a {n}x{n} confusion matrix")
    out = []
    for i, name in enumerate(class_names):
        tp = cm[i][i]
        support = sum(cm[i])
        predicted = sum(cm[r][i] for r in range(n))
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(ClassMetrics(name, precision, recall, f1, support, predicted))
    return out
