"""``squeezelens explain IMAGE [--class LABEL|INDEX] --output heat.png``: why the model sees a class there.

A Grad-CAM heatmap (:mod:`squeezelens.core.heatmap`) of the top-1 class or the one named: as an
overlay on the image (``--format png``, the default) or the raw map (``--format npy``: float32,
shape H x W of the upright image, EXIF orientation applied, values 0..1).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.errors import UsageError

from .exit_codes import EXIT_OK
from .output import check_output_file
from .progress import download_progress, log_warnings_to_stderr


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``explain`` on the CLI's subparsers."""
    e: argparse.ArgumentParser = subparsers.add_parser(
        "explain", help="a heatmap of where the model sees a class in an image (Grad-CAM)")
    e.add_argument("image", metavar="IMAGE", help="the image file")
    e.add_argument("--class", dest="class_", metavar="LABEL|INDEX", help="the class to explain (default: the top-1)")
    e.add_argument("--output", "-o", required=True, metavar="FILE", help="the .png overlay or .npy map to write")
    e.add_argument("--format", choices=("png", "npy"), help="png: overlay on the image; npy: the raw map "
                                                            "(default: from the --output ending, else png)")
    e.add_argument("--opacity", type=float, default=0.6, help="overlay strength of the hottest pixels, 0..1")
    e.add_argument("--model", help=f"variant (arch or arch.tag) or model folder (default {DEFAULT_MODEL})")
    e.add_argument("--weights", help="weights file or saved-model folder")
    e.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu")
    e.add_argument("--offline", action="store_true", help="never try to download weights")
    return e


def run(args: argparse.Namespace) -> int:
    """Write the heatmap; print the class explained and its probability on stderr; 0.

    Raises:
        UsageError: a bad ``--class`` or ``--opacity``.
        ImageLoadError: the image cannot be read.
        OutputError: ``--output`` cannot be written.
        SqueezeLensError: the model or weights cannot be loaded (its own kind).
    """
    import numpy as np

    from squeezelens.core.atomic_files import write_bytes_atomic
    from squeezelens.core.engine import Classifier
    from squeezelens.core.heatmap import explain, overlay, resolve_class
    from squeezelens.core.images import open_image

    if not 0.0 <= args.opacity <= 1.0:
        raise UsageError("--opacity must be between 0 and 1")
    out = Path(args.output)
    fmt = args.format or ("npy" if out.suffix.lower() == ".npy" else "png")
    check_output_file(out)
    log_warnings_to_stderr()
    progress, cancel = download_progress()
    try:
        clf = Classifier.load(args.model, args.weights, device=args.device, backend="torch",
                              allow_download=not args.offline, progress=progress, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise
    with clf:
        heat = explain(clf, args.image, resolve_class(args.class_, clf.labels))
    buf = io.BytesIO()
    if fmt == "npy":
        np.save(buf, heat.map)
    else:
        overlay(open_image(args.image), heat.map, args.opacity).save(buf, format="PNG")
    write_bytes_atomic(out, buf.getvalue())
    h, w = heat.map.shape
    print(f"squeezelens: {heat.label} (class {heat.class_index}, p={heat.prob:.4f}); wrote {out} "
          f"({fmt}, {w}x{h})", file=sys.stderr)
    return EXIT_OK
