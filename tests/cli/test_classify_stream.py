"""``classify`` as a long run uses it: streamed output, --resume after SIGKILL, --shard, a full disk
(exit 2), a reader that leaves (exit 141) and Ctrl+C (exit 130, finished results kept).

Real processes on a tiny timm model (test_resnet, 4 classes) and small generated images.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

N_IMAGES = 40


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model folder, image folder of N_IMAGES small PNGs, one of them broken)."""
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    base = tmp_path_factory.mktemp("stream")
    torch.manual_seed(1)
    net = timm.create_model("test_resnet", num_classes=4)
    with torch.no_grad():
        net.get_classifier().weight.mul_(20)
    model = save_model(net, base / "tiny", ["ant", "bee", "cow", "doe"])
    images = base / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES - 1):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(images / f"img_{i:03d}.png")
    (images / "img_broken.png").write_bytes(b"not a png")
    return model, images


def cmd(model: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "squeezelens", "classify", "--model", str(model), "--backend", "torch",
            "--top-k", "4", *args]


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def stable(record: dict) -> dict:
    """A record without its timings, probabilities to 5 decimals (batch sizes differ in the last bits)."""
    out = {k: v for k, v in record.items() if k != "time_ms"}
    if "top" in out:
        out["top"] = [{**t, "prob": round(t["prob"], 5)} for t in out["top"]]
    return out


def classify_here(model: Path, *args: str) -> int:
    """The command in this process (no start-up cost): its exit status."""
    from squeezelens import cli

    return cli.main(["classify", "--model", str(model), "--backend", "torch", "--top-k", "4", *args])


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sigkill_then_resume_has_every_input_once(tmp_path: Path, tiny_run: tuple[Path, Path], capsys) -> None:
    model, images = tiny_run
    reference = tmp_path / "ref.jsonl"
    assert classify_here(model, str(images), "-o", str(reference)) == 1
    expected = {r["path"]: stable(r) for r in jsonl(reference)}
    assert len(expected) == N_IMAGES

    for suffix in (".jsonl", ".csv"):
        out = tmp_path / f"r{suffix}"
        inputs = [str(images)] * 5  # 200 inputs, each path 5 times: written once
        proc = subprocess.Popen(cmd(model, *inputs, "-o", str(out), "--resume", "--batch-size", "1"), env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 30):
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = out.read_bytes().count(b"\n")
        assert 30 <= killed_at < 4 * (N_IMAGES - 1), "the run should have been killed mid-way"
        assert classify_here(model, *inputs, "-o", str(out), "--resume") == 1  # the broken image
        assert "resuming:" in capsys.readouterr().err
        if suffix == ".jsonl":
            records = jsonl(out)
            assert sorted(r["path"] for r in records) == sorted(expected)  # every input exactly once
            assert {r["path"]: stable(r) for r in records} == expected  # the same answers
        else:
            import csv

            rows = list(csv.DictReader(out.open(newline="")))
            paths = [r["path"] for r in rows]
            assert sorted(set(paths)) == sorted(expected)
            assert len(rows) == 4 * (N_IMAGES - 1) + 1  # 4 ranks each, one error row


def test_shards_partition_a_folder(tmp_path: Path, tiny_run: tuple[Path, Path]) -> None:
    model, images = tiny_run
    got = []
    for i in range(3):
        out = tmp_path / f"s{i}.jsonl"
        assert classify_here(model, str(images), "--shard", f"{i}/3", "-o", str(out)) in (0, 1)
        got.append([r["path"] for r in jsonl(out)])
    everything = sorted(str(p) for p in images.iterdir())
    assert sorted(p for piece in got for p in piece) == everything  # a partition: each input once
    assert got[1] == everything[1::3]


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing us


@pytest.mark.parametrize("to_file", [False, True])
def test_full_disk_is_exit_2(tmp_path: Path, tiny_run: tuple[Path, Path], to_file: bool) -> None:
    """A file-size limit (what a full disk looks like to a writer): stops at 3000 bytes; exit 2, never 0."""
    model, images = tiny_run
    out = tmp_path / "out.csv"
    args = cmd(model, str(images), "--format", "csv")
    if to_file:
        proc = subprocess.run([*args, "-o", str(out)], env=env(), capture_output=True, text=True, timeout=300,
                              preexec_fn=_limit_file_size)
        assert not out.exists() and list(tmp_path.iterdir()) == []  # no half file, no temp file left
    else:
        with out.open("w") as f:
            proc = subprocess.run(args, env=env(), stdout=f, stderr=subprocess.PIPE, text=True, timeout=300,
                                  preexec_fn=_limit_file_size)
        assert out.stat().st_size == 3000
    assert proc.returncode == 2, proc.stderr
    assert "output is incomplete after" in proc.stderr and "Traceback" not in proc.stderr


def test_head_1_is_exit_141(tiny_run: tuple[Path, Path]) -> None:
    """``| head -1``: more output than a pipe holds (64 KiB), so the writer must notice the reader left."""
    model, images = tiny_run
    args = " ".join(f"'{a}'" for a in cmd(model, *[str(images)] * 5, "--format", "json"))
    proc = subprocess.run(["bash", "-c", f"{args} | head -1; echo \"status=${{PIPESTATUS[0]}}\" >&2"],
                          env=env(), capture_output=True, text=True, timeout=300)
    assert proc.stdout == "[\n"
    assert "status=141" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ctrl_c_keeps_finished_results(tiny_run: tuple[Path, Path]) -> None:
    """SIGINT mid-run (800 inputs; the pipe is full after ~160, so the run cannot finish): the JSON list is complete,
    the classified inputs are in it, the rest are marked cancelled; exit 130."""
    model, images = tiny_run
    proc = subprocess.Popen(cmd(model, *[str(images)] * 20, "--format", "json", "--batch-size", "4"), env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = os.read(proc.stdout.fileno(), 1000)  # it has started writing (unbuffered: communicate reads the rest)
    time.sleep(2.0)  # lets it fill the pipe and block on it
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err.decode()
    data = json.loads(first + rest)
    assert len(data) == 20 * N_IMAGES  # one entry per input
    cancelled = [r for r in data if r.get("error") == "cancelled"]
    finished = [r for r in data if "top" in r]
    assert cancelled and len(finished) >= 4  # at least the first batch
    assert data.index(cancelled[0]) == len(data) - len(cancelled)  # finished first, then the rest
    assert b"interrupted:" in err and b"Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--resume"], "--resume needs --output FILE.csv"),
        (["--resume", "-o", "r.json"], "--resume needs --output FILE.csv, FILE.jsonl or FILE.parquet"),
        (["--resume", "-o", "r.csv", "--format", "json"], "--resume writes csv to r.csv; drop --format json"),
        (["--format", "parquet"], "--format parquet needs --output FILE.parquet"),
        (["--shard", "3/3"], "--shard 3/3: give I/N with 0 <= I < N"),
        (["--workers", "2"], "--address, --workers and --gpus-per-worker go with --engine ray"),
    ],
)
def test_bad_streaming_usage_is_exit_2_before_loading(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      args: list[str], message: str) -> None:
    from squeezelens import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["classify", "x.jpg", "--model", "no-such-model", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "unknown model" not in err  # refused before the model is looked up
