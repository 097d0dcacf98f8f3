"""The ``squeezelens`` command line: ``classify``, ``models``, ``finetune``, ``gui`` and ``--self-test``.

One module per command (``add_parser(subparsers)`` and ``run(args)``), :mod:`.progress` for stderr,
:mod:`.output` for stdout and ``--output``; the texts themselves come from
:mod:`squeezelens.core.report`. Every error a user can cause is a
:class:`~squeezelens.core.errors.SqueezeLensError` and ends as one ``squeezelens: error:`` line and
a non-zero exit (:mod:`.exit_codes`); anything else is a bug, one ``internal error`` line
(``SQUEEZELENS_DEBUG=1`` re-raises it for the traceback). Nothing heavy (torch, timm, ONNX Runtime,
Qt) is imported until a command runs, so ``squeezelens --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from squeezelens.core.errors import Cancelled, SqueezeLensError

from . import classify, explain, export, finetune, gui, models, review, versions
from .exit_codes import EXIT_BROKEN_PIPE, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from .gui import GuiRunner, QtChecks

#: The subcommands besides ``gui``: each module's ``run(args)`` returns the exit code.
COMMANDS = {"classify": classify, "models": models, "finetune": finetune, "versions": versions,
            "review": review, "export": export, "explain": explain}

#: What may come first on the command line; anything else means ``gui`` (``squeezelens photo.jpg``).
FIRST_ARGUMENTS = ("classify", "models", "finetune", "gui", "-h", "--help", "--version", "--self-test",
                   "versions", "review", "export", "explain")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (without running anything)."""
    p = argparse.ArgumentParser(prog="squeezelens", description="Classify images with timm's SE-ResNeXt models.")
    p.add_argument("--version", action="version", version=f"squeezelens {_version()}")
    p.add_argument("--self-test", action="store_true",
                   help="check this installation (classify the bundled sample, class names, Qt plugins) and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    classify.add_parser(sub)
    models.add_parser(sub)
    finetune.add_parser(sub)
    gui.add_parser(sub)
    versions.add_parser(sub)
    review.add_parser(sub)
    export.add_parser(sub)
    explain.add_parser(sub)
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("squeezelens")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None, run_gui: GuiRunner | None = None,
         qt_checks: QtChecks | None = None) -> int:
    """Run the CLI and return its exit code (:mod:`.exit_codes`).

    Args:
        argv: the arguments after the program name; None reads ``sys.argv``. With no command (or an
            image path first) it opens the app: ``squeezelens [IMAGE ...]``.
        run_gui: opens the desktop app (:func:`.gui.launch_app`); None makes ``gui`` an error.
        qt_checks: the self-test's Qt checks (:func:`.gui.qt_checks`); None reports them not checked.

    Returns:
        0 done; 1 some inputs could not be classified, or a self-test check failed; 2 bad usage or a
        :class:`~squeezelens.core.errors.SqueezeLensError`; 3 a bug; 130 cancelled (Ctrl+C); 141
        stdout's reader left.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in FIRST_ARGUMENTS:
        argv = ["gui", *argv]  # `squeezelens [IMAGE ...]` opens the app
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed usage (or the help, or the version)
        return EXIT_USAGE if e.code else EXIT_OK
    try:
        if args.self_test:
            return gui.run_self_test(qt_checks)
        command = COMMANDS.get(args.command)
        if command is not None:
            return command.run(args)
        return gui.run(args, run_gui)
    except Cancelled as e:
        print(f"squeezelens: {e}", file=sys.stderr)
        return EXIT_CANCELLED
    except SqueezeLensError as e:
        print(f"squeezelens: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `squeezelens classify ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("squeezelens: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as e:  # a bug: say so in one line; SQUEEZELENS_DEBUG=1 shows the traceback
        if os.environ.get("SQUEEZELENS_DEBUG"):
            raise
        print(f"squeezelens: internal error: {type(e).__name__}: {e} (set SQUEEZELENS_DEBUG=1 for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


__all__ = ["FIRST_ARGUMENTS", "build_parser", "main"]
