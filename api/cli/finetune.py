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
import subprocess
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
    f.add_argument("--nproc", type=int, metavar="N",
                   help="deep mode: train in N processes per machine with DistributedDataParallel (restarts itself "
                        "through torchrun); --batch-size is per process, an update uses batch size x processes")
    f.add_argument("--nnodes", type=int, metavar="M",
                   help="with --nproc: machines in the job (start the same command on each)")
    f.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="with --nnodes: where the machines meet (one of their hosts and a free port)")
    global _PARSER
    _PARSER = f
    return f


#: The finetune parser (:func:`add_parser`), to rebuild a command line for torchrun from parsed options.
_PARSER: argparse.ArgumentParser | None = None
#: Options of the launching command only; torchrun's processes run without them.
LAUNCH_OPTIONS = ("nproc", "nnodes", "rdzv_endpoint")


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
    from squeezelens.core.finetune.distributed import detect

    dist_env = detect()
    if getattr(args, "nproc", None) is not None or getattr(args, "nnodes", None) is not None:
        return _launch_torchrun(args, under_torchrun=dist_env is not None)
    if dist_env is not None and args.mode == "deep":  # one of torchrun's processes
        if not dist_env.is_main:  # rank 0 reports and writes; Ctrl+C (torchrun forwards it) stops at once
            finetune(config)
            return EXIT_OK
        printer = ProgressPrinter(sys.stderr)
        try:
            result = finetune(config, on_event=printer)
        except KeyboardInterrupt:
            printer.end_line()
            print(f"squeezelens: interrupted; {args.output} was not changed", file=sys.stderr)
            return EXIT_CANCELLED
        finally:
            printer.end_line()
        return _report(result, args)
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
    return _report(result, args)


def _report(result: Any, args: argparse.Namespace) -> int:
    """The summary on stdout and, with ``--json``, the report file; the exit code of a finished run."""
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


def torchrun_command(args: argparse.Namespace) -> list[str]:
    """``python -m torch.distributed.run ... -m squeezelens finetune ...`` for ``args`` (without the launch options).

    One machine (no ``--nnodes`` or 1, no endpoint): ``--standalone`` (torchrun picks a free local
    port). Several: ``--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT``, the same command on
    every machine (torchrun's c10d rendezvous numbers them).

    Raises:
        UsageError: ``--nproc`` below 1 or missing, quick mode, or ``--nnodes`` above 1 without ``--rdzv-endpoint``.
    """
    from squeezelens.core.errors import UsageError

    if args.nproc is None or args.nproc < 1:
        raise UsageError("--nproc must be at least 1")
    if args.mode != "deep":
        raise UsageError("--nproc trains in several processes in deep mode only; add --mode deep")
    nnodes = args.nnodes or 1
    if nnodes < 1:
        raise UsageError("--nnodes must be at least 1")
    if nnodes > 1 and not args.rdzv_endpoint:
        raise UsageError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT (one of the machines and a free port)")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.nproc)]
    if args.rdzv_endpoint:
        cmd += ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", args.rdzv_endpoint]
    else:
        cmd += ["--standalone"]
    return [*cmd, "-m", "squeezelens", "finetune", *_finetune_argv(args)]


def _finetune_argv(args: argparse.Namespace) -> list[str]:
    """The finetune options in ``args`` as command-line words (launch options and --from-version left out:
    ``args.model`` already names that version's folder), the data folder last after ``--``."""
    assert _PARSER is not None, "add_parser() registers the parser first"
    words: list[str] = []
    positional: list[str] = []
    for action in _PARSER._actions:
        if action.dest in ("help", "from_version", *LAUNCH_OPTIONS):
            continue
        value = getattr(args, action.dest, None)
        if not action.option_strings:
            positional.append(str(value))
        elif action.nargs == 0:  # a switch (store_true)
            if value:
                words.append(action.option_strings[0])
        elif value is not None and value != action.default:
            words += [action.option_strings[0], str(value)]
    return [*words, "--", *positional]


def _launch_torchrun(args: argparse.Namespace, under_torchrun: bool) -> int:
    """Run this finetune again in torchrun's processes; its exit status (130 after Ctrl+C)."""
    from squeezelens.core.errors import UsageError

    if under_torchrun:
        raise UsageError("--nproc/--nnodes start torchrun; under torchrun leave them out")
    cmd = torchrun_command(args)
    child = subprocess.Popen(cmd)
    try:
        return child.wait()
    except KeyboardInterrupt:  # the terminal sent Ctrl+C to torchrun too; it stops its processes
        try:
            child.wait(timeout=60)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            child.kill()
        print(f"squeezelens: interrupted; {args.output} was not changed", file=sys.stderr)
        return EXIT_CANCELLED
