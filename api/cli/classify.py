"""``squeezelens classify PATH ...``: the top classes of images and folders of images, as a table, CSV,
JSON, JSON lines or Parquet (:mod:`squeezelens.core.report`), on stdout or in ``--output``.

Results are streamed as they are made (:mod:`squeezelens.core.result_stream`): memory stays flat
whatever the number of inputs, a write that comes up short is an error (exit 2), and Ctrl+C keeps
the finished results (the rest are marked ``cancelled``, or with ``--resume`` left for the next
run). ``--shard I/N`` takes a deterministic 1/N of the inputs (:mod:`squeezelens.core.shards`);
``--engine ray`` classifies on a Ray cluster (:mod:`squeezelens.core.ray_engine`).

torch is imported only when the command runs, so ``squeezelens --help`` stays instant.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.errors import UsageError
from squeezelens.core.options import BACKENDS, DEVICES, PRECISIONS
from squeezelens.core.result_stream import (
    CANCELLED,
    STREAM_FORMATS,
    ResultWriter,
    input_key,
    require_pyarrow,
    resume_format,
    source_text,
)
from squeezelens.core.shards import parse_shard, take_shard
from squeezelens.core.unknown import parse_threshold

from .exit_codes import EXIT_CANCELLED, EXIT_OK, EXIT_SOME_FAILED
from .output import check_output_file, open_results
from .progress import classify_counter, download_progress, log_warnings_to_stderr

if TYPE_CHECKING:
    from squeezelens.core.engine import ImageInput
    from squeezelens.core.predictions import Prediction

#: Inputs handed to one ``Classifier.classify`` call: its results list is all that is held at once.
CHUNK = 256


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``classify`` on the CLI's subparsers."""
    c: argparse.ArgumentParser = subparsers.add_parser("classify", help="classify images and folders of images")
    c.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (walked recursively)")
    c.add_argument("--model", help=f"variant (arch or arch.tag) or model folder (default {DEFAULT_MODEL})")
    c.add_argument("--weights", help="weights file (.safetensors or a torch state_dict) or a saved-model folder")
    c.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    c.add_argument("--format", choices=STREAM_FORMATS, default=None,
                   help="table (default), csv, json (a list), jsonl (one object per line) or parquet "
                        "(needs pyarrow and --output); with --resume or an --output ending in .jsonl or "
                        ".parquet, the file's suffix picks it")
    c.add_argument("--output", "-o", help="write the results to this file instead of standard output")
    c.add_argument("--resume", action="store_true",
                   help="append to --output FILE.csv|.jsonl|.parquet as results are made, skipping the "
                        "inputs it already holds (run the same command again after a crash or Ctrl+C)")
    c.add_argument("--shard", metavar="I/N",
                   help="classify only shard I of N (0-based): every N-th input of the sorted list, "
                        "e.g. --shard $SLURM_ARRAY_TASK_ID/8")
    c.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default) or ray: classify on a Ray cluster (pip install 'squeezelens[cluster]')")
    c.add_argument("--address", help="--engine ray: the cluster to join (e.g. auto); default starts a local one")
    c.add_argument("--workers", type=int, help="--engine ray: classifier actors (default: 1 per 4 CPUs of the cluster)")
    c.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="--engine ray: GPUs each actor reserves (e.g. 1, or 0.5 to share one; default 0)")
    c.add_argument("--device", choices=DEVICES, default="auto")
    c.add_argument("--backend", choices=BACKENDS, default="auto")
    c.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="CPU inference precision: fp32 (exact, default), int8, bf16 (where the CPU has it) or auto "
                        "(the fastest of these that this CPU runs natively and that agrees with fp32 on the "
                        "bundled photos); a refused mode falls back to fp32 with a warning")
    c.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    c.add_argument("--no-fast-decode", action="store_true",
                   help="decode JPEGs at full size: exactly timm's eval pipeline (slower on large photos)")
    c.add_argument("--no-colour-management", action="store_true",
                   help="use the pixels as stored, ignoring embedded colour profiles (timm's own pipeline)")
    c.add_argument("--offline", action="store_true", help="never try to download weights")
    c.add_argument("--unknown-threshold", metavar="X|off",
                   help="call an image 'unknown' when its top probability is below X (0..1 or a percentage); "
                        "'off' disables it (default: the threshold calibrated when the model was finetuned)")
    return c


