"""Results as text: ``classify``'s table, CSV and JSON, the ``models`` listing, and the finetune summary.

Plain functions from results to ``str``: no argparse, no Qt, no torch at import. The command line
(:mod:`squeezelens.cli`) prints them; the desktop app's Export CSV writes :func:`format_csv`'s text,
so a CSV reads the same whichever made it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypedDict

from .catalogue import DEFAULT_MODEL

if TYPE_CHECKING:
    from .catalogue import ModelInfo
    from .engine import Prediction
    from .finetune import FinetuneResult

UNTRAINED_NOTE = "UNTRAINED: no pretrained weights were found, so these predictions come from a random network"


def terminal_text(text: str) -> str:
    """``text`` for a terminal: file-name bytes that are not UTF-8 (surrogates from ``os.fsdecode``)
    shown escaped as ``\\xe9``, the rest unchanged."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def encode_output(text: str, encoding: str | None, terminal: bool) -> bytes:
    """Bytes of a command's output: on a terminal, non-UTF-8 name bytes escaped (:func:`terminal_text`);
    into a file or a pipe, the names' own bytes back (``surrogateescape``), so a CSV or JSON row
    names the file that exists. Characters the encoding lacks become ``?`` rather than an error."""
    enc = encoding or "utf-8"
    if terminal:
        return terminal_text(text).encode(enc, "replace")
    try:
        return text.encode(enc, "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


#: The columns of :func:`format_csv`, in order.
CSV_COLUMNS = ("path", "model", "untrained", "rank", "index", "label", "prob", "error")
#: :data:`CSV_COLUMNS` plus ``unknown``: the columns when an unknown threshold is in force (core/unknown.py).
CSV_COLUMNS_UNKNOWN = (*CSV_COLUMNS, "unknown")


def unknown_verdict(r: Prediction) -> str | None:
    """``Unknown — none of your classes (closest: X, 41%)`` for a prediction flagged unknown, else None.

    The one wording the table, the GUI's results panel, the live camera and the batch window share.
    """
    if not r.unknown or not r.top:
        return None
    t = r.top[0]
    return f"Unknown \u2014 none of your classes (closest: {t.label}, {t.prob:.0%})"


def format_table(results: Sequence[Prediction], untrained: bool) -> str:
    """Human-readable blocks, one per input: its path, then one line per top class.

    Args:
        results: one prediction per input, in the order to show them.
        untrained: the model has no pretrained weights; a banner (:data:`UNTRAINED_NOTE`) says so first.

    Returns:
        ``PATH  (N ms)`` and lines ``  RANK. LABEL  PROB%  (#INDEX)`` (probability in percent, two
        decimals; time is decode plus inference in milliseconds), or ``PATH`` and ``  error: REASON``;
        a blank line after each input.
    """
    out = io.StringIO()
    if untrained:
        out.write(f"!! {UNTRAINED_NOTE}\n\n")
    for r in results:
        if not r.ok:
            out.write(f"{r.source}\n  error: {r.error_reason or r.error}\n\n")
            continue
        flag = "  [untrained]" if r.untrained else ""
        out.write(f"{r.source}{flag}  ({r.load_ms + r.infer_ms:.0f} ms)\n")
        verdict = unknown_verdict(r)
        if verdict is not None:
            out.write(f"  {verdict}\n")
        width = max(len(t.label) for t in r.top)
        for rank, t in enumerate(r.top, 1):
            out.write(f"  {rank}. {t.label:<{width}}  {t.prob * 100:6.2f}%  (#{t.index})\n")
        out.write("\n")
    return out.getvalue()


def format_csv(results: Sequence[Prediction], untrained: bool, *, with_unknown: bool | None = None) -> str:
    """CSV with a header (:data:`CSV_COLUMNS`), one row per (input, rank); a failed input is one row.

    Args:
        results: one prediction per input.
        untrained: unused (each row carries its prediction's own ``untrained``); kept so the three
            formatters share one signature.

    Returns:
        ``\\n``-terminated rows: ``untrained`` as ``true``/``false``, ``rank`` from 1, ``index`` the
        class index, ``prob`` the softmax probability (0..1) with 8 decimals; a failed input has
        empty rank/index/label/prob and its error as ``PATH: REASON``. When any prediction has an
        unknown verdict (a threshold is in force) a last column ``unknown`` (:data:`CSV_COLUMNS_UNKNOWN`)
        says ``true``/``false`` on every row of that input (empty for a failed input).
        ``with_unknown`` forces that column on or off (a streamed CSV decides before any prediction).
    """
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if with_unknown is None:
        with_unknown = any(r.unknown is not None for r in results)
    w.writerow(CSV_COLUMNS_UNKNOWN if with_unknown else CSV_COLUMNS)
    for r in results:
        extra = [("" if r.unknown is None else str(r.unknown).lower())] if with_unknown else []
        if not r.ok:
            w.writerow([r.source, r.model, str(r.untrained).lower(), "", "", "", "", r.error, *extra])
            continue
        for rank, t in enumerate(r.top, 1):
            w.writerow([r.source, r.model, str(r.untrained).lower(), rank, t.index, t.label, f"{t.prob:.8f}", "",
                        *extra])
    return out.getvalue()


#: The per-image CSV's columns (:func:`format_csv_per_image`); ``unknown`` only when a threshold is in force.
CSV_PER_IMAGE_COLUMNS = ("path", "label", "prob", "error")


def format_csv_per_image(results: Sequence[Prediction]) -> str:
    """CSV with a header, ONE row per input (its top-1 class), where :func:`format_csv` has one per (input, rank).

    Args:
        results: one prediction per input.

    Returns:
        ``\n``-terminated rows ``path,label,prob,error`` (:data:`CSV_PER_IMAGE_COLUMNS`): ``label`` the top-1
        class, ``prob`` its softmax probability (0..1) with 8 decimals; a failed input has empty label and
        prob and its error as ``PATH: REASON``. When any prediction has an unknown verdict, an ``unknown``
        column (``true``/``false``, empty for a failed input) comes before ``error``.
    """
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    with_unknown = any(r.unknown is not None for r in results)
    w.writerow(["path", "label", "prob", *(["unknown"] if with_unknown else []), "error"])
    for r in results:
        extra = [("" if r.unknown is None else str(r.unknown).lower())] if with_unknown else []
        if not r.ok or not r.top:
            w.writerow([r.source, "", "", *extra, r.error or ""])
            continue
        t = r.top[0]
        w.writerow([r.source, t.label, f"{t.prob:.8f}", *extra, ""])
    return out.getvalue()


def format_json(results: Sequence[Prediction], untrained: bool) -> str:
    """A JSON array with one object per input, in input order, indented by 2, ending in a newline.

    Each object is :meth:`Prediction.to_dict <squeezelens.core.engine.Prediction.to_dict>`:
    ``path``, ``model``, ``untrained`` and either ``top`` (best first: ``index``, ``label`` and
    ``prob``, a softmax probability in 0..1) with ``time_ms`` (``load`` = decode and preprocess,
    ``inference`` = this input's share of its batch, milliseconds), or ``error`` (``PATH: REASON``).

    Args:
        results: one prediction per input.
        untrained: unused (each object carries its own ``untrained``); kept for the shared signature.
    """
    return json.dumps([r.to_dict() for r in results], indent=2) + "\n"


#: ``classify --format`` name -> formatter.
CLASSIFY_FORMATS: dict[str, Callable[[Sequence[Prediction], bool], str]] = {
    "table": format_table, "csv": format_csv, "json": format_json,
}


class ModelRow(TypedDict):
    """One pretrained tag as ``squeezelens models --format json`` lists it."""

    name: str  # "seresnext26d_32x4d.bt_in1k"
    architecture: str
    tag: str
    default: bool  # the architecture's default (first) tag
    default_model: bool  # the architecture is the app's default model
    input_size: list[int]  # [channels, height, width]
    crop_pct: float
    interpolation: str
    mean: list[float]
    std: list[float]
    num_classes: int
    license: str | None
    hf_hub_id: str | None
    cached: bool  # its weights are on disk (no download needed)


def model_rows(variants: Iterable[ModelInfo], is_cached: Callable[[str | None], bool]) -> list[ModelRow]:
    """One row per pretrained tag of each variant, in catalogue order.

    Args:
        variants: the catalogue (:func:`squeezelens.core.catalogue.list_variants`).
        is_cached: whether the weights of a Hugging Face hub id are already on disk.
    """
    return [
        ModelRow(
            name=t.name, architecture=info.architecture, tag=t.tag, default=t is info.default,
            default_model=info.architecture == DEFAULT_MODEL, input_size=list(t.input_size), crop_pct=t.crop_pct,
            interpolation=t.interpolation, mean=list(t.mean), std=list(t.std), num_classes=t.num_classes,
            license=t.license, hf_hub_id=t.hf_hub_id, cached=is_cached(t.hf_hub_id),
        )
        for info in variants
        for t in info.tags
    ]


def format_models_json(rows: Sequence[ModelRow]) -> str:
    """The rows as a JSON array (keys as in :class:`ModelRow`), indented by 2, ending in a newline."""
    return json.dumps(rows, indent=2) + "\n"


def format_models_table(rows: Sequence[ModelRow]) -> str:
    """Aligned columns MODEL, INPUT (HxW pixels), CROP, INTERP, CLASSES, LICENCE, WEIGHTS, and a
    footnote: ``*`` marks the default tag of the default model."""
    head = ("MODEL", "INPUT", "CROP", "INTERP", "CLASSES", "LICENCE", "WEIGHTS")
    table = [head] + [
        (
            r["name"] + (" *" if r["default"] and r["default_model"] else ""),
            "x".join(str(x) for x in r["input_size"][1:]), f"{r['crop_pct']:.3f}", r["interpolation"],
            str(r["num_classes"]), r["license"] or "?", "cached" if r["cached"] else "needs download",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    out = io.StringIO()
    for row in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
    out.write("\n* default. Use the bare architecture name for its first (default) tag.\n")
    return out.getvalue()


def format_summary(result: FinetuneResult) -> str:
    """The report at the end of a finetune run: what was saved, the best epoch, validation accuracy,
    per-class precision/recall, the confusion matrix, misclassified and skipped images, warnings.

    Percentages are of the validation images (the split :class:`~squeezelens.core.finetune.FinetuneResult`
    records); class names are cut to 10 characters in the confusion matrix's header.
    """
    out = io.StringIO()
    names = result.class_names
    best = result.history[result.best_epoch - 1] if result.best_epoch else None
    out.write(f"saved {result.output_dir} ({result.mode} mode on {result.base_model}, {len(names)} classes, "
              f"input {result.input_size[-1]} px)\n")
    if result.untrained_base:
        out.write("!! the base model had no pretrained weights: this model was trained on random features\n")
    epochs = f"best epoch {result.best_epoch} of {len(result.history)}"
    epochs += ", stopped early" if result.stopped_early else ""
    if best is not None:
        epochs += f"; train loss {best.train_loss:.4f}, val loss {best.val_loss:.4f}"
    out.write(f"{epochs}\n")
    n_val = sum(sum(r) for r in result.confusion)
    n_ok = sum(result.confusion[i][i] for i in range(len(names)))
    out.write(f"validation accuracy: {result.val_accuracy:.1%} ({n_ok}/{n_val})\n")
    if result.version is not None:
        line = f"version: v{result.version} (current)"
        if result.previous_version is not None:
            acc = "?" if result.previous_val_accuracy is None else f"{result.previous_val_accuracy:.1%}"
            line += (f"; previous v{result.previous_version}: {acc} validation accuracy "
                     f"(`squeezelens versions {result.output_dir} --rollback {result.previous_version}` restores it)")
        out.write(line + "\n")
    if result.mode == "quick":
        out.write(f"feature cache: {result.cache_hits} reused, {result.cache_misses} extracted\n")
    out.write("\n")

    w = max(len("class"), *(len(n) for n in names))
    out.write(f"{'class':<{w}}  precision  recall  val images\n")
    for m in result.per_class:  # a class with no validation images has no precision or recall to report
        precision, recall = (f"{m.precision:.1%}", f"{m.recall:.1%}") if m.support else ("n/a", "n/a")
        out.write(f"{m.name:<{w}}  {precision:>9}  {recall:>6}  {m.support:>10}\n")

    out.write("\nconfusion matrix (rows: true class, columns: predicted)\n")
    short = [n[:10] for n in names]
    cw = max(4, *(len(s) for s in short))
    out.write(" " * w + "  " + "  ".join(f"{s:>{cw}}" for s in short) + "\n")
    for name, row in zip(names, result.confusion):
        out.write(f"{name:<{w}}  " + "  ".join(f"{v:>{cw}}" for v in row) + "\n")

    wrong = result.misclassified
    out.write(f"\nmisclassified validation images: {len(wrong)}\n")
    for p in wrong:
        out.write(f"  {p.path}  true: {names[p.true_index]}  predicted: {names[p.pred_index]} ({p.confidence:.0%})\n")
    if result.skipped:
        out.write(f"\nskipped files: {len(result.skipped)}\n")
        for s in result.skipped:
            out.write(f"  {s.path}: {s.reason}\n")
    if result.warnings:
        out.write("\nwarnings:\n")
        for msg in result.warnings:
            out.write(f"  {msg}\n")
    return out.getvalue()


def format_finetune_json(result: FinetuneResult) -> str:
    """``finetune --json``'s report: :meth:`FinetuneResult.to_dict
    <squeezelens.core.finetune.FinetuneResult.to_dict>` indented by 2, ending in a newline."""
    return json.dumps(result.to_dict(), indent=2) + "\n"


__all__ = [
    "CLASSIFY_FORMATS", "CSV_COLUMNS", "CSV_COLUMNS_UNKNOWN", "UNTRAINED_NOTE", "ModelRow", "encode_output",
    "CSV_PER_IMAGE_COLUMNS", "format_csv", "format_csv_per_image",
    "format_finetune_json", "format_json", "format_models_json", "format_models_table",
    "format_summary", "format_table", "model_rows", "terminal_text", "unknown_verdict",
]
