"""Streamed results (core/result_stream.py) and shards (core/shards.py), without a model: the streamed
text equals the whole-list formatters', torn files are repaired, shards partition the inputs."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from squeezelens.core.errors import ImageLoadError, OutputError, UsageError
from squeezelens.core.predictions import Prediction, TopClass
from squeezelens.core.report import format_csv, format_json, format_table
from squeezelens.core.result_stream import (
    ByteSink,
    TextWriter,
    input_key,
    open_resumable,
    scan_csv,
)
from squeezelens.core.shards import parse_shard, take_shard


def preds(n: int, start: int = 0) -> list[Prediction]:
    out = []
    for i in range(start, start + n):
        if i % 7 == 3:
            out.append(Prediction(f"/d/img {i}.jpg", "m", error=f"/d/img {i}.jpg: broken", error_reason="broken"))
        else:
            out.append(Prediction(f"/d/img {i}.jpg", "m", top=[TopClass(1, "a,b", 0.75), TopClass(0, 'q"x', 0.25)],
                                  load_ms=1.5, infer_ms=2.25))
    return out


class MemSink:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.name = "mem"

    def write(self, data: bytes) -> None:
        self.buf.write(data)

    def sync(self) -> None:
        pass


@pytest.mark.parametrize("fmt, whole", [("table", format_table), ("csv", format_csv), ("json", format_json)])
@pytest.mark.parametrize("n", [0, 1, 5])
@pytest.mark.parametrize("untrained", [False, True])
def test_streamed_text_equals_whole_list(fmt: str, whole, n: int, untrained: bool) -> None:
    sink = MemSink()
    w = TextWriter(sink, fmt, untrained)  # type: ignore[arg-type]
    for p in preds(n):
        w.write(p)
    w.close()
    assert sink.buf.getvalue().decode() == whole(preds(n), untrained)


def test_jsonl_is_one_json_object_per_line() -> None:
    sink = MemSink()
    w = TextWriter(sink, "jsonl", False)  # type: ignore[arg-type]
    for p in preds(4):
        w.write(p)
    lines = sink.buf.getvalue().decode().splitlines()
    assert [json.loads(line) for line in lines] == json.loads(format_json(preds(4), False))


def test_short_write_is_an_output_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.write taking only part of the bytes, then failing (a full disk): an error, with the count."""
    calls = []

    def fake_write(fd: int, data) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return 3
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", fake_write)
    sink = ByteSink(99, "out.csv")
    with pytest.raises(OutputError, match="No space left on device.*incomplete after 3 bytes"):
        sink.write(b"0123456789")
    assert calls == [10, 7]  # the rest was retried, not dropped


def test_partial_writes_are_completed(monkeypatch: pytest.MonkeyPatch) -> None:
    got = bytearray()

    def fake_write(fd: int, data) -> int:
        got.extend(bytes(data[:2]))
        return min(2, len(data))

    monkeypatch.setattr(os, "write", fake_write)
    sink = ByteSink(99, "x")
    sink.write(b"hello world")
    assert bytes(got) == b"hello world" and sink.written == 11


