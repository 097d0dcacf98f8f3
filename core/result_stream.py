"""``classify``'s results written one by one as they are made: complete, or an error that says so.

Every format reuses :mod:`.report`'s own formatter on one prediction at a time, so a streamed table,
CSV or JSON list is byte for byte what the whole-list formatter gives (and a field another part
adds to a prediction, like ``unknown``, appears here with no change). Memory stays flat whatever the
number of inputs: nothing keeps the results.

Bytes go out through :class:`ByteSink`, which loops on ``os.write`` and counts: a short write (a full
disk, ``ulimit -f``) ends as an :class:`~.errors.OutputError`, never as a file silently cut short,
and a regular file is fsynced before it counts as written. A reader that left (``| head -1``) is a
``BrokenPipeError`` for the caller to turn into exit 141.

Resuming (:func:`open_resumable`): ``.csv`` and ``.jsonl`` files are appended to in place; the file's
complete records name the inputs already done, and a torn tail (a kill in the middle of a write) is
cut off first. A ``.parquet`` file cannot be appended to, so its results go to a JSONL journal
beside it (``.NAME.journal.jsonl``) that becomes the Parquet file (old rows + new) when the run ends.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .atomic_files import new_file_mode
from .errors import ImageLoadError, OutputError, UsageError
from .predictions import Prediction
from .report import UNTRAINED_NOTE, encode_output, format_csv, format_json, format_table

if TYPE_CHECKING:
    from PIL import Image

#: The error of an input a cancelled run did not get to (the engine's ``CANCELLED``).
CANCELLED = "cancelled"
#: ``--format`` values that stream; the last two only to a file.
STREAM_FORMATS = ("table", "csv", "json", "jsonl", "parquet")
#: Formats ``--resume`` can append to, by file suffix.
RESUMABLE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
#: Rows per Parquet row group when the journal is converted.
PARQUET_ROWS_PER_GROUP = 10_000


class ByteSink:
    """Writes bytes to a file descriptor completely, counting them, or raises.

    Args:
        fd: an open descriptor (1 for stdout, or a file opened for writing/appending).
        name: what error messages call it (the file, or ``"standard output"``).
    """

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.written = 0  # bytes the kernel accepted

    def write(self, data: bytes) -> None:
        """Write all of ``data``; a partial ``os.write`` is continued until done or an error.

        Raises:
            BrokenPipeError: the reader of a pipe left.
            OutputError: the disk is full, the file-size limit was reached, or any other write error.
        """
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BrokenPipeError:
                raise
            except OSError as e:
                raise OutputError(f"cannot write the results ({e.strerror or e}); the output is incomplete "
                                  f"after {self.written} bytes", self.name) from e
            if n <= 0:
                raise OutputError(f"cannot write the results (nothing written); the output is incomplete "
                                  f"after {self.written} bytes", self.name)
            self.written += n
            view = view[n:]

    def isatty(self) -> bool:
        """Whether the descriptor is a terminal (file names are then shown escaped)."""
        try:
            return os.isatty(self.fd)
        except OSError:
            return False

    def sync(self) -> None:
        """fsync a regular file (a full disk can surface only here); pipes and terminals are left alone.

        Raises:
            OutputError: the data could not be made durable.
        """
        try:
            if not stat.S_ISREG(os.fstat(self.fd).st_mode):
                return
            os.fsync(self.fd)
        except OSError as e:
            raise OutputError(f"cannot write the results ({e.strerror or e}); the output may be incomplete",
                              self.name) from e


class ResultWriter(Protocol):
    """Where streamed predictions go; ``close`` finishes the output (or raises: it is then incomplete)."""

    @property
    def count(self) -> int: ...

    def write(self, pred: Prediction) -> None: ...

    def close(self) -> None: ...


def source_text(src: str | os.PathLike[str] | Image.Image | ImageLoadError) -> str:
    """An input's path text, as the engine gives it to its :class:`Prediction` (``source``)."""
    if isinstance(src, ImageLoadError):
        return src.path or ""
    if isinstance(src, (str, os.PathLike)):
        return str(Path(src))
    return getattr(src, "filename", "") or f"<image {src.width}x{src.height}>"


# -- one record of each format -----------------------------------------------------------------------