def choose_format(args: argparse.Namespace) -> str:
    """The output format: ``--format`` when given, else the ``--output`` suffix with ``--resume`` or for
    ``.jsonl``/``.parquet`` (which had no meaning before), else ``table``.

    Raises:
        UsageError: ``--resume`` without a resumable ``--output``, or a ``--format`` that disagrees with it.
    """
    suffix = Path(args.output).suffix.lower() if args.output else ""
    if args.resume:
        if args.output is None:
            raise UsageError("--resume needs --output FILE.csv, FILE.jsonl or FILE.parquet")
        fmt = resume_format(Path(args.output))
        if args.format not in (None, fmt):
            raise UsageError(f"--resume writes {fmt} to {Path(args.output).name}; drop --format {args.format}")
        return fmt
    if args.format is not None:
        return str(args.format)
    return {".jsonl": "jsonl", ".parquet": "parquet"}.get(suffix, "table")


def run(args: argparse.Namespace) -> int:
    """Classify ``args.paths``; 0 when every input was classified, 1 when some could not be, 130 when
    Ctrl+C stopped the run (the finished results are written).

    Raises:
        UsageError: a bad ``--top-k``, ``--batch-size``, ``--shard`` or ``--resume``, or ``--output``
            names a folder.
        OutputError: ``--output`` cannot be written, or a write came up short (a full disk).
        SqueezeLensError: the model or weights cannot be loaded (its own kind).
        BrokenPipeError: standard output's reader left.
    """
    from squeezelens.core.images import expand_inputs

    if args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.output is not None:
        check_output_file(Path(args.output))  # before minutes of work, not after
    unknown = None if args.unknown_threshold is None else parse_threshold(args.unknown_threshold)
    fmt = choose_format(args)
    if fmt == "parquet":
        if args.output is None:
            raise UsageError("--format parquet needs --output FILE.parquet")
        require_pyarrow()
    shard = parse_shard(args.shard) if args.shard else None
    if args.engine != "ray" and (args.address or args.workers or args.gpus_per_worker):
        raise UsageError("--address, --workers and --gpus-per-worker go with --engine ray")
    log_warnings_to_stderr()  # e.g. why ONNX Runtime was not used, or a move off a full GPU

    inputs: list[ImageInput] = list(expand_inputs(args.paths))
    if shard is not None:
        inputs = take_shard(inputs, *shard, key=source_text)
    if args.engine == "ray":
        from squeezelens.core.ray_engine import RayClassify

        engine: _Engine = RayClassify.start(
            args.model, args.weights, address=args.address, workers=args.workers,
            gpus_per_worker=args.gpus_per_worker, device=args.device, backend=args.backend,
            fast_decode=not args.no_fast_decode, allow_download=not args.offline, unknown_threshold=unknown,
            precision=args.precision, colour_manage=False if args.no_colour_management else None,
        )
    else:
        engine = _LocalEngine.load(args, unknown)
    if engine.untrained:
        why = f" ({engine.untrained_reason})" if engine.untrained_reason else ""
        print(f"squeezelens: warning: {engine.name} has no weights{why}; running untrained", file=sys.stderr)

    done, writer = open_results(fmt, args.output, engine.untrained, args.resume,
                                 with_unknown=getattr(engine, "unknown_threshold", None) is not None)
    if args.resume:
        inputs = _not_done(inputs, done, fmt)
        if done:
            print(f"squeezelens: resuming: {len(done)} inputs already in {args.output}, {len(inputs)} to go",
                  file=sys.stderr)
    return _stream(engine, inputs, writer, args, fmt)


def _not_done(inputs: Sequence[ImageInput], done: set[str], fmt: str) -> list[ImageInput]:
    """The inputs whose path text is not in ``done`` (each path once)."""
    out = []
    for src in inputs:
        key = input_key(src, fmt)
        if key not in done:
            done.add(key)
            out.append(src)
    return out


class _Engine(Protocol):
    """What :func:`run` needs of an engine: its model's name, and predictions in input order."""

    name: str
    untrained: bool
    untrained_reason: str | None

    def classify(self, inputs: Sequence[ImageInput], top_k: int, batch_size: int, cancel: threading.Event,
                 emit: Callable[[Prediction], None]) -> None:
        """Call ``emit`` with each input's prediction in input order as it is made; stop early once
        ``cancel`` is set (the inputs not emitted count as not done)."""

    def close(self) -> None: ...


