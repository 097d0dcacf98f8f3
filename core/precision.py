"""Reduced-precision inference on the CPU: which modes this machine runs natively, the fidelity check
each mode must pass for each model, and the runner a mode gets.

Modes (:data:`.options.Precision`):

- ``fp32``: the exported graph as it is, on ONNX Runtime: exact (the reference of everything here).
- ``int8``: the graph quantized by :func:`.quantize.quantize_int8` (static QDQ, per-channel weights,
  calibrated on :func:`photo_inputs`), run by OpenVINO when it is installed (its CPU plugin runs the
  QDQ graph as integer convolutions; measured 0.35-0.40x of ONNX Runtime fp32 on an AVX2 CPU
  without VNNI), else by ONNX Runtime (0.8-1.0x on the same CPU). Native on every x86-64 CPU with
  AVX2 (``vpmaddubsw``), faster with VNNI/AMX.
- ``bf16``: the fp32 graph run by OpenVINO with ``INFERENCE_PRECISION_HINT=bf16``; offered only where
  the CPU computes bf16 natively (``avx512_bf16`` or ``amx_bf16``; elsewhere OpenVINO would emulate
  it or ignore the hint).
- ``auto``: the first of ``int8``, ``bf16`` that this CPU runs natively, whose engine is installed,
  that passes the fidelity check and that was faster than fp32 in that check; else ``fp32``.

The fidelity check (:func:`check_fidelity`) runs once per model (graph key) and mode, and its
verdict is cached next to the graph (``precision.json``), as is the int8 graph (``model.int8.onnx``).
Nothing here imports torch.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageOps

from .atomic_files import write_text_atomic
from .errors import ExportError, UsageError
from .options import PRECISIONS
from .runners import OrtRunner, OvRunner, Runner, softmax

log = logging.getLogger(__name__)

#: A mode is refused for a model below this top-1 agreement with fp32 on :func:`photo_inputs` (issue 19).
MIN_AGREEMENT = 0.99
#: ... or when any class probability differs from fp32's by more than this (issue 19).
MAX_PROB_DIFF = 0.02
#: ``auto`` takes a mode only if its time per image in the check was at most this fraction of fp32's.
AUTO_MAX_TIME_RATIO = 0.95
#: Bump when the check, its photos or the quantization change: older verdicts are then redone
#: (2: a finetuned model's own validation images join the bundled photos, :func:`model_photos`).
CHECK_FORMAT = 2
#: A finetuned model's validation images in the check, at most (each in 8 views, like the bundled
#: 13: 16 more photos add 128 inputs to the 104, so the check's time about doubles at most).
MAX_MODEL_PHOTOS = 16
#: ``config.json``'s ``squeezelens_finetune`` key that lists the validation images (written by finetuning).
MODEL_PHOTOS_KEY = "fidelity_images"
INT8_FILE, VERDICT_FILE = "model.int8.onnx", "precision.json"
#: Images per call in the fidelity pass (ONNX Runtime's CPU batch, :data:`.runners.CPU_MAX_BATCH`).
CHECK_BATCH = 4


class LogitsRunner(Runner, Protocol):
    """A :class:`.runners.Runner` that also gives raw logits: (N, 3, H, W) float32 -> (N, classes)."""

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


# -- what this CPU runs natively ----------------------------------------------------------------
@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux names them (``/proc/cpuinfo``); empty where not readable."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def openvino_available() -> bool:
    """Is the ``openvino`` package installed (found without importing it)?"""
    return importlib.util.find_spec("openvino") is not None


@lru_cache(maxsize=1)
def _openvino_capabilities() -> frozenset[str]:
    try:
        import openvino as ov  # type: ignore[import-untyped]

        return frozenset(str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:
        return frozenset()


def native_bf16() -> bool:
    """Does this CPU multiply bf16 natively? From ``/proc/cpuinfo`` (``avx512_bf16``, ``amx_bf16``),
    else (macOS, Windows) from OpenVINO's own capability query (``BF16`` in
    ``OPTIMIZATION_CAPABILITIES``) when OpenVINO is installed."""
    flags = cpu_flags()
    if flags:
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    return openvino_available() and "BF16" in _openvino_capabilities()


def native_int8() -> bool:
    """Does this CPU have integer dot-product instructions the int8 kernels use (AVX2's
    ``vpmaddubsw`` at least; VNNI/AMX are faster)? ARM: ``asimddp``/``i8mm``; Apple silicon: yes."""
    flags = cpu_flags()
    if flags:
        return bool(flags & {"avx2", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})
    return platform.machine().lower() in ("arm64", "aarch64", "x86_64", "amd64")


def int8_engine() -> str:
    """The engine int8 runs on here: ``openvino`` when installed (much faster), else ``onnxruntime``."""
    return "openvino" if openvino_available() else "onnxruntime"


def candidates(requested: str) -> list[str]:
    """The reduced-precision modes to try for ``requested``, best first (``fp32`` is always the fallback).

    Raises:
        UsageError: an unknown mode.
    """
    if requested not in PRECISIONS:
        raise UsageError(f"unknown precision '{requested}'; choose one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return []
    if requested == "auto":
        out = []
        if native_int8():
            out.append("int8")
        if native_bf16() and openvino_available():
            out.append("bf16")
        return out
    return [requested]


def not_native_reason(mode: str) -> str | None:
    """Why ``mode`` cannot run natively here (None when it can)."""
    if mode == "bf16":
        if not native_bf16():
            return "this CPU has no native bf16 (no avx512_bf16/amx_bf16)"
        if not openvino_available():
            return "bf16 needs OpenVINO (pip install 'squeezelens[openvino]')"
    if mode == "int8" and not native_int8():
        return "this CPU has no integer dot-product instructions (AVX2, VNNI or ARM dotprod)"
    return None


# -- the photos of the check ---------------------------------------------------------------------
def photo_paths() -> list[Path]:
    """The bundled real photos (``resources/calibration``, from scikit-image's data; see
    ``scripts/make_calibration_photos.py`` for their sources and licences)."""
    root = Path(__file__).resolve().parent.parent / "resources" / "calibration"
    if not root.is_dir():  # installed layout: squeezelens/core -> squeezelens/resources
        from importlib.resources import files

        root = Path(str(files("squeezelens.resources"))) / "calibration"
    return sorted(root.glob("*.jpg"))


def _variants(img: Image.Image) -> list[Image.Image]:
    """Eight views of one photo: whole, mirrored, four corner crops (70%), centre crop (60%) and it mirrored."""
    w, h = img.size
    cw, ch = int(w * 0.7), int(h * 0.7)
    corners = [img.crop((x, y, x + cw, y + ch)) for x in (0, w - cw) for y in (0, h - ch)]
    cx, cy = int(w * 0.2), int(h * 0.2)
    centre = img.crop((cx, cy, w - cx, h - cy))
    return [img, ImageOps.mirror(img), *corners, centre, ImageOps.mirror(centre)]


def photo_inputs(transform: Callable[[Image.Image], np.ndarray], extra: Sequence[Path] = (),
                 views: bool = True) -> np.ndarray:
    """The fixed inputs of the fidelity check: each bundled photo (and each of ``extra``, e.g. a
    finetuned model's validation images) in eight views (:func:`_variants`) through ``transform``.
    An ``extra`` image that cannot be read is left out (logged): the check runs on the others.

    Returns:
        (N, 3, H, W) float32; N = 8 x photos (104 for the 13 bundled ones), or 1 x with ``views=False``.
    """
    from .errors import ImageLoadError
    from .images import open_image

    out = []
    bundled = photo_paths()
    for i, p in enumerate([*bundled, *extra]):
        try:
            img = open_image(p)
        except ImageLoadError as e:
            if i < len(bundled):
                raise
            log.warning("fidelity check: %s is left out (%s)", p, e.reason)
            continue
        for v in (_variants(img) if views else [img]):
            out.append(np.asarray(transform(v), dtype=np.float32))
    return np.stack(out)


def pick_spread(paths: Sequence[Path], limit: int = MAX_MODEL_PHOTOS) -> list[Path]:
    """At most ``limit`` of ``paths``, spread evenly over the sorted list: sorted by class folder, every
    class whose images fill at least 1/``limit`` of the list is in; a smaller class may be skipped."""
    ordered = sorted(paths)
    if len(ordered) <= limit:
        return ordered
    step = len(ordered) / limit
    return [ordered[int(i * step)] for i in range(limit)]


def model_photos(model: str | os.PathLike[str] | None) -> list[Path]:
    """A finetuned model's own validation images for the fidelity check (issue 19), at most
    :data:`MAX_MODEL_PHOTOS`: those its ``config.json`` lists (``squeezelens_finetune.fidelity_images``,
    written by finetuning) that still exist; for a model finetuned before that list existed, the
    images of the ``val``-named subfolder (:data:`.dataset_scan.VAL_FOLDER_NAMES`) of its recorded
    dataset folder. Empty for a catalogue model, a folder without that record, or images gone.
    Never raises: the bundled photos alone still make the check.
    """
    if model is None:
        return []
    try:
        cfg = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
        record = cfg.get("squeezelens_finetune") if isinstance(cfg, dict) else None
        if not isinstance(record, dict):
            return []
        data_dir = record.get("data_dir")
        listed = record.get(MODEL_PHOTOS_KEY)
        if isinstance(listed, list):  # relative to data_dir (absolute when outside it)
            base = Path(data_dir) if isinstance(data_dir, str) else Path()
            return pick_spread([base / p for p in listed if isinstance(p, str) and (base / p).is_file()])
        if not isinstance(data_dir, str):
            return []
        from .dataset_scan import VAL_FOLDER_NAMES
        from .images import expand_inputs

        for name in VAL_FOLDER_NAMES:
            if (Path(data_dir) / name).is_dir():
                return pick_spread([p for p in expand_inputs([Path(data_dir) / name]) if isinstance(p, Path)])
    except (OSError, ValueError, TypeError):
        return []
    return []


# -- the check -----------------------------------------------------------------------------------
@dataclass
class Fidelity:
    """The verdict on one mode for one model: agreement with fp32 and how fast it ran."""

    precision: str
    engine: str
    images: int
    agreement: float  #: share of images whose top-1 class equals fp32's, 0..1
    max_prob_diff: float  #: largest absolute difference of any class probability from fp32's
    fp32_ms: float  #: fp32 time per image in the check (batches of CHECK_BATCH)
    ms: float  #: this mode's time per image in the check
    passed: bool
    reason: str = ""
    format: int = CHECK_FORMAT

    @property
    def time_ratio(self) -> float:
        return self.ms / self.fp32_ms if self.fp32_ms > 0 else 1.0


def _timed_logits(runner: LogitsRunner, x: np.ndarray) -> tuple[np.ndarray, float]:
    out, total = [], 0.0
    for s in range(0, len(x), CHECK_BATCH):
        t0 = time.perf_counter()
        out.append(np.asarray(runner.logits(x[s:s + CHECK_BATCH]), dtype=np.float32))
        total += time.perf_counter() - t0
    return np.concatenate(out), total * 1000 / len(x)


def check_fidelity(reference: LogitsRunner, candidate: LogitsRunner, inputs: np.ndarray, *,
                   precision: str, engine: str) -> Fidelity:
    """Compare ``candidate`` with the fp32 ``reference`` on ``inputs``.

    Passes when top-1 agreement >= :data:`MIN_AGREEMENT` and the largest probability difference
    <= :data:`MAX_PROB_DIFF` (NaN fails). Both runners take turns batch by batch is not needed: the
    two passes run back to back, fp32 first, and only their ratio is used (``auto``'s speed gate).

    Args:
        inputs: (N, 3, H, W) float32, e.g. :func:`photo_inputs`.
    """
    candidate.logits(inputs[:1])  # first call: graph compilation, not inference
    reference.logits(inputs[:1])
    ref, ref_ms = _timed_logits(reference, inputs)
    got, ms = _timed_logits(candidate, inputs)
    p_ref, p_got = softmax(ref), softmax(got)
    agreement = float((p_ref.argmax(1) == p_got.argmax(1)).mean())
    diff = float(np.abs(p_ref - p_got).max())
    reasons = []
    if not agreement >= MIN_AGREEMENT:
        reasons.append(f"top-1 agrees with fp32 on {agreement:.1%} of {len(inputs)} photos (needs {MIN_AGREEMENT:.0%})")
    if not diff <= MAX_PROB_DIFF:
        reasons.append(f"probabilities differ from fp32 by up to {diff:.3f} (allowed {MAX_PROB_DIFF})")
    return Fidelity(precision, engine, len(inputs), agreement, diff, ref_ms, ms, not reasons, "; ".join(reasons))


# -- the cache of verdicts and int8 graphs, next to the fp32 graph ---------------------------------
def _verdicts(graph_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((graph_dir / VERDICT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_verdict(graph_dir: Path, precision: str, engine: str) -> Fidelity | None:
    """The cached verdict for ``precision`` on ``engine`` next to this graph, if any (of this :data:`CHECK_FORMAT`)."""
    entry = _verdicts(graph_dir).get(f"{precision}/{engine}")
    if not isinstance(entry, dict) or entry.get("format") != CHECK_FORMAT:
        return None
    try:
        return Fidelity(**entry)
    except TypeError:
        return None


def store_verdict(graph_dir: Path, verdict: Fidelity) -> None:
    """Add ``verdict`` to the graph's ``precision.json`` (atomic write; a failure is logged, not raised)."""
    data = _verdicts(graph_dir)
    data[f"{verdict.precision}/{verdict.engine}"] = asdict(verdict)
    try:
        write_text_atomic(graph_dir / VERDICT_FILE, json.dumps(data, indent=1))
    except OSError as e:
        log.warning("could not cache the %s fidelity verdict (%s)", verdict.precision, e)


def open_mode(
    graph_path: Path, precision: str, transform: Callable[[Image.Image], np.ndarray],
    extra_photos: Sequence[Path] = (),
) -> tuple[LogitsRunner, str]:
    """The runner of ``precision`` for the fp32 graph at ``graph_path``: quantizes to ``model.int8.onnx``
    first when that is not cached yet (calibrated on the bundled photos and ``extra_photos``, a
    finetuned model's own validation images, :func:`model_photos`; one view each).

    Returns:
        (runner, engine name).

    Raises:
        ExportError: the quantization failed.
        UsageError: ``precision`` is not a reduced-precision mode.
    """
    if precision == "int8":
        int8 = graph_path.with_name(INT8_FILE)
        if not int8.is_file():
            calibration = photo_inputs(transform, extra_photos, views=False)
            quantize_int8_fn()(graph_path, int8, (x[None] for x in calibration))
        engine = int8_engine()
        return (OvRunner(int8) if engine == "openvino" else OrtRunner(int8)), engine
    if precision == "bf16":
        return OvRunner(graph_path, "bf16"), "openvino"
    raise UsageError(f"no reduced-precision runner for '{precision}'")


def quantize_int8_fn() -> Callable[..., None]:
    from .quantize import quantize_int8

    return quantize_int8


@dataclass
class Choice:
    """What :func:`choose` settled on: the runner (None for fp32), the mode and a line for people."""

    runner: LogitsRunner | None
    precision: str
    note: str
    verdicts: list[Fidelity]


#: Builds a mode's runner for a graph; tests inject a broken one. Signature as :func:`open_mode`.
Opener = Callable[[Path, str, Callable[[Image.Image], np.ndarray]], tuple[LogitsRunner, str]]


def choose(requested: str, graph_path: Path, fp32: LogitsRunner, transform: Callable[[Image.Image], np.ndarray],
           *, opener: Opener | None = None, extra_photos: Sequence[Path] = (),
           stop: Callable[[], bool] | None = None) -> Choice:
    """Settle ``requested`` (``auto``/``fp32``/``int8``/``bf16``) for the model whose fp32 graph is ``graph_path``.

    Each candidate mode (:func:`candidates`) is checked once per model and engine and the verdict
    cached; a mode that is not native here or fails the check is refused with the reason in the
    note, and the next candidate (finally fp32) is used. An explicit ``int8``/``bf16`` that is
    refused falls back to fp32 too, with the reason (never an error: the results stay right).

    Args:
        fp32: the fp32 runner of the same graph (the reference).
        transform: the model's numpy eval transform (for the photos).
        opener: builds a mode's runner (default :func:`open_mode`).
        extra_photos: more real photos for the check (a finetuned model's validation images).
        stop: asked before each long step (quantization, the check); True gives up with fp32
            (the classifier is being closed).

    Raises:
        UsageError: an unknown mode.
    """
    default_opener = opener is None
    opener = opener or partial(open_mode, extra_photos=extra_photos)
    notes: list[str] = []
    verdicts: list[Fidelity] = []
    inputs: np.ndarray | None = None
    for mode in candidates(requested):
        if stop is not None and stop():
            break
        why = not_native_reason(mode)
        if why:
            notes.append(f"{mode} refused: {why}")
            log.warning("%s precision refused: %s; running in fp32", mode, why)
            continue
        if default_opener:  # a cached refusal needs no runner (compiling one takes a second or more)
            known = cached_verdict(graph_path.parent, mode, int8_engine() if mode == "int8" else "openvino")
            if known is not None and not known.passed:
                notes.append(f"{mode} refused for this model: {known.reason}")
                continue
        try:
            runner, engine = opener(graph_path, mode, transform)
        except Exception as e:
            reason = e.reason if isinstance(e, ExportError) else f"{type(e).__name__}: {e}"
            notes.append(f"{mode} refused: {reason}")
            log.warning("%s precision could not be prepared: %s", mode, reason)
            continue
        verdict = cached_verdict(graph_path.parent, mode, engine)
        if verdict is None and stop is not None and stop():
            break
        if verdict is None:
            if inputs is None:
                inputs = photo_inputs(transform, extra_photos)
            verdict = check_fidelity(fp32, runner, inputs, precision=mode, engine=engine)
            store_verdict(graph_path.parent, verdict)
        verdicts.append(verdict)
        if not verdict.passed:
            notes.append(f"{mode} refused for this model: {verdict.reason}")
            log.warning("%s precision refused: %s", mode, verdict.reason)
            continue
        if requested == "auto" and verdict.time_ratio > AUTO_MAX_TIME_RATIO:
            notes.append(f"{mode} not faster here ({verdict.time_ratio:.2f}x fp32's time)")
            continue
        note = (f"{mode} via {engine}: top-1 agrees with fp32 on {verdict.agreement:.0%}, "
                f"probabilities within {verdict.max_prob_diff:.3f}")
        return Choice(runner, mode, "; ".join([note, *notes]), verdicts)
    return Choice(None, "fp32", "; ".join(["fp32", *notes]), verdicts)