def csv_header(with_unknown: bool = False) -> str:
    """The CSV header line; ``with_unknown`` adds the ``unknown`` column (a threshold is in force)."""
    return format_csv([], False, with_unknown=with_unknown)


def csv_record(pred: Prediction, with_unknown: bool = False) -> str:
    """The CSV rows of one prediction (no header), exactly as :func:`.report.format_csv` writes them."""
    return format_csv([pred], False, with_unknown=with_unknown)[len(csv_header(with_unknown)):]


def json_element(pred: Prediction) -> str:
    """One prediction as an element of :func:`.report.format_json`'s list (indented, no comma)."""
    text = format_json([pred], False)
    return text[len("[\n"):-len("\n]\n")]


def jsonl_record(pred: Prediction) -> str:
    """One prediction as one JSON line (the object :func:`.report.format_json` lists)."""
    return json.dumps(json.loads(json_element(pred))) + "\n"


class TextWriter:
    """table / csv / json / jsonl, one record per prediction, to a :class:`ByteSink`.

    Args:
        sink: where the bytes go.
        fmt: one of ``table``, ``csv``, ``json``, ``jsonl``.
        untrained: the model has no weights (the table's banner).
        appending: the sink already holds this format's header (a resumed CSV).
    """

    def __init__(self, sink: ByteSink, fmt: str, untrained: bool, appending: bool = False,
                 with_unknown: bool = False) -> None:
        self.sink, self.fmt, self.count = sink, fmt, 0
        self.with_unknown = with_unknown
        isatty = getattr(sink, "isatty", None)
        self.terminal = bool(isatty()) if isatty is not None else False
        head = ""
        if fmt == "table" and untrained:
            head = f"!! {UNTRAINED_NOTE}\n\n"
        elif fmt == "csv" and not appending:
            head = csv_header(with_unknown)
        if head:
            self._put(head)

    def _put(self, text: str) -> None:
        # file names with bytes that are not UTF-8 (os.fsdecode's surrogates): their own bytes into a
        # file or a pipe, an escaped form on a terminal (issue 13)
        self.sink.write(encode_output(text, "utf-8", self.terminal))

    def write(self, pred: Prediction) -> None:
        if self.fmt == "table":
            text = format_table([pred], False)
        elif self.fmt == "csv":
            text = csv_record(pred, self.with_unknown)
        elif self.fmt == "json":
            text = ("[\n" if self.count == 0 else ",\n") + json_element(pred)
        else:
            text = jsonl_record(pred)
        self._put(text)
        self.count += 1

    def note(self, text: str) -> None:
        """A line after the results in the table format (e.g. that timings are in reduced precision);
        machine-readable formats get nothing."""
        if self.fmt == "table":
            self._put(text)

    def close(self) -> None:
        if self.fmt == "json":
            self._put("[]\n" if self.count == 0 else "\n]\n")
        self.sink.sync()


# -- files --------------------------------------------------------------------------------------------


class _OnInner:
    """A writer that hands each prediction to ``inner`` (a :class:`TextWriter`) and adds its own ``close``."""

    inner: ResultWriter

    @property
    def count(self) -> int:
        return self.inner.count

    def write(self, pred: Prediction) -> None:
        self.inner.write(pred)


class AtomicFileWriter(_OnInner):
    """A whole-run output file (no ``--resume``): streamed into a temp file beside it, renamed over it
    by :meth:`close`, so readers never see half of one (as before streaming) and memory stays flat.

    :meth:`abort` removes the temp file (the old output, if any, is left as it was).
    """

    def __init__(self, out: Path, fmt: str, untrained: bool, with_unknown: bool = False) -> None:
        self.out = out
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        except OSError as e:
            raise OutputError(f"cannot write: {e.strerror or e}", str(out)) from e
        self.tmp = Path(tmp)
        self.fd = fd
        self.inner: TextWriter | ParquetJournal
        if fmt == "parquet":
            os.close(fd)
            self.fd = -1
            self.inner = ParquetJournal(out, journal=self.tmp, fresh=True)
        else:
            self.inner = TextWriter(ByteSink(fd, str(out)), fmt, untrained, with_unknown=with_unknown)

    def note(self, text: str) -> None:
        if isinstance(self.inner, TextWriter):
            self.inner.note(text)

    def close(self) -> None:
        try:
            if isinstance(self.inner, ParquetJournal):
                self.inner.close()  # writes self.out itself (atomically) and removes the journal
                return
            self.inner.close()
            os.close(self.fd)
            self.fd = -1
            os.chmod(self.tmp, new_file_mode(self.out))
            os.replace(self.tmp, self.out)
        except OSError as e:
            self.abort()
            raise OutputError(f"cannot write: {e.strerror or e}", str(self.out)) from e
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.tmp.unlink(missing_ok=True)


