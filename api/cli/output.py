"""Where a command's results go: standard output, or a file written whole (``--output``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from squeezelens.core.atomic_files import write_text_atomic
from squeezelens.core.errors import OutputError, UsageError
from squeezelens.core.report import encode_output


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
