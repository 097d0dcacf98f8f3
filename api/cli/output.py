"""Where a command's results go: standard output, or a file written whole (``--output``); ``classify``
streams its results (:func:`open_results`, :mod:`squeezelens.core.result_stream`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from squeezelens.core.atomic_files import write_text_atomic
from squeezelens.core.errors import OutputError, UsageError
from squeezelens.core.report import encode_output
from squeezelens.core.result_stream import AtomicFileWriter, ByteSink, ResultWriter, TextWriter, open_resumable


def check_output_file(out: Path, option: str = "--output") -> None:
    """Refuse an output file that cannot be written, before minutes of work rather than after.

    Raises:
        UsageError: ``out`` is a folder.
        OutputError: its folder does not exist or is not writable.
    """
    if out.is_dir():
        raise UsageError(f"{option} {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise OutputError(f"{option} {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise OutputError(f"{option} {out}: folder {out.parent} is not writable")


def write_output(text: str, output: str | None) -> None:
    """Write ``text`` to stdout, or atomically to the file ``output`` (readers never see half of it).

    Raises:
        BrokenPipeError: stdout's reader left (the caller exits quietly).
        OutputError: stdout or the file cannot be written.
    """
    if output is not None:
        write_text_atomic(output, text)
        return
    try:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:  # file names with non-UTF-8 bytes (issue 13): escaped on a terminal, kept in a pipe
            sys.stdout.flush()
            sys.stdout.buffer.write(encode_output(text, sys.stdout.encoding, sys.stdout.isatty()))
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write the results: {e.strerror or e}") from e


class _TextStreamSink:
    """A :class:`~squeezelens.core.result_stream.ByteSink` stand-in for a ``sys.stdout`` with no file
    descriptor (a test's capture): the same complete-or-raise contract through its ``write``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.name, self.written = stream, "standard output", 0

    def write(self, data: bytes) -> None:
        try:
            self.stream.write(data.decode("utf-8"))
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(f"cannot write the results: {e.strerror or e}") from e
        self.written += len(data)

    def sync(self) -> None:
        pass


def stdout_sink() -> ByteSink | _TextStreamSink:
    """Standard output as a sink that writes every byte or raises (``os.write`` on fd 1, counted)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return _TextStreamSink(sys.stdout)
    try:
        sys.stdout.flush()  # anything printed before comes first
    except OSError:
        pass
    return ByteSink(fd, "standard output")


def open_results(fmt: str, output: str | None, untrained: bool, resume: bool,
                 with_unknown: bool = False) -> tuple[set[str], ResultWriter]:
    """The writer ``classify`` streams its predictions to, and the inputs an output to resume already has.

    Args:
        fmt: ``table``, ``csv``, ``json``, ``jsonl`` or ``parquet`` (the last only with ``output``).
        output: the ``--output`` file, or None for standard output.
        untrained: the model has no weights (the table's banner).
        with_unknown: a CSV gets the ``unknown`` column (an unknown threshold is in force).
        resume: append to ``output`` and report what it holds (:func:`~squeezelens.core.result_stream.open_resumable`).

    Raises:
        UsageError: parquet to standard output, or a file that cannot be resumed.
        OutputError: the file cannot be written.
    """
    if resume:
        assert output is not None
        return open_resumable(Path(output), with_unknown)
    if output is None:
        if fmt == "parquet":
            raise UsageError("--format parquet needs --output FILE.parquet")
        return set(), TextWriter(stdout_sink(), fmt, untrained, with_unknown=with_unknown)  # type: ignore[arg-type]
    return set(), AtomicFileWriter(Path(output), fmt, untrained, with_unknown)