class ParquetJournal(_OnInner):
    """Parquet output: results appended to a JSONL journal, converted to ``out`` by :meth:`close`.

    Args:
        out: the ``.parquet`` file.
        journal: the journal file (appended to).
        fresh: True for a whole-run output (``out``'s old rows are not kept); False when resuming
            (``out``'s rows, if it exists, come first in the new file).
    """

    def __init__(self, out: Path, journal: Path, fresh: bool) -> None:
        require_pyarrow()
        self.out, self.journal, self.fresh = out, journal, fresh
        try:
            fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise OutputError(f"cannot write: {e.strerror or e}", str(journal)) from e
        self.fd = fd
        self.inner = TextWriter(ByteSink(fd, str(journal)), "jsonl", untrained=False)

    def close(self) -> None:
        """Write ``out`` (temp + rename) from the old rows and the journal; remove the journal.

        Raises:
            OutputError: the Parquet file could not be written (the journal is kept: ``--resume`` again).
        """
        self.inner.close()
        os.close(self.fd)
        self.fd = -1
        try:
            write_parquet(self.out, self.journal, keep_old=not self.fresh)
        except OSError as e:
            raise OutputError(f"cannot write: {e.strerror or e}", str(self.out)) from e
        self.journal.unlink(missing_ok=True)


def require_pyarrow() -> None:
    """Raises: UsageError: pyarrow (for Parquet) is not installed."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as e:
        raise UsageError("Parquet output needs pyarrow: pip install pyarrow (or pip install "
                         "'squeezelens[cluster]'), or write .csv / .jsonl") from e


def parquet_schema() -> Any:
    """The Parquet columns: the JSON object's fields (``time_ms`` as a struct; ``unknown`` null until a
    model with a calibrated threshold fills it, ``precision`` null for fp32 batches)."""
    import pyarrow as pa

    top = pa.list_(pa.struct([("index", pa.int64()), ("label", pa.string()), ("prob", pa.float64())]))
    return pa.schema([
        ("path", pa.string()), ("model", pa.string()), ("untrained", pa.bool_()), ("top", top),
        ("time_ms", pa.struct([("load", pa.float64()), ("inference", pa.float64())])),
        ("error", pa.string()), ("unknown", pa.bool_()), ("precision", pa.string()),
    ])


def _conform(table: Any, schema: Any) -> Any:
    """``table`` with ``schema``'s columns in its order: a column an older file lacks (``unknown``,
    ``precision``) is added as nulls, so resuming a file written before it was added works."""
    import pyarrow as pa

    columns = [table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(columns, schema)], schema=schema)


def write_parquet(out: Path, journal: Path, keep_old: bool) -> None:
    """``out`` = (its old rows when ``keep_old`` and it exists) + the journal's rows, written to a temp
    file beside it in row groups of :data:`PARQUET_ROWS_PER_GROUP` (flat memory), then renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with pq.ParquetWriter(tmp, schema) as w:
            if keep_old and out.exists():
                for batch in pq.ParquetFile(out).iter_batches(PARQUET_ROWS_PER_GROUP):
                    w.write_table(_conform(pa.Table.from_batches([batch]), schema))
            rows: list[dict[str, Any]] = []
            for _start, _end, obj in _jsonl_records(journal):
                if obj is not None:
                    rows.append(obj)
                if len(rows) >= PARQUET_ROWS_PER_GROUP:
                    w.write_table(pa.Table.from_pylist(rows, schema=schema))
                    rows = []
            if rows:
                w.write_table(pa.Table.from_pylist(rows, schema=schema))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode(out))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- resuming -----------------------------------------------------------------------------------------


