"""``squeezelens versions MODEL_DIR [--rollback N] [--json]``: the versions kept in a model folder
(:mod:`squeezelens.core.model_versions`), and making an earlier one current again."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from squeezelens.core.model_versions import format_versions, read_index, rollback

from .exit_codes import EXIT_OK
from .output import write_output


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``versions`` on the CLI's subparsers."""
    v: argparse.ArgumentParser = subparsers.add_parser(
        "versions", help="list the versions kept in a model folder, or roll back to one",
        description="Each finetune into MODEL_DIR keeps the model it replaces in MODEL_DIR/versions/. "
                    "The folder itself always holds the current version (it loads in plain timm).")
    v.add_argument("model_dir", metavar="MODEL_DIR", help="a model folder written by `squeezelens finetune`")
    v.add_argument("--rollback", type=int, metavar="N", help="make version N current (the others are kept)")
    v.add_argument("--json", action="store_true", help="print the index as JSON")
    return v


def run(args: argparse.Namespace) -> int:
    """List (and with ``--rollback`` change) the versions; 0 on success.

    Raises:
        UsageError: ``--rollback`` names a version that does not exist.
        OutputError: the index cannot be read, or the folder cannot be written.
    """
    from squeezelens.core.errors import ModelNotFoundError
    from squeezelens.core.model_versions import has_model, versions_dir

    if not has_model(args.model_dir) and not versions_dir(args.model_dir).is_dir():
        raise ModelNotFoundError("not a model folder (no config.json + model.safetensors)", args.model_dir)
    if args.rollback is not None:
        entry = rollback(args.model_dir, args.rollback)
        acc = "" if entry.val_accuracy is None else f" (validation accuracy {entry.val_accuracy:.1%})"
        print(f"squeezelens: version {entry.number} is current again{acc}", file=sys.stderr)
    index = read_index(args.model_dir)
    if args.json:
        text = json.dumps({"current": index.current, "versions": [v.to_dict() for v in index.versions]},
                          indent=2) + "\n"
    else:
        text = format_versions(index)
    write_output(text, None)
    return EXIT_OK