def write_file(path: Path, fmt: str, items: list[Prediction]) -> None:
    done, w = open_resumable(path)
    for p in items:
        w.write(p)
    w.close()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_resume_repairs_a_torn_tail(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"r{suffix}"
    fmt = suffix[1:]
    write_file(out, fmt, preds(5))
    whole = out.read_bytes()
    for cut in range(len(whole) - 60, len(whole)):  # kills at many points of the last records
        out.write_bytes(whole[:cut])
        done, w = open_resumable(out)
        keys = {input_key(p.source, fmt) for p in preds(5)}
        assert done < keys
        for p in preds(5):  # the run goes on: everything not done, in order
            if input_key(p.source, fmt) not in done:
                w.write(p)
        w.close()
        assert out.read_bytes() == whole, cut


def test_resume_csv_always_redoes_the_last_input(tmp_path: Path) -> None:
    """A CSV input has several rows: only the last input's group can be incomplete, so it is redone."""
    out = tmp_path / "r.csv"
    write_file(out, "csv", preds(3))
    done, w = open_resumable(out)
    w.close()
    assert done == {"/d/img 0.jpg", "/d/img 1.jpg"}
    assert out.read_text() == format_csv(preds(2), False)


def test_resume_drops_cancelled_records(tmp_path: Path) -> None:
    """A whole-run output stopped by Ctrl+C marks the rest cancelled; --resume redoes exactly those."""
    out = tmp_path / "r.jsonl"
    items = preds(3) + [Prediction("/d/x.jpg", "m", error="cancelled"), Prediction("/d/y.jpg", "m", error="cancelled")]
    write_file(out, "jsonl", items)
    done, w = open_resumable(out)
    w.close()
    assert done == {"/d/img 0.jpg", "/d/img 1.jpg", "/d/img 2.jpg"}
    assert len(out.read_text().splitlines()) == 3


def test_resume_refuses_another_csv_layout(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="not a CSV written by this version"):
        scan_csv(out, format_csv([], False))


def test_resume_needs_a_resumable_suffix(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--resume needs --output FILE.csv"):
        open_resumable(tmp_path / "r.json")


def test_input_key_matches_what_is_written(tmp_path: Path) -> None:
    odd = tmp_path / 'a "quoted", odd\nname.jpg'
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"r.{fmt}"
        write_file(out, fmt, [Prediction(str(odd), "m", error="e"), Prediction("/z.jpg", "m", error="e")])
        done, w = open_resumable(out)
        w.close()
        if fmt == "jsonl":
            assert input_key(odd, fmt) in done
        assert input_key(ImageLoadError("no images found in folder", "/d"), fmt) == "/d"


def test_shards_partition_the_sorted_inputs() -> None:
    items = [f"f{i:03d}" for i in range(23)][::-1] + ["f005"]  # unsorted, one duplicate
    pieces = [take_shard(items, i, 4, key=str) for i in range(4)]
    flat = [x for p in pieces for x in p]
    assert sorted(flat) == sorted(set(items))  # every input once: no duplicates, no padding
    assert [len(p) for p in pieces] == [6, 6, 6, 5]
    assert pieces[1][:3] == ["f001", "f005", "f009"]  # round-robin over the sorted list
    assert take_shard(items, 0, 1, key=str) == sorted(set(items))


@pytest.mark.parametrize("text", ["1", "4/4", "-1/4", "a/b", "0/0", "1/"])
def test_bad_shard_is_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)


def test_parquet_resume_keeps_old_rows(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "r.parquet"
    write_file(out, "parquet", preds(3))
    assert not list(tmp_path.glob(".*"))  # the journal is gone once the file is written
    done, w = open_resumable(out)
    assert done == {p.source for p in preds(3)}
    for p in preds(2, start=3):
        w.write(p)
    w.close()
    table = pq.read_table(out)
    assert table.column("path").to_pylist() == [p.source for p in preds(5)]
    rows = table.to_pylist()
    assert rows[3]["error"] == "/d/img 3.jpg: broken" and rows[3]["top"] is None
    assert rows[0]["top"][0] == {"index": 1, "label": "a,b", "prob": 0.75}


def test_parquet_keeps_precision_and_resumes_a_file_from_before_it(tmp_path: Path) -> None:
    """``precision`` (issue 19) is a Parquet column like JSON's field; a file written before the column
    existed (and before ``unknown``) resumes, its old rows null there."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "r.parquet"
    write_file(out, "parquet", preds(2))
    old = pq.read_table(out).drop_columns(["precision", "unknown"])
    pq.write_table(old, out)
    done, w = open_resumable(out)
    assert done == {p.source for p in preds(2)}
    fast = Prediction("/d/fast.jpg", "m", top=[TopClass(1, "a,b", 0.5)], precision="int8")
    w.write(fast)
    w.close()
    table = pq.read_table(out)
    assert table.schema.field("precision").type == pa.string()
    assert table.column("path").to_pylist() == [*(p.source for p in preds(2)), "/d/fast.jpg"]
    assert table.column("precision").to_pylist() == [None, None, "int8"]
    assert table.column("unknown").to_pylist() == [None, None, None]


def test_csv_rows_parse_back(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    write_file(out, "csv", preds(4))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 2 * 3 + 1