def resume_format(out: Path) -> str:
    """The resumable format of ``out`` by its suffix.

    Raises:
        UsageError: not ``.csv``, ``.jsonl`` or ``.parquet``.
    """
    fmt = RESUMABLE_SUFFIXES.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"--resume needs --output FILE.csv, FILE.jsonl or FILE.parquet (not {out.name})")
    if fmt == "parquet":
        require_pyarrow()
    return fmt


def journal_path(out: Path) -> Path:
    """The JSONL journal a resumable ``.parquet`` output collects its results in."""
    return out.with_name(f".{out.name}.journal.jsonl")


def _jsonl_records(path: Path) -> Iterator[tuple[int, int, dict[str, Any] | None]]:
    """(start, end, object) of each line of a JSONL file; ``None`` for a torn or unreadable line."""
    with open(path, "rb") as f:
        pos = 0
        for line in f:
            start, pos = pos, pos + len(line)
            obj = None
            if line.endswith(b"\n"):
                try:
                    value = json.loads(line.decode("utf-8", "surrogateescape"))  # non-UTF-8 names
                    obj = value if isinstance(value, dict) and isinstance(value.get("path"), str) else None
                except ValueError:
                    obj = None
            yield start, pos, obj


def _csv_records(path: Path) -> Iterator[tuple[int, int, list[str] | None]]:
    """(start, end, row) of each CSV record; ``None`` for a torn last record. A quoted field may span
    lines (a file name with a newline): a record ends at a newline with an even number of quotes."""
    with open(path, "rb") as f:
        pos = 0
        start = 0
        pending = b""
        for line in f:
            if not pending:
                start = pos
            pos += len(line)
            pending += line
            if not pending.endswith(b"\n") or pending.count(b'"') % 2:
                continue
            try:
                rows = list(csv.reader(io.StringIO(pending.decode("utf-8", "surrogateescape"), newline="")))
            except (UnicodeDecodeError, csv.Error):
                rows = []
            yield start, pos, rows[0] if len(rows) == 1 else None
            pending = b""
        if pending:
            yield start, pos, None


class ResumeScan:
    """What a resumable output already holds: the path texts done, and where the good part ends."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.keep_bytes = 0  # the file is cut here (a torn tail, or the last CSV input's rows)
        self.cancelled = 0  # records of inputs a non-resumable run marked "cancelled" (redone)
        self.spans: list[tuple[int, int]] = []  # byte spans to keep when records must be dropped


def scan_jsonl(path: Path) -> ResumeScan:
    """Done inputs of a JSONL output (one object per line). A torn or unreadable line ends the good part."""
    scan = ResumeScan()
    for start, end, obj in _jsonl_records(path):
        if obj is None:
            break
        if obj.get("error") == CANCELLED:
            scan.cancelled += 1
        else:
            scan.done.add(obj["path"])
            scan.spans.append((start, end))
        scan.keep_bytes = end
    return scan


def scan_csv(path: Path, header: str) -> ResumeScan:
    """Done inputs of a CSV output (one or more rows per input, consecutive). Only the last input's rows
    may be incomplete after a kill, so they are always dropped and that input is classified again.

    Raises:
        UsageError: the file's header is not the one this version writes.
    """
    scan = ResumeScan()
    groups: list[tuple[str, int, int, bool]] = []  # the last two groups: (path, start, end, cancelled)
    columns = next(csv.reader(io.StringIO(header)))
    err_col = columns.index("error") if "error" in columns else len(columns) - 1
    first = True
    for start, end, row in _csv_records(path):
        if first:
            first = False
            got = "" if row is None else ",".join(row) + "\n"
            if got != header:
                raise UsageError(f"--resume: {path} is not a CSV written by this version of classify "
                                 f"(its header is {got.strip()!r})")
            scan.keep_bytes = end
            continue
        if row is None or not row:
            break
        cancelled = len(row) > err_col and row[err_col] == CANCELLED
        if groups and groups[-1][0] == row[0]:
            key, s, _, c = groups[-1]
            groups[-1] = (key, s, end, c or cancelled)
            continue
        if groups:
            _take_group(scan, groups[-1])
        groups = [(row[0], start, end, cancelled)]
    # the last group (possibly cut short) is dropped: keep_bytes stays at its start
    if groups:
        scan.keep_bytes = groups[-1][1]
    return scan


def _take_group(scan: ResumeScan, group: tuple[str, int, int, bool]) -> None:
    key, start, end, cancelled = group
    if cancelled:
        scan.cancelled += 1
    else:
        scan.done.add(key)
        scan.spans.append((start, end))
    scan.keep_bytes = end


def _repair(path: Path, scan: ResumeScan, head: int = 0) -> None:
    """Cut ``path`` to its good part; when records marked cancelled must go, rewrite it (temp + rename)
    with the header's first ``head`` bytes and the kept spans only."""
    size = path.stat().st_size
    if not scan.cancelled:
        if size != scan.keep_bytes:
            with open(path, "rb+") as f:
                f.truncate(scan.keep_bytes)
                f.flush()
                os.fsync(f.fileno())
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            src.seek(0)
            dst.write(src.read(head))
            for start, end in scan.spans:
                src.seek(start)
                dst.write(src.read(end - start))
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def done_inputs_parquet(out: Path) -> set[str]:
    """The paths of a finished ``.parquet`` output (none when it does not exist)."""
    if not out.exists():
        return set()
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(out, columns=["path", "error"])
    except Exception as e:  # pyarrow raises its own kinds for a damaged file
        raise UsageError(f"--resume: {out} cannot be read as Parquet ({type(e).__name__}); move it away") from e
    return {p for p, err in zip(table.column("path").to_pylist(), table.column("error").to_pylist())
            if err != CANCELLED}


