"""``squeezelens review DATA_DIR [--model ...] [--json]``: training images whose folder label looks wrong,
most suspicious first (:mod:`squeezelens.core.review`: confident learning on out-of-fold predictions
of linear heads over cached backbone features). Moving files is the desktop app's review queue."""

from __future__ import annotations

import argparse
import json
from typing import Any

from squeezelens.core.catalogue import DEFAULT_MODEL
from squeezelens.core.options import DEVICES

from .exit_codes import EXIT_OK
from .output import write_output


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``review`` on the CLI's subparsers."""
    r: argparse.ArgumentParser = subparsers.add_parser(
        "review", help="rank training images whose folder label looks wrong",
        description="Judge every image of DATA_DIR by linear heads trained without it (k folds over the "
                    "backbone features, reused from the finetune feature cache) and list those whose label "
                    "disagrees with the rest of the data, most suspicious first.")
    r.add_argument("data_dir", metavar="DATA_DIR", help="folder with one subfolder per class (or train/ and val/)")
    r.add_argument("--model", help=f"feature extractor: variant or model folder (default {DEFAULT_MODEL})")
    r.add_argument("--weights", help="weights file for the model")
    r.add_argument("--input-size", type=int, help="square input size (use the one you finetune with, to reuse "
                                                   "its cached features)")
    r.add_argument("--folds", type=int, default=5, help="k of the k-fold split (default 5)")
    r.add_argument("--top", type=int, help="list only the N most suspicious images (default: all)")
    r.add_argument("--device", choices=DEVICES, default="auto")
    r.add_argument("--offline", action="store_true", help="never try to download weights")
    r.add_argument("--json", action="store_true", help="print the full ranking as JSON")
    return r


def run(args: argparse.Namespace) -> int:
    """Print the ranking; 0 on success.

    Raises:
        SqueezeLensError: an unusable dataset, model or option (exit 2).
    """
    from squeezelens.core.errors import UsageError
    from squeezelens.core.review import format_review, review_dataset

    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    result = review_dataset(args.data_dir, args.model, args.weights, device=args.device, input_size=args.input_size,
                            folds=args.folds, allow_download=not args.offline)
    if args.json:
        d = result.to_dict()
        if args.top is not None:
            d["suspects"] = d["suspects"][: args.top]
        write_output(json.dumps(d, indent=2) + "\n", None)
    else:
        write_output(format_review(result, args.top), None)
    return EXIT_OK
