"""``squeezelens review DATA_DIR``: training images whose folder label looks wrong (placeholder, filled in below)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``review`` on the CLI's subparsers."""
    r: argparse.ArgumentParser = subparsers.add_parser("review", help="rank training images whose label looks wrong")
    r.add_argument("data_dir", metavar="DATA_DIR")
    return r


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
