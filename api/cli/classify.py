"""``squeezelens classify PATH ...``: the top classes of images and folders of images, as a table, CSV
or JSON (:mod:`squeezelens.core.report`), on stdout or in ``--output``.

torch is imported only when the command runs, so ``squeezelens --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.errors import UsageError
from squeezelens.core.options import BACKENDS, DEVICES, PRECISIONS
from squeezelens.core.report import CLASSIFY_FORMATS
from squeezelens.core.unknown import parse_threshold

from .exit_codes import EXIT_OK, EXIT_SOME_FAILED
from .output import check_output_file, write_output
from .progress import classify_counter, download_progress, log_warnings_to_stderr


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``classify`` on the CLI's subparsers."""
    c: argparse.ArgumentParser = subparsers.add_parser("classify", help="classify images and folders of images")
    c.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (walked recursively)")
    c.add_argument("--model", help=f"variant (arch or arch.tag) or model folder (default {DEFAULT_MODEL})")
    c.add_argument("--weights", help="weights file (.safetensors or a torch state_dict) or a saved-model folder")
    c.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    c.add_argument("--format", choices=tuple(CLASSIFY_FORMATS), default="table")
    c.add_argument("--output", "-o", help="write the results to this file instead of standard output")
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


def run(args: argparse.Namespace) -> int:
    """Classify ``args.paths``; 0 when every input was classified, 1 when some could not be.

    Raises:
        UsageError: a bad ``--top-k`` or ``--batch-size``, or ``--output`` names a folder.
        OutputError: ``--output`` cannot be written.
        SqueezeLensError: the model or weights cannot be loaded (its own kind).
    """
    from squeezelens.core.engine import Classifier
    from squeezelens.core.images import expand_inputs

    if args.top_k < 1:
        raise UsageError("--top-k must be at least 1")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.output is not None:
        check_output_file(Path(args.output))  # before minutes of work, not after
    unknown = None if args.unknown_threshold is None else parse_threshold(args.unknown_threshold)
    log_warnings_to_stderr()  # e.g. why ONNX Runtime was not used, or a move off a full GPU
    progress, cancel = download_progress()
    try:
        # A first run exports the ONNX graph before classifying (about a second, once per model and
        # weights): a one-shot process would otherwise exit before a background export is cached.
        clf = Classifier.load(
            args.model, args.weights, device=args.device, backend=args.backend,
            fast_decode=not args.no_fast_decode, allow_download=not args.offline,
            progress=progress, cancel=cancel, export="wait", unknown_threshold=unknown, precision=args.precision,
        )
    except KeyboardInterrupt:
        cancel.set()
        raise
    if args.no_colour_management:
        clf.colour_manage = False
    if clf.untrained:
        why = f" ({clf.loaded.untrained_reason})" if clf.loaded.untrained_reason else ""
        print(f"squeezelens: warning: {clf.name} has no weights{why}; running untrained", file=sys.stderr)

    inputs = expand_inputs(args.paths)
    results = clf.classify(inputs, top_k=args.top_k, batch_size=args.batch_size,
                           on_result=classify_counter(len(inputs)))
    text = CLASSIFY_FORMATS[args.format](results, clf.untrained)
    if args.format == "table" and clf.precision != "fp32":  # timings of a reduced-precision run are marked
        text += f"(times in {clf.precision} on {clf.backend}: reduced precision, checked against fp32)\n"
    write_output(text, args.output)
    failed = sum(1 for r in results if not r.ok)
    if failed:
        print(f"squeezelens: {failed} of {len(results)} inputs could not be classified", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK
