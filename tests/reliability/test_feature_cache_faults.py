"""The feature cache under faults: another process's lock, damaged pages, poisoned vectors, a full disk.

A lock is waited for briefly and then skipped with one warning: the database is never deleted and
the other process's commit still lands; damaged pages are misses; non-finite vectors are never used.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from squeezelens.core import feature_cache
from squeezelens.core.feature_cache import FeatureCache

HOLD_LOCK = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute(sys.argv[2])                      # BEGIN EXCLUSIVE / BEGIN IMMEDIATE
db.execute("INSERT OR REPLACE INTO features VALUES ('theirs|1|1', 2, x'0000803f00000040')")
print("locked", flush=True)
sys.stdin.readline()                         # until the test says so
db.execute("COMMIT")
print("committed", flush=True)
"""


def _vec(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    with FeatureCache("k", tmp_path) as cache:
        cache.put_many({f"f{i}|1|1": _vec(i, i + 1) for i in range(50)})
    return tmp_path / "k.sqlite"


@pytest.mark.parametrize("begin", ["BEGIN EXCLUSIVE", "BEGIN IMMEDIATE"])
def test_a_lock_held_by_another_process_is_skipped_never_deleted(cache_file: Path, monkeypatch, begin: str) -> None:
    monkeypatch.setattr(feature_cache, "BUSY_TIMEOUT_S", 0.3)
    other = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(cache_file), begin], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() == "locked"
        warnings: list[str] = []
        t0 = time.monotonic()
        cache = FeatureCache.open_or_none("k", cache_file.parent, warnings.append)
        if cache is not None:  # a reserved lock lets it open and read; its writes are what wait
            assert cache.get_many(["f1|1|1"])["f1|1|1"].tolist() == [1.0, 2.0]
            cache.put_many({"mine|1|1": _vec(5, 6)})
            cache.put_many({"mine2|1|1": _vec(5, 6)})  # no second wait, no second warning
            cache.close()
        assert time.monotonic() - t0 < 10
        assert len(warnings) == 1 and "lock" in warnings[0] and "database is locked" not in warnings[0]
        assert cache_file.exists()
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "committed"  # their commit still lands
    finally:
        other.kill()
        other.wait()
    with FeatureCache("k", cache_file.parent) as cache:
        found = cache.get_many(["theirs|1|1", "f7|1|1"])
    assert found["theirs|1|1"].tolist() == [1.0, 2.0] and found["f7|1|1"].tolist() == [7.0, 8.0]


def test_damaged_pages_are_misses_and_the_cache_starts_again(cache_file: Path) -> None:
    data = bytearray(cache_file.read_bytes())
    page = 4096
    assert len(data) > 2 * page
    data[page:] = b"\xa5" * (len(data) - page)  # every page after the schema's
    cache_file.write_bytes(bytes(data))
    warnings: list[str] = []
    cache = FeatureCache.open_or_none("k", cache_file.parent, warnings.append)
    assert cache is not None
    assert cache.get_many([f"f{i}|1|1" for i in range(50)]) == {}  # a miss, not an error
    cache.put_many({"new|1|1": _vec(1, 2)})
    assert cache.get_many(["new|1|1"])["new|1|1"].tolist() == [1.0, 2.0]
    cache.close()
    assert len(warnings) <= 1


def test_poisoned_vectors_are_never_used(cache_file: Path) -> None:
    db = sqlite3.connect(cache_file)
    db.execute("UPDATE features SET data = ? WHERE file = 'f3|1|1'", (_vec(np.nan, 1).tobytes(),))
    db.execute("UPDATE features SET data = ? WHERE file = 'f4|1|1'", (_vec(np.inf, 1).tobytes(),))
    db.execute("UPDATE features SET data = x'00' WHERE file = 'f5|1|1'")
    db.commit()
    db.close()
    with FeatureCache("k", cache_file.parent) as cache:
        found = cache.get_many(["f2|1|1", "f3|1|1", "f4|1|1", "f5|1|1"])
        assert sorted(found) == ["f2|1|1"]
        cache.put_many({"nan|1|1": _vec(np.nan, 0)})
        assert cache.get_many(["nan|1|1"]) == {}


def test_a_folder_where_the_cache_should_be_means_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "features"
    blocker.write_text("a file")
    warnings: list[str] = []
    assert FeatureCache.open_or_none("k", blocker, warnings.append) is None
    assert len(warnings) == 1 and blocker.read_text() == "a file"
    (tmp_path / "k2.sqlite").mkdir()  # a folder where the database file should be
    assert FeatureCache.open_or_none("k2", tmp_path, warnings.append) is None
    assert (tmp_path / "k2.sqlite").is_dir() and len(warnings) == 2