class _LocalEngine:
    """One :class:`~squeezelens.core.engine.Classifier` in this process, fed :data:`CHUNK` inputs at a time."""

    def __init__(self, clf: Any) -> None:
        self.clf = clf
        self.name, self.untrained = clf.name, clf.untrained
        self.untrained_reason = clf.loaded.untrained_reason

    @classmethod
    def load(cls, args: argparse.Namespace, unknown: float | str | None = None) -> _LocalEngine:
        from squeezelens.core.engine import Classifier

        progress, cancel = download_progress()
        try:
            # A first run exports the ONNX graph before classifying (about a second, once per model and
            # weights): a one-shot process would otherwise exit before a background export is cached.
            clf = Classifier.load(
                args.model, args.weights, device=args.device, backend=args.backend,
                fast_decode=not args.no_fast_decode, allow_download=not args.offline,
                progress=progress, cancel=cancel, export="wait", unknown_threshold=unknown,
                precision=args.precision,
            )
        except KeyboardInterrupt:
            cancel.set()
            raise
        if args.no_colour_management:
            clf.colour_manage = False
        return cls(clf)

    def classify(self, inputs: Sequence[ImageInput], top_k: int, batch_size: int, cancel: threading.Event,
                 emit: Callable[[Prediction], None]) -> None:
        chunk = max(CHUNK, batch_size * 4)
        for start in range(0, len(inputs), chunk):
            # on_result comes in input order as each batch finishes, never for cancelled inputs
            self.clf.classify(inputs[start:start + chunk], top_k=top_k, batch_size=batch_size,
                              on_result=lambda _i, p: emit(p), cancel=cancel)
            if cancel.is_set():
                return

    @property
    def unknown_threshold(self) -> float | None:
        """The unknown threshold in force (None: no verdict, no ``unknown`` column)."""
        return getattr(self.clf, "unknown_threshold", None)

    @property
    def table_footer(self) -> str:
        """The table's last line when timings come from a reduced-precision runner, else ``""``."""
        if getattr(self.clf, "precision", "fp32") == "fp32":
            return ""
        return f"(times in {self.clf.precision} on {self.clf.backend}: reduced precision, checked against fp32)\n"

    def close(self) -> None:
        self.clf.close()


def _stream(engine: _Engine, inputs: Sequence[ImageInput], writer: ResultWriter, args: argparse.Namespace,
            fmt: str) -> int:
    """Write each prediction as it comes; on Ctrl+C finish the batch in flight, then stop.

    Without ``--resume`` the inputs not done are written as ``cancelled`` errors (the output still has
    one entry per input); with it they are left out, for the next run to do.
    """
    cancel = threading.Event()
    counter = classify_counter(len(inputs))
    written = failed = 0

    def emit(pred: Prediction) -> None:
        nonlocal written, failed
        writer.write(pred)
        if counter is not None:
            counter(written, pred)
        written += 1
        failed += not pred.ok

    restore = _on_sigint(cancel)
    ok = False
    try:
        engine.classify(inputs, args.top_k, args.batch_size, cancel, emit)
        footer, note = getattr(engine, "table_footer", ""), getattr(writer, "note", None)
        if footer and note is not None:
            note(footer)
        if cancel.is_set() and not args.resume:
            for src in inputs[written:]:
                writer.write(_cancelled(src, engine))
        writer.close()
        ok = True
    finally:
        restore()
        if not ok:
            abort = getattr(writer, "abort", None)
            if abort is not None:
                abort()
        engine.close()
    if cancel.is_set() and written < len(inputs):
        rest = ("marked cancelled" if not args.resume
                else "left for the next run: run the same command again to finish")
        print(f"squeezelens: interrupted: {written} of {len(inputs)} inputs classified and written; "
              f"the other {len(inputs) - written} {rest}", file=sys.stderr)
        return EXIT_CANCELLED
    if failed:
        print(f"squeezelens: {failed} of {written} inputs could not be classified", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _cancelled(src: ImageInput, engine: _Engine) -> Prediction:
    from squeezelens.core.predictions import Prediction

    return Prediction(source_text(src), engine.name, error=CANCELLED, error_reason=CANCELLED,
                      untrained=engine.untrained)


def _on_sigint(cancel: threading.Event) -> Callable[[], None]:
    """First Ctrl+C: finish the batch in flight, write, stop. A second: stop at once (KeyboardInterrupt).
    Returns the function that puts the previous handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(_sig: int, _frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nsqueezelens: stopping after the current batch (Ctrl+C again to stop at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore
