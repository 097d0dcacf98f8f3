"""Exporting a model as one self-contained ONNX file that carries what it needs, and checking it.

:func:`export_model` takes the model's verified graph (:mod:`.onnx_export`, kept in
:mod:`.graph_cache`), optionally quantizes it to int8 (:mod:`.quantize`), folds any external data
into the file and writes, as ``metadata_props`` (JSON strings, docs/EXPORT.md): the class names, the
preprocessing (timm's eval transform: input size, resize, crop, interpolation, mean/std, colour
handling), the model's "unknown" rule when its ``config.json`` has one, and where it came from.

:func:`check_export` proves the metadata is enough: it runs the file through
:mod:`.onnx_reference` (onnxruntime + numpy + Pillow, nothing else) and compares the probabilities
with the app's own (the torch backend on timm's transform, full-size decoding).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import graph_cache, onnx_export, onnx_reference
from .atomic_files import write_bytes_atomic
from .errors import ExportError, ImageLoadError, SqueezeLensError, UsageError
from .numpy_transform import DEFAULT_CROP_PCT, numpy_eval_transform
from .weights import ProgressFn

log = logging.getLogger(__name__)

#: Version of the metadata layout (``squeezelens_format``); a reader refuses a newer one it does not know.
METADATA_FORMAT = 1
#: Metadata keys besides onnx_reference's class names, preprocessing and unknown rule.
FORMAT_KEY, MODEL_KEY, QUANT_KEY, IO_KEY = ("squeezelens_format", "squeezelens_model", "squeezelens_quantization",
                                            "squeezelens_io")
#: fp32 parity: the file's probabilities may differ from the app's by at most this (issue 17).
PARITY_ATOL = 1e-4
#: Calibration images taken from a model's dataset folder when none are named (ONNX Runtime's
#: examples calibrate on a few hundred; 64 keeps the export to seconds on a CPU).
MAX_CALIBRATION_IMAGES = 64
#: ONNX's protobuf limit: a single-file model must stay under 2 GiB.
ONNX_SINGLE_FILE_LIMIT = 2**31 - 1
#: Images per calibration batch.
CALIBRATION_BATCH = 8
QUANTIZE_CHOICES = ("int8",)


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_model` wrote."""

    path: Path
    model: str
    num_classes: int
    quantize: str | None
    size_bytes: int
    seconds: float
    calibration_images: int = 0
    untrained: bool = False


def preprocessing_metadata(data_config: dict[str, Any]) -> dict[str, Any]:
    """The ``squeezelens_preprocessing`` value for timm's resolved eval ``data_config``.

    ``resize_shorter_side = floor(max(H, W) / crop_pct)`` is timm's ``transforms_factory``
    (``scale_size = math.floor(img_size / crop_pct)``) for a square input in ``center`` crop mode.

    Raises:
        ExportError: a configuration the reference implementation cannot reproduce (a non-square
            input, a crop mode other than ``center``, crop_pct above 1, border pixels, an unknown
            interpolation): its file would not give the app's answers.
    """
    if numpy_eval_transform(data_config) is None:
        raise ExportError(
            "this model's preprocessing (input size {}, crop mode {}, interpolation {}) cannot be written as "
            "file metadata yet".format(data_config.get("input_size"), data_config.get("crop_mode"),
                                       data_config.get("interpolation")))
    c, h, w = (int(v) for v in data_config["input_size"])
    crop_pct = float(data_config.get("crop_pct") or DEFAULT_CROP_PCT)
    return {
        "input_size": [c, h, w], "layout": "NCHW", "dtype": "float32",
        "colour": "RGB", "colour_space": "sRGB", "bit_depth": 8,
        "orientation": "EXIF orientation applied", "alpha": "composited on white",
        "resize_shorter_side": math.floor(max(h, w) / crop_pct), "resize_longer_side": "scaled, truncated",
        "interpolation": str(data_config.get("interpolation", "bilinear")),
        "crop_mode": str(data_config.get("crop_mode") or "center"), "crop_pct": crop_pct, "crop_size": [h, w],
        "scale": "1/255", "mean": [float(v) for v in data_config["mean"]],
        "std": [float(v) for v in data_config["std"]],
    }


def saved_config(model: str | os.PathLike[str] | None, weights: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The ``config.json`` of a saved-model folder given as ``model`` or ``weights``; ``{}`` otherwise."""
    for p in (model, weights):
        if p is not None and (Path(p) / "config.json").is_file():
            try:
                data = json.loads((Path(p) / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def export_metadata(loaded: Any, data_config: dict[str, Any], config: dict[str, Any], source: str,
                    quantization: dict[str, Any] | None, weights_file: str | None = None) -> dict[str, str]:
    """Every ``metadata_props`` entry of an export, values JSON-encoded (docs/EXPORT.md lists them).

    Args:
        loaded: the :class:`~.model_loader.LoadedModel`.
        data_config: timm's resolved eval data config of it.
        config: its folder's ``config.json`` (``{}`` for a catalogue model).
        source: the model as the user named it (name or folder), so ``--check`` can load it again.
        weights_file: the explicit weights it was loaded with (absolute path), for the same reason.
        quantization: ``None`` for fp32, else what was done.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        app_version = version("squeezelens")
    except PackageNotFoundError:
        app_version = "unknown"
    meta: dict[str, Any] = {
        FORMAT_KEY: METADATA_FORMAT,
        onnx_reference.CLASS_NAMES_KEY: list(loaded.labels),
        onnx_reference.PREPROCESSING_KEY: preprocessing_metadata(data_config),
        IO_KEY: {"input": onnx_export.INPUT_NAME, "output": onnx_export.OUTPUT_NAME,
                 "output_kind": "logits; softmax over the last axis gives the probabilities"},
        MODEL_KEY: {"source": source, "weights_file": weights_file, "name": loaded.name,
                    "architecture": loaded.architecture, "weights": loaded.weights.detail,
                    "untrained": bool(loaded.untrained), "license": loaded.license, "squeezelens_version": app_version},
        QUANT_KEY: quantization or {"type": "none"},
    }
    unknown = config.get("squeezelens_unknown")
    if unknown is not None:
        meta[onnx_reference.UNKNOWN_KEY] = unknown
    return {k: json.dumps(v) for k, v in meta.items()}


def calibration_paths(paths: Sequence[str | os.PathLike[str]] | None, config: dict[str, Any]) -> list[Path]:
    """The images to calibrate int8 on: those named, else the finetune dataset recorded in ``config``.

    A finetuned model's ``config.json`` names its dataset folder (``squeezelens_finetune.data_dir``);
    its ``val/`` subfolder is used when there is one, else the whole folder. At most
    :data:`MAX_CALIBRATION_IMAGES`, spread evenly over the sorted list (so every class is in).

    Raises:
        UsageError: no images named and no dataset recorded (or it is gone), or none found.
    """
    from .images import expand_inputs

    if paths:
        found = [p for p in expand_inputs(paths) if isinstance(p, Path)]
    else:
        data_dir = (config.get("squeezelens_finetune") or {}).get("data_dir")
        if not data_dir or not Path(data_dir).is_dir():
            raise UsageError("--quantize int8 needs calibration images: name some typical images or a folder "
                             "with --calibration (this model records no dataset folder that still exists)")
        root = Path(data_dir) / "val" if (Path(data_dir) / "val").is_dir() else Path(data_dir)
        found = [p for p in expand_inputs([root]) if isinstance(p, Path)]
    if not found:
        raise UsageError("no calibration images found")
    if len(found) > MAX_CALIBRATION_IMAGES:
        step = len(found) / MAX_CALIBRATION_IMAGES
        found = [found[int(i * step)] for i in range(MAX_CALIBRATION_IMAGES)]
    return found


def _calibration_batches(paths: list[Path], data_config: dict[str, Any]) -> list[np.ndarray]:
    from .images import open_image

    transform = numpy_eval_transform(data_config)
    assert transform is not None  # preprocessing_metadata refused the others first
    items = []
    for p in paths:
        try:
            items.append(transform(open_image(p)))
        except ImageLoadError as e:
            log.warning("calibration image skipped: %s", e)
    if not items:
        raise UsageError("none of the calibration images could be read")
    return [np.stack(items[i:i + CALIBRATION_BATCH]) for i in range(0, len(items), CALIBRATION_BATCH)]


def export_model(
    model: str | None,
    output: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    *,
    quantize: str | None = None,
    calibration: Sequence[str | os.PathLike[str]] | None = None,
    allow_download: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ExportSummary:
    """Write ``model`` as one self-contained ONNX file with its metadata (docs/EXPORT.md).

    Args:
        model: catalogue name or saved-model folder (``None``: the default model).
        output: the ``.onnx`` file to write (replaced atomically when it exists).
        weights: an explicit weights file or folder, as for :meth:`.engine.Classifier.load`.
        quantize: ``None`` (float32) or ``"int8"`` (static, calibrated; :func:`.quantize.quantize_int8`).
        calibration: images or folders to calibrate int8 on; default: :func:`calibration_paths`.
        allow_download: may weights be downloaded.
        progress: download progress ``(done_bytes, total_bytes)``.
        cancel: set it to stop a download.

    Returns:
        What was written.

    Raises:
        UsageError: an unknown ``quantize``, ``output`` is a folder, or no calibration images.
        ModelNotFoundError, WeightsError: the model cannot be loaded.
        ExportError: the export, its check against torch, or the quantization failed; or the
            preprocessing cannot be described.
        OutputError: the file cannot be written.
    """
    import onnx

    from .model_loader import load_model
    from .preprocess import data_config as resolve_data_config
    from .state_digest import state_digest

    if quantize not in (None, *QUANTIZE_CHOICES):
        raise UsageError(f"unknown quantization '{quantize}'; choose {', '.join(QUANTIZE_CHOICES)}")
    out = Path(output)
    if out.is_dir():
        raise UsageError("is a folder; give the .onnx file to write", str(out))
    t0 = time.perf_counter()
    loaded = load_model(model, weights, allow_download=allow_download, progress=progress, cancel=cancel)
    cfg = resolve_data_config(loaded.model)
    config = saved_config(model, weights)
    preprocessing_metadata(cfg)  # refuse before any export work
    calib = calibration_paths(calibration, config) if quantize else []
    # the classifier's key (engine.Classifier._adopt_onnx): the app's verified graph is reused, not exported again
    key = graph_cache.graph_key(loaded.architecture, len(loaded.labels), cfg["input_size"], state_digest(loaded.model),
                                labels=loaded.labels, data_config=cfg)
    graph = graph_cache.find_graph(key) or onnx_export.export_graph(
        loaded.model, key, graph_cache.model_meta(loaded, cfg))
    source = str(Path(model).resolve()) if model is not None and Path(model).is_dir() else (model or loaded.name)
    quant_info = None
    with tempfile.TemporaryDirectory(prefix="squeezelens-export-") as tmp:
        src = graph.path
        if quantize:
            batches = _calibration_batches(calib, cfg)
            from .quantize import quantize_int8

            src = Path(tmp) / "int8.onnx"
            quantize_int8(graph.path, src, batches)
            quant_info = {"type": "int8", "method": "onnxruntime.quantization.quantize_static, QDQ, per-channel "
                          "weights, MinMax calibration", "calibration_images": sum(len(b) for b in batches)}
        try:
            proto = onnx.load(str(src), load_external_data=True)  # folds external data into the file
        except Exception as e:
            raise ExportError(f"the exported graph could not be read back ({type(e).__name__}: {e})") from e
        meta = export_metadata(loaded, cfg, config, str(source), quant_info,
                               None if weights is None else str(Path(weights).resolve()))
        keep = [p for p in proto.metadata_props if not p.key.startswith("squeezelens_")]
        del proto.metadata_props[:]
        proto.metadata_props.extend(keep)
        for k, v in meta.items():
            proto.metadata_props.add(key=k, value=v)
        proto.doc_string = (f"SqueezeLens export of {loaded.name} ({len(loaded.labels)} classes); "
                            "preprocessing and class names in metadata_props (squeezelens_*)")
        if proto.ByteSize() > ONNX_SINGLE_FILE_LIMIT:
            raise ExportError("the model is too large for a single ONNX file (over 2 GiB)")
        write_bytes_atomic(out, proto.SerializeToString())
    return ExportSummary(out, loaded.name, len(loaded.labels), quantize, out.stat().st_size,
                         time.perf_counter() - t0, len(calib), loaded.untrained)


def read_export_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The decoded ``squeezelens_*`` metadata of an exported file (ONNX Runtime reads it).

    Raises:
        ExportError: the file cannot be opened by ONNX Runtime, or is not a SqueezeLens export.
    """
    try:
        session = onnx_reference.open_session(str(path))
        return onnx_reference.read_metadata(session)
    except KeyError as e:
        raise ExportError(str(e.args[0]), str(path)) from e
    except Exception as e:
        raise ExportError(f"cannot open this ONNX file ({type(e).__name__}: {str(e)[:200]})", str(path)) from e


@dataclass
class CheckRow:
    """One image of a parity check: the app's and the file's top 5 and their largest difference."""

    path: str
    app_top: list[tuple[int, float]] = field(default_factory=list)
    file_top: list[tuple[int, float]] = field(default_factory=list)
    max_diff: float = 0.0
    same_top5: bool = False
    error: str | None = None


@dataclass
class CheckReport:
    """The outcome of :func:`check_export`.

    Attributes:
        quantized: the file is int8 (then ``passed`` is informational: the agreement is what counts).
        passed: fp32: every readable image has the same top 5 and probabilities within
            :data:`PARITY_ATOL`; int8: always True when at least one image was compared.
    """

    file: str
    model: str
    labels: list[str]
    quantized: bool
    rows: list[CheckRow]

    @property
    def compared(self) -> list[CheckRow]:
        return [r for r in self.rows if r.error is None]

    @property
    def max_diff(self) -> float:
        return max((r.max_diff for r in self.compared), default=0.0)

    @property
    def top1_agreement(self) -> float:
        rows = self.compared
        return sum(r.app_top[0][0] == r.file_top[0][0] for r in rows) / len(rows) if rows else 0.0

    @property
    def top5_agreement(self) -> float:
        rows = self.compared
        return sum(r.same_top5 for r in rows) / len(rows) if rows else 0.0

    @property
    def passed(self) -> bool:
        rows = self.compared
        if not rows:
            return False
        return self.quantized or (all(r.same_top5 for r in rows) and self.max_diff <= PARITY_ATOL)


def _same_top5(app: np.ndarray, file: np.ndarray, k: int) -> bool:
    """Same top-k classes in the same order; a swap of two classes whose app probabilities differ by
    less than :data:`PARITY_ATOL` (a tie within the tolerance) still counts as the same."""
    a = np.argsort(-app, kind="stable")[:k]
    f = np.argsort(-file, kind="stable")[:k]
    return bool(np.array_equal(a, f) or np.abs(app[f] - app[a]).max() <= PARITY_ATOL)


def check_export(
    file: str | os.PathLike[str],
    images: Sequence[str | os.PathLike[str]],
    model: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    on_row: Callable[[CheckRow], None] | None = None,
) -> CheckReport:
    """Compare the exported ``file``, run by :mod:`.onnx_reference` alone, with the app on ``images``.

    The app's side: :class:`~.engine.Classifier` on torch, CPU, full-size decoding (timm's eval
    pipeline exactly; the JPEG fast path is a speed trade the export does not make).

    Args:
        file: the exported ``.onnx``.
        images: image files or folders.
        model: the model to compare with; default: the ``source`` recorded in the file.
        weights: explicit weights for ``model``; default (no ``model`` either): the weights file
            recorded in the file, if any.
        allow_download: may weights be downloaded.
        on_row: called with each image's row as it is done.

    Raises:
        ExportError: the file cannot be opened or is not a SqueezeLens export.
        UsageError: no images.
        ModelNotFoundError, WeightsError: the model cannot be loaded.
    """
    from .engine import Classifier
    from .images import expand_inputs

    meta = read_export_metadata(file)
    session = onnx_reference.open_session(str(file))
    labels = list(meta[onnx_reference.CLASS_NAMES_KEY])
    quantized = (meta.get(QUANT_KEY) or {}).get("type", "none") != "none"
    recorded = meta.get(MODEL_KEY) or {}
    src = model or recorded.get("source")
    if model is None and weights is None:
        weights = recorded.get("weights_file")
    inputs = expand_inputs(images)
    if not inputs:
        raise UsageError("no images to check with")
    with Classifier.load(src, weights, device="cpu", backend="torch", fast_decode=False,
                         allow_download=allow_download) as clf:
        clf.colour_manage = True  # the file says sRGB: compare with colour-managed pixels whatever the environment
        if len(clf.labels) != len(labels):
            raise ExportError(f"the file has {len(labels)} classes and {clf.name} has {len(clf.labels)}", str(file))
        n = len(labels)
        k = min(5, n)
        rows = []
        for src_path, pred in zip(inputs, clf.classify(inputs, top_k=n, batch_size=4)):
            row = CheckRow(str(src_path))
            if not pred.ok:
                row.error = f"app: {pred.error_reason}"
            else:
                app = np.zeros(n)
                for t in pred.top:
                    app[t.index] = t.prob
                try:
                    ref = onnx_reference.probabilities(session, meta, [str(src_path)])[0]
                except Exception as e:  # the reference reader is stricter than the app's loader in places
                    row.error = f"reference: {type(e).__name__}: {e}"
                else:
                    row.app_top = [(int(i), float(app[i])) for i in np.argsort(-app, kind="stable")[:k]]
                    row.file_top = [(int(i), float(ref[i])) for i in np.argsort(-ref, kind="stable")[:k]]
                    row.max_diff = float(np.abs(app - ref).max())
                    row.same_top5 = _same_top5(app, ref, k)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return CheckReport(str(file), str(src), labels, quantized, rows)


def format_check(report: CheckReport) -> str:
    """The check as text: one line per image, then the verdict (fp32) or the agreement (int8)."""
    lines = []
    for r in report.rows:
        if r.error is not None:
            lines.append(f"{r.path}: skipped ({r.error})")
            continue
        (ai, ap), (fi, fp) = r.app_top[0], r.file_top[0]
        mark = "same top-5" if r.same_top5 else "TOP-5 DIFFERS"
        lines.append(f"{r.path}: app {report.labels[ai]} {ap:.4f} | file {report.labels[fi]} {fp:.4f} | "
                     f"max diff {r.max_diff:.2e} | {mark}")
    rows = report.compared
    n = len(rows)
    if report.quantized:
        lines.append(f"int8 file against the app: top-1 agreement {report.top1_agreement:.1%} "
                     f"({sum(r.app_top[0][0] == r.file_top[0][0] for r in rows)}/{n}), same top-5 "
                     f"{report.top5_agreement:.1%}, largest probability difference {report.max_diff:.4g}")
    else:
        verdict = "PASS" if report.passed else "FAIL"
        lines.append(f"fp32 parity {verdict}: {sum(r.same_top5 for r in rows)}/{n} images with the same top-5, "
                     f"largest probability difference {report.max_diff:.2e} (limit {PARITY_ATOL:.0e})")
    skipped = len(report.rows) - n
    if skipped:
        lines.append(f"{skipped} image(s) could not be compared")
    return "\n".join(lines) + "\n"


__all__ = ["CheckReport", "CheckRow", "ExportSummary", "SqueezeLensError", "check_export", "export_model",
           "format_check", "read_export_metadata"]
