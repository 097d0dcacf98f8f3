"""``squeezelens models``: the SE-ResNeXt variants timm knows, their pretrained tags, and whether each
one's weights are already on disk (no network)."""

from __future__ import annotations

import argparse
from typing import Any

from squeezelens.core.report import format_models_json, format_models_table, model_rows

from .exit_codes import EXIT_OK
from .output import write_output


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``models`` on the CLI's subparsers."""
    m: argparse.ArgumentParser = subparsers.add_parser(
        "models", help="list the SE-ResNeXt variants and whether their weights are cached")
    m.add_argument("--format", choices=("table", "json"), default="table")
    return m


def run(args: argparse.Namespace) -> int:
    """Print the catalogue as a table or JSON on stdout; 0.

    Raises:
        OutputError: stdout cannot be written.
    """
    from squeezelens.core.catalogue import list_variants
    from squeezelens.core.weights import cached_weights

    rows = model_rows(list_variants(), lambda hf_hub_id: cached_weights(hf_hub_id) is not None)
    write_output(format_models_json(rows) if args.format == "json" else format_models_table(rows), None)
    return EXIT_OK
