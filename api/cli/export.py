"""``squeezelens export MODEL --output FILE``: one self-contained ONNX file with the model's class names
and preprocessing in its metadata (docs/EXPORT.md); ``--quantize int8``; ``--check IMAGES`` runs the
file with onnxruntime + numpy + Pillow alone and compares it with the app's own predictions.
``squeezelens export FILE.onnx --check IMAGES`` (the issue's spelling) checks an already exported file,
as ``--output FILE.onnx --check-only`` does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.errors import UsageError

from .exit_codes import EXIT_OK, EXIT_SOME_FAILED
from .output import write_output
from .progress import download_progress, log_warnings_to_stderr


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``export`` on the CLI's subparsers."""
    e: argparse.ArgumentParser = subparsers.add_parser(
        "export", help="write a model as one ONNX file that carries its class names and preprocessing")
    e.add_argument("model", nargs="?", metavar="MODEL",
                   help=f"variant (arch or arch.tag) or model folder (default {DEFAULT_MODEL}; with --check-only: "
                        "the model recorded in the file); an exported FILE.onnx: check it with --check")
    e.add_argument("--output", "-o", metavar="FILE", help="the .onnx file to write (or check)")
    e.add_argument("--format", choices=("onnx",), default="onnx", help="file format (onnx)")
    e.add_argument("--weights", help="weights file or saved-model folder")
    e.add_argument("--quantize", choices=("int8",), help="static int8 quantization, calibrated on --calibration")
    e.add_argument("--calibration", nargs="+", metavar="PATH",
                   help="images or folders to calibrate int8 on (default: the model's own dataset folder)")
    e.add_argument("--check", nargs="+", metavar="IMAGE",
                   help="after exporting, compare the file (run by onnxruntime alone) with the app on these images")
    e.add_argument("--check-only", action="store_true", help="do not export; check the existing FILE with --check")
    e.add_argument("--offline", action="store_true", help="never try to download weights")
    return e


def run(args: argparse.Namespace) -> int:
    """Export (unless ``--check-only``), then check when ``--check`` names images.

    Returns:
        0 done (and an fp32 check passed); 1 an fp32 check found a difference.

    An existing ``MODEL`` ending in ``.onnx`` is an exported file to check (model and weights: those
    recorded in it), the same as ``--output MODEL --check-only``.

    Raises:
        UsageError: ``--check-only`` without ``--check``; ``--calibration`` without ``--quantize``;
            no ``--output``; an ``.onnx`` MODEL without ``--check``, or with ``--output`` or ``--quantize``.
        SqueezeLensError: the model, export, quantization or file (its own kind).
    """
    from squeezelens.core.model_export import check_export, export_model, format_check

    if args.model and args.model.lower().endswith(".onnx") and Path(args.model).is_file():
        if not args.check:
            raise UsageError(f"{args.model} is already an exported file: check it with --check IMAGE ...")
        if args.output or args.quantize:
            raise UsageError("an exported .onnx file is only checked: drop --output and --quantize")
        args.output, args.model, args.check_only = args.model, None, True
    if not args.output:
        raise UsageError("--output FILE is required (the .onnx file to write)")
    if args.check_only and not args.check:
        raise UsageError("--check-only needs images: --check IMAGE ...")
    if args.calibration and not args.quantize:
        raise UsageError("--calibration is for --quantize int8")
    log_warnings_to_stderr()
    out = Path(args.output)
    if not args.check_only:
        progress, cancel = download_progress()
        try:
            s = export_model(args.model, out, args.weights, quantize=args.quantize, calibration=args.calibration,
                             allow_download=not args.offline, progress=progress, cancel=cancel)
        except KeyboardInterrupt:
            cancel.set()
            raise
        if s.untrained:
            print(f"squeezelens: warning: {s.model} has no weights; the file holds an untrained network",
                  file=sys.stderr)
        what = f"int8, calibrated on {s.calibration_images} images" if s.quantize else "float32"
        print(f"squeezelens: wrote {out} ({s.num_classes} classes, {what}, {s.size_bytes / 1e6:.1f} MB, "
              f"{s.seconds:.1f} s)", file=sys.stderr)
    if not args.check:
        return EXIT_OK
    report = check_export(out, args.check, args.model, args.weights, allow_download=not args.offline)
    write_output(format_check(report), None)
    return EXIT_OK if report.passed else EXIT_SOME_FAILED
