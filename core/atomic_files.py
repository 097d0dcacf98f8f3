"""Writing files so that readers never see half of one, and a failure leaves the old file as it was."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import OutputError


def new_file_mode(out: Path) -> int:
    """The old file's permissions, else 0644 (what ``open(path, "w")`` gives under the usual umask).

    (Reading the real umask means setting it, which races with other threads creating files.)
    """
    try:
        return stat.S_IMODE(out.stat().st_mode)
    except OSError:
        return 0o644


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to a temp file beside ``path``, then rename it over ``path``
    (:func:`write_bytes_atomic`).

    The file gets the old file's permissions when it existed, else 0644, whoever writes it (a CSV
    export, ``classify --output``, the ``finetune --json`` report).

    Raises:
        OutputError: the folder is missing or not writable, the disk is full, or ``text`` cannot be
            encoded as UTF-8; the old file is then as it was and no temp file is left.
    """
    try:
        data = text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError as e:  # e.g. a file name with bytes that are not UTF-8
        raise OutputError(f"cannot write: the text cannot be saved as UTF-8 ({e.reason})", str(path)) from e
    write_bytes_atomic(path, data)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``: a reader sees the old
    file or the new one, never half of it. Permissions: the old file's, else 0644.

    Raises:
        OutputError: the folder is missing or not writable, or the disk is full; the old file is
            then as it was and no temp file is left.
    """
    out = Path(path)
    tmp: str | None = None
    try:
        # mkstemp itself fails when the folder is missing or read-only: that is a user-facing error too
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file 0600; an exported file should be as readable as any other file
        os.chmod(tmp, new_file_mode(out))
        os.replace(tmp, out)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write: {e.strerror or e}", str(out)) from e
        raise
