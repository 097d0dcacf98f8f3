"""The ``squeezelens`` command line: classify, models (and the desktop app entry)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from . import catalogue, finetune_cli, self_test
from .atomic_files import write_text_atomic
from .errors import SqueezeLensError
from .options import BACKENDS, DEVICES

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
UNTRAINED_NOTE = "UNTRAINED: no pretrained weights were found, so these predictions come from a random network"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="squeezelens", description="Classify images with timm's SE-ResNeXt models.")
    p.add_argument("--version", action="version", version=f"squeezelens {_version()}")
    p.add_argument("--self-test", action="store_true",
                   help="check this installation (classify the bundled sample, class names, Qt plugins) and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("classify", help="classify images and folders of images")
    c.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (walked recursively)")
    c.add_argument("--model", help=f"variant (arch or arch.tag) or model folder (default {catalogue.DEFAULT_MODEL})")
    c.add_argument("--weights", help="weights file (.safetensors or a torch state_dict) or a saved-model folder")
    c.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    c.add_argument("--format", choices=("table", "csv", "json"), default="table")
    c.add_argument("--output", "-o", help="write the results to this file instead of standard output")
    c.add_argument("--device", choices=DEVICES, default="auto")
    c.add_argument("--backend", choices=BACKENDS, default="auto")
    c.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    c.add_argument("--no-fast-decode", action="store_true",
                   help="decode JPEGs at full size: exactly timm's eval pipeline (slower on large photos)")
    c.add_argument("--offline", action="store_true", help="never try to download weights")

    m = sub.add_parser("models", help="list the SE-ResNeXt variants and whether their weights are cached")
    m.add_argument("--format", choices=("table", "json"), default="table")

    finetune_cli.add_parser(sub)

    g = sub.add_parser("gui", help="open the desktop app")
    g.add_argument("images", nargs="*", metavar="IMAGE")
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("squeezelens")
    except PackageNotFoundError:
        return "unknown"


#: Opens the desktop app with these images and returns the exit code. core never imports the GUI
#: (an import contract), so the entry point in ``squeezelens.__main__`` passes it in.
GuiRunner = Callable[[list[str]], int]
#: The self-test's Qt checks (core/self_test.py), passed in by the entry point for the same reason.
QtChecks = Callable[[], "list[self_test.Check]"]


def main(argv: Sequence[str] | None = None, run_gui: GuiRunner | None = None,
         qt_checks: QtChecks | None = None) -> int:
    """Run the CLI; returns the exit code (0 all classified, 1 some inputs failed, 2 bad usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in ("classify", "models", "finetune", "gui", "-h", "--help", "--version",
                                   "--self-test"):
        argv = ["gui", *argv]  # `squeezelens [IMAGE ...]` opens the app
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed usage
        return EXIT_USAGE if e.code else EXIT_OK
    try:
        if args.self_test:
            return cmd_self_test(qt_checks)
        if args.command == "classify":
            return cmd_classify(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "finetune":
            return finetune_cli.run(args)
        return cmd_gui(args, run_gui)
    except SqueezeLensError as e:
        print(f"squeezelens: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `squeezelens classify ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("squeezelens: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: say so in one line; SQUEEZELENS_DEBUG=1 shows the traceback
        if os.environ.get("SQUEEZELENS_DEBUG"):
            raise
        print(f"squeezelens: internal error: {type(e).__name__}: {e} (set SQUEEZELENS_DEBUG=1 for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


def cmd_gui(args: argparse.Namespace, run_gui: GuiRunner | None) -> int:
    """Open the desktop app (through the runner the entry point gave)."""
    if run_gui is None:
        raise SqueezeLensError("the desktop app is not available from this entry point; run `squeezelens`")
    return run_gui(list(args.images))


def cmd_self_test(qt_checks: QtChecks | None) -> int:
    """``--self-test``: 0 when every check passes, 1 (with a FAIL line each) when some do not."""
    def qt_unavailable() -> str:
        raise self_test.SelfTestFailure("not checked: this entry point gave no Qt checks; run `squeezelens`")

    try:
        extra = qt_checks() if qt_checks is not None else [("Qt", qt_unavailable)]
    except Exception as e:  # PySide6, or a Qt library it links, does not import: a FAIL line, the rest still runs
        def qt_broken(error: Exception = e) -> str:
            raise self_test.SelfTestFailure(f"PySide6 does not import: {type(error).__name__}: {error}")

        extra = [("Qt", qt_broken)]
    return self_test.run(extra)


def _stderr_progress() -> tuple[object, threading.Event]:
    """A download progress printer for a terminal, and the cancel event Ctrl+C sets."""
    cancel = threading.Event()
    state = {"last": -1}

    def progress(done: int, total: int | None) -> None:
        if not sys.stderr.isatty():
            return
        pct = int(done * 100 / total) if total else -1
        if pct != state["last"]:
            state["last"] = pct
            size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            done_line = "\n" if total and done >= total else ""
            text = f"downloading weights: {size} {pct}%" if pct >= 0 else f"downloading weights: {size}"
            print(f"\r{text}{done_line}", end="", file=sys.stderr, flush=True)

    return progress, cancel


def cmd_classify(args: argparse.Namespace) -> int:
    from .engine import Classifier
    from .images import expand_inputs

    if args.top_k < 1:
        raise SqueezeLensError("--top-k must be at least 1")
    if args.batch_size < 1:
        raise SqueezeLensError("--batch-size must be at least 1")
    if args.output is not None:
        _check_output(Path(args.output))  # before minutes of work, not after
    from .console import log_warnings_to_stderr, stderr_counter

    log_warnings_to_stderr()  # e.g. why ONNX Runtime was not used, or a move off a full GPU
    progress, cancel = _stderr_progress()
    try:
        # A first run exports the ONNX graph before classifying (about a second, once per model and
        # weights): a one-shot process would otherwise exit before a background export is cached.
        clf = Classifier.load(
            args.model, args.weights, device=args.device, backend=args.backend,
            fast_decode=not args.no_fast_decode, allow_download=not args.offline,
            progress=progress, cancel=cancel, export="wait",  # type: ignore[arg-type]
        )
    except KeyboardInterrupt:
        cancel.set()
        raise
    if clf.untrained:
        why = f" ({clf.loaded.untrained_reason})" if clf.loaded.untrained_reason else ""
        print(f"squeezelens: warning: {clf.name} has no weights{why}; running untrained", file=sys.stderr)

    inputs = expand_inputs(args.paths)
    results = clf.classify(inputs, top_k=args.top_k, batch_size=args.batch_size,
                           on_result=stderr_counter(len(inputs)))
    text = {"table": format_table, "csv": format_csv, "json": format_json}[args.format](results, clf.untrained)
    _write(text, args.output)
    failed = sum(1 for r in results if not r.ok)
    if failed:
        print(f"squeezelens: {failed} of {len(results)} inputs could not be classified", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _check_output(out: Path) -> None:
    if out.is_dir():
        raise SqueezeLensError(f"--output {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise SqueezeLensError(f"--output {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise SqueezeLensError(f"--output {out}: folder {out.parent} is not writable")


def _write(text: str, output: str | None) -> None:
    if output is None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise SqueezeLensError(f"cannot write the results: {e.strerror or e}") from e
        return
    write_text_atomic(output, text)  # readers never see a half-written file


def format_table(results: list, untrained: bool) -> str:
    """Human-readable blocks, one per input."""
    out = io.StringIO()
    if untrained:
        out.write(f"!! {UNTRAINED_NOTE}\n\n")
    for r in results:
        if not r.ok:
            out.write(f"{r.source}\n  error: {r.error_reason or r.error}\n\n")
            continue
        flag = "  [untrained]" if r.untrained else ""
        out.write(f"{r.source}{flag}  ({r.load_ms + r.infer_ms:.0f} ms)\n")
        width = max(len(t.label) for t in r.top)
        for rank, t in enumerate(r.top, 1):
            out.write(f"  {rank}. {t.label:<{width}}  {t.prob * 100:6.2f}%  (#{t.index})\n")
        out.write("\n")
    return out.getvalue()


def format_csv(results: list, untrained: bool) -> str:
    """One row per (input, rank); a failed input is one row with its error."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["path", "model", "untrained", "rank", "index", "label", "prob", "error"])
    for r in results:
        if not r.ok:
            w.writerow([r.source, r.model, str(r.untrained).lower(), "", "", "", "", r.error])
            continue
        for rank, t in enumerate(r.top, 1):
            w.writerow([r.source, r.model, str(r.untrained).lower(), rank, t.index, t.label, f"{t.prob:.8f}", ""])
    return out.getvalue()


def format_json(results: list, untrained: bool) -> str:
    """A list with one object per input, as DESIGN.md specifies (plus ``untrained`` and timing)."""
    return json.dumps([r.to_dict() for r in results], indent=2) + "\n"


def cmd_models(args: argparse.Namespace) -> int:
    from .weights import cached_weights

    rows = []
    for info in catalogue.list_variants():
        for t in info.tags:
            rows.append({
                "name": t.name, "architecture": info.architecture, "tag": t.tag,
                "default": t is info.default, "default_model": info.architecture == catalogue.DEFAULT_MODEL,
                "input_size": list(t.input_size), "crop_pct": t.crop_pct, "interpolation": t.interpolation,
                "mean": list(t.mean), "std": list(t.std), "num_classes": t.num_classes,
                "license": t.license, "hf_hub_id": t.hf_hub_id, "cached": cached_weights(t.hf_hub_id) is not None,
            })
    if args.format == "json":
        _write(json.dumps(rows, indent=2) + "\n", None)
        return EXIT_OK
    buf = io.StringIO()
    _print_models_table(rows, buf)
    _write(buf.getvalue(), None)
    return EXIT_OK


def _print_models_table(rows: list[dict], out: TextIO) -> None:
    head = ("MODEL", "INPUT", "CROP", "INTERP", "CLASSES", "LICENCE", "WEIGHTS")
    table = [head] + [
        (
            r["name"] + (" *" if r["default"] and r["default_model"] else ""),
            "x".join(str(x) for x in r["input_size"][1:]), f"{r['crop_pct']:.3f}", r["interpolation"],
            str(r["num_classes"]), r["license"] or "?", "cached" if r["cached"] else "needs download",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
    out.write("\n* default. Use the bare architecture name for its first (default) tag.\n")