def open_resumable(out: Path, with_unknown: bool = False) -> tuple[set[str], ResultWriter]:
    """Open ``out`` to resume: the path texts already in it, and a writer that appends the rest.

    A torn tail is cut off first; records of a non-resumable run that were marked ``cancelled`` are
    dropped (those inputs are done again), so the finished file holds every input once.

    Raises:
        UsageError: the suffix is not resumable, Parquet without pyarrow, or a CSV of another layout.
        OutputError: the file cannot be read or written.
    """
    fmt = resume_format(out)
    try:
        if fmt == "parquet":
            journal = journal_path(out)
            done = done_inputs_parquet(out)
            if journal.exists():
                scan = scan_jsonl(journal)
                _repair(journal, scan)
                done |= scan.done
            return done, ParquetJournal(out, journal, fresh=False)
        if out.exists() and out.stat().st_size:
            header = csv_header(with_unknown)
            scan = scan_csv(out, header) if fmt == "csv" else scan_jsonl(out)
            _repair(out, scan, head=len(header.encode()) if fmt == "csv" else 0)
            done = scan.done
        else:
            done = set()
        appending = fmt == "csv" and out.exists() and out.stat().st_size > 0
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        raise OutputError(f"cannot resume: {e.strerror or e}", str(out)) from e
    return done, _AppendWriter(fd, TextWriter(ByteSink(fd, str(out)), fmt, untrained=False, appending=appending,
                                                  with_unknown=with_unknown))


class _AppendWriter(_OnInner):
    """A :class:`TextWriter` on a file opened for appending; ``close`` syncs and closes it."""

    def __init__(self, fd: int, inner: TextWriter) -> None:
        self.fd, self.inner = fd, inner

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            os.close(self.fd)


def input_key(src: str | os.PathLike[str] | Image.Image | ImageLoadError, fmt: str) -> str:
    """The path text a resumable output records for ``src`` (read back from a record of it, so it
    matches whatever escaping the formatter applies to odd file names)."""
    probe = Prediction(source_text(src), "", error="x")
    if fmt == "csv":
        return next(csv.reader(io.StringIO(csv_record(probe), newline="")))[0]
    return str(json.loads(jsonl_record(probe))["path"])


__all__ = [
    "CANCELLED", "RESUMABLE_SUFFIXES", "STREAM_FORMATS", "AtomicFileWriter", "ByteSink", "ParquetJournal",
    "ResultWriter", "TextWriter", "csv_record", "input_key", "json_element", "jsonl_record", "open_resumable",
    "require_pyarrow", "resume_format", "scan_csv", "scan_jsonl", "source_text", "write_parquet",
]
