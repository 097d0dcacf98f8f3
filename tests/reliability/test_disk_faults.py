"""Full and read-only disks, and a damaged deep-mode checkpoint: a correct result or a clear error.

A full disk is a small tmpfs filled to the last byte (mounting needs root; without it those tests
skip, and the save is still tried against ``RLIMIT_FSIZE``, which needs nothing).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from squeezelens.core.engine import Classifier
from squeezelens.core.errors import OutputError
from squeezelens.core.finetune import FinetuneConfig, finetune
from squeezelens.core.finetune.last_stage import checkpoint_path
from squeezelens.core.saved_model import save_model

resource = pytest.importorskip("resource", reason="RLIMIT_FSIZE and tmpfs are POSIX")


def _mount(folder: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return proc.returncode == 0


def _fill(folder: Path) -> None:
    """Write to ``folder`` until the disk is full."""
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    with contextlib.suppress(OSError), open(folder / "filler2", "wb") as f:
        while True:
            f.write(b"\0" * 512)
            f.flush()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs; the test fills it (:func:`_fill`) when it has put what it needs there."""
    folder = tmp_path / "small"
    folder.mkdir()
    if not _mount(folder, "size=4m"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def read_only_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    if not _mount(folder, "size=1m,ro"):
        pytest.skip("mounting a tmpfs needs root")
    monkeypatch.setenv("SQUEEZELENS_CACHE_DIR", str(folder))
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(scope="module")
def dataset(shapes_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes_module.make_dataset(tmp_path_factory.mktemp("shapes") / "data", per_class=8, size=48, seed=2)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, tiny_net, labels) -> Path:
    return save_model(tiny_net(1), tmp_path_factory.mktemp("base") / "tiny", labels)


def _finetune(base: Path, data: Path, out: Path, **kw) -> object:
    cfg = FinetuneConfig(data, out, model=str(base), input_size=48, device="cpu", allow_download=False,
                         epochs=kw.pop("epochs", 2), batch_size=8, **kw)
    return finetune(cfg)


def test_a_save_onto_a_full_disk_is_a_clear_error_and_keeps_the_old_model(full_disk: Path, tiny_net, labels,
                                                                         snapshot) -> None:
    out = save_model(tiny_net(1), full_disk / "m", labels)
    before = snapshot(out)
    _fill(full_disk)
    with pytest.raises(OutputError) as info:
        save_model(tiny_net(2), out, labels)
    assert "the disk is full" in info.value.reason and "Safetensor" not in str(info.value)
    assert snapshot(out) == before
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "filler2", "m"]


def test_a_save_past_the_file_size_limit_is_a_clear_error(tmp_path: Path, tiny_net, labels, snapshot) -> None:
    """``ulimit -f``: the same path without root (the write fails with EFBIG instead of ENOSPC)."""
    out = save_model(tiny_net(1), tmp_path / "m", labels)
    before = snapshot(out)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises(OutputError) as info:
            save_model(tiny_net(2), out, labels)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert "Safetensor" not in str(info.value) and "the folder was not changed" in info.value.reason
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_classify_with_a_full_cache_disk_answers_correctly(full_disk: Path, base: Path, photo_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    photos = [photo_dir / "chelsea.jpg", photo_dir / "rocket.png"]
    ref = [p.top[0].index for p in Classifier.load(str(base), device="cpu", backend="torch").classify(photos)]
    _fill(full_disk)
    env = {**os.environ, "SQUEEZELENS_CACHE_DIR": str(full_disk / "cache")}
    proc = subprocess.run([sys.executable, "-m", "squeezelens", "classify", *map(str, photos), "--model", str(base),
                           "--format", "json", "--device", "cpu"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stderr
    assert [r["top"][0]["index"] for r in json.loads(proc.stdout)] == ref


def test_classify_with_a_read_only_cache_answers_correctly(read_only_cache: Path, base: Path,
                                                           photo_dir: Path) -> None:
    photos = [photo_dir / "chelsea.jpg", photo_dir / "rocket.png"]
    clf = Classifier.load(str(base), device="cpu", export="wait")
    got = clf.classify(photos, top_k=4)
    ref = Classifier.load(str(base), device="cpu", backend="torch").classify(photos, top_k=4)
    assert np.allclose([t.prob for p in got for t in p.top], [t.prob for p in ref for t in p.top], atol=1e-4)


def test_quick_finetune_with_a_full_cache_disk_finishes(full_disk: Path, base: Path, dataset: Path,
                                                        tmp_path: Path) -> None:
    _fill(full_disk)
    result = _finetune(base, dataset, tmp_path / "out", feature_cache_dir=full_disk / "features")
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert any("feature cache" in w for w in result.warnings)  # type: ignore[attr-defined]


def test_quick_finetune_with_a_read_only_cache_finishes(read_only_cache: Path, base: Path, dataset: Path,
                                                        tmp_path: Path) -> None:
    result = _finetune(base, dataset, tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert sum("feature cache" in w for w in result.warnings) == 1  # type: ignore[attr-defined]


def test_deep_finetune_with_a_full_cache_disk_finishes(full_disk: Path, base: Path, dataset: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQUEEZELENS_CACHE_DIR", str(full_disk))
    _fill(full_disk)
    result = _finetune(base, dataset, tmp_path / "out", mode="deep")
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert sum("checkpoint cannot be written" in w for w in result.warnings) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("damage", ["cut", "garbage", "pickle"])
def test_a_damaged_checkpoint_starts_over_with_a_clear_warning(base: Path, dataset: Path, tmp_path: Path,
                                                               damage: str) -> None:
    out = tmp_path / "out"
    cfg = FinetuneConfig(dataset, out, model=str(base), input_size=48, device="cpu", allow_download=False,
                         epochs=1, batch_size=8, mode="deep", resume=True)
    ckpt = checkpoint_path(cfg)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if damage == "pickle":  # a pickle with an object: torch would advise weights_only=False
        import torch

        torch.save({"fingerprint": Path("x")}, ckpt)
    else:
        ckpt.write_bytes(b"PK\x03\x04 cut short" if damage == "cut" else os.urandom(5000))
    result = finetune(cfg)
    warnings = " ".join(result.warnings)
    assert "damaged or not one SqueezeLens wrote" in warnings and "weights_only" not in warnings
    assert [h.epoch for h in result.history] == [1] and (out / "model.safetensors").is_file()
