"""``squeezelens finetune DATA_DIR --output MODEL_DIR``: the command-line face of :mod:`squeezelens.core.finetune`.

Progress goes to stderr (a rewritten line per batch on a terminal, one line per epoch always:
:class:`~.progress.ProgressPrinter`), the summary to stdout (:func:`squeezelens.core.report.format_summary`).
Ctrl+C cancels at the next batch and leaves an earlier model at ``--output`` as it was (exit 130); a
second Ctrl+C stops at once (still without touching the output). torch is imported only when the
command runs, so ``squeezelens --help`` stays instant.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from squeezelens.core.atomic_files import write_text_atomic
from squeezelens.core.errors import OutputError
from squeezelens.core.options import DEVICES, FINETUNE_MODES
from squeezelens.core.report import format_finetune_json, format_summary

from .exit_codes import EXIT_CANCELLED, EXIT_OK
from .progress import ProgressPrinter

#: FinetuneConfig's settings by the flags that set them, so a bad value's message names the flag.
OPTION_NAMES = {"epochs": "--epochs", "batch_size": "--batch-size", "val_split": "--val-split",
                "input_size": "--input-size", "lr": "--lr", "num_workers": "--workers"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``finetune`` on the CLI's subparsers."""
    f: argparse.ArgumentParser = subparsers.add_parser(
        "finetune", help="teach a model your own classes from a folder of class subfolders",
        description="Train a classifier on DATA_DIR (one subfolder of images per class, or train/ and val/ "
                    "of that form) and save it to MODEL_DIR in timm's folder layout.",
    )
    f.add_argument("data_dir", metavar="DATA_DIR", help="folder with one subfolder per class (or train/ and val/)")
    f.add_argument("--output", "-o", required=True, metavar="MODEL_DIR",
                   help="model folder to write (an earlier model there is replaced only when training succeeds)")
    f.add_argument("--model", help="base model: variant name (arch or arch.tag) or a saved-model folder")
    f.add_argument("--weights", help="weights file for the base model")
    f.add_argument("--mode", choices=FINETUNE_MODES, default="quick",
                   help="quick: new head on cached frozen features (default); deep: also train the last stage")
    f.add_argument("--epochs", type=int, help="maximum epochs (default 50 quick, 5 deep)")
    f.add_argument("--val-split", type=float, default=0.2,
                   help="validation fraction per class when DATA_DIR has no val/ (default 0.2)")
    f.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    f.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    f.add_argument("--input-size", type=int, help="train and save at this square input size (default: the model's)")
    f.add_argument("--device", choices=DEVICES, default="auto")
    f.add_argument("--workers", type=int, default=0, help="image decoding processes in deep mode (default 0)")
    f.add_argument("--seed", type=int, default=0, help="seed of the split, shuffling and augmentation (default 0)")
    f.add_argument("--resume", action="store_true", help="deep mode: continue a cancelled run from its last epoch")
    f.add_argument("--no-cache", action="store_true", help="quick mode: do not read or write the feature cache")
    f.add_argument("--offline", action="store_true", help="never try to download weights")
    f.add_argument("--json", metavar="FILE", help="also write the full report as JSON to FILE")
    f.add_argument("--from-version", type=int, metavar="N",
                   help="start from version N of MODEL_DIR (see `squeezelens versions MODEL_DIR`) instead of --model")
    return f


def run(args: argparse.Namespace) -> int:
    """Run the finetune command; 0 saved, 130 cancelled.

    Raises:
        SqueezeLensError: bad options, an unusable dataset or output folder, a failed run (exit 2).
        OutputError: the ``--json`` report cannot be written.
    """
    from squeezelens.core.finetune import FinetuneCancelled, FinetuneConfig, finetune

    if args.from_version is not None:
        from squeezelens.core.errors import UsageError
        from squeezelens.core.model_versions import read_index, version_dir

        if args.model is not None:
            raise UsageError("give --model or --from-version, not both")
        read_index(args.output).get(args.from_version)  # UsageError for a version that does not exist
        args.model = str(version_dir(args.output, args.from_version))

    config = FinetuneConfig(
        data_dir=args.data_dir, output_dir=args.output, model=args.model, weights=args.weights, mode=args.mode,
        epochs=args.epochs, val_split=args.val_split, batch_size=args.batch_size, lr=args.lr,
        input_size=args.input_size, device=args.device, seed=args.seed, num_workers=args.workers,
        resume=args.resume, allow_download=not args.offline, use_cache=not args.no_cache,
    )
    config.validate(OPTION_NAMES)  # the settings and the output folder, before any minutes of work
    if args.json is not None:
        parent = Path(args.json).resolve().parent
        if not parent.is_dir() or Path(args.json).is_dir():
            raise OutputError(f"--json {args.json}: folder {parent} does not exist, or the name is a folder")
    cancel = threading.Event()
    printer = ProgressPrinter(sys.stderr)
    restore = _install_sigint(cancel, printer)
    try:
        result = finetune(config, on_event=printer, cancel=cancel)
    except FinetuneCancelled as e:
        printer.end_line()
        hint = (f"; resume from epoch {e.epochs_done + 1} with --resume" if e.checkpoint is not None else "")
        print(f"squeezelens: cancelled; {args.output} was not changed{hint}", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        printer.end_line()
        print(f"squeezelens: interrupted; {args.output} was not changed", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        restore()
        printer.end_line()
    sys.stdout.write(format_summary(result))
    sys.stdout.flush()
    if args.json:
        # the same writer as classify --output: whole or not at all, 0644 or the old file's mode
        write_text_atomic(args.json, format_finetune_json(result))
    return EXIT_OK


def _install_sigint(cancel: threading.Event, printer: ProgressPrinter) -> Callable[[], object]:
    """First Ctrl+C sets ``cancel``; a second raises KeyboardInterrupt. Returns the undo function."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        printer.end_line()
        print("squeezelens: cancelling at the next batch (Ctrl+C again to stop now)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, previous)
