"""``squeezelens finetune``: summary and progress, one-line errors, Ctrl+C leaves the old model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from squeezelens.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(shapes_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = shapes_module.make_dataset(tmp_path_factory.mktemp("cli") / "data", per_class=10, size=48, seed=2)
    (root / "red_circles" / "broken.png").write_text("not a png")
    return root


@pytest.fixture(scope="module")
def cli_model(tiny: Path, confident_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One CLI run shared by the module: (exit code, stdout, stderr, output folder, JSON report)."""
    import contextlib
    import io

    base = tmp_path_factory.mktemp("cli_out")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.MonkeyPatch.context() as mp:
        mp.setenv("SQUEEZELENS_CACHE_DIR", str(base / "cache"))
        rc = main(["finetune", str(tiny), "--output", str(base / "model"), "--weights", str(confident_weights),
                   "--input-size", "64", "--device", "cpu", "--epochs", "20", "--json", str(base / "report.json")])
    report = json.loads((base / "report.json").read_text()) if (base / "report.json").exists() else None
    return rc, out.getvalue(), err.getvalue(), base / "model", report


@pytest.mark.slow
def test_finetune_command_prints_a_summary(cli_model: tuple, tiny: Path) -> None:
    rc, out, err, model_dir, report = cli_model
    assert rc == 0, err
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "config.json").is_file()
    assert "validation accuracy:" in out
    assert "precision  recall" in out and "confusion matrix (rows: true class, columns: predicted)" in out
    for name in ("blue_squares", "checkerboard", "green_stripes", "red_circles"):
        assert name in out
    assert "misclassified validation images:" in out
    assert f"{tiny / 'red_circles' / 'broken.png'}: " in out  # the skipped file is listed
    assert "epoch 1/20  train loss" in err and "val loss" in err  # progress on stderr, not stdout
    assert "features  batch 1/" in err
    assert "epoch 1/20" not in out
    assert report["val_accuracy"] == pytest.approx(float(out.split("validation accuracy: ")[1].split("%")[0]) / 100,
                                                   abs=1e-3)
    assert len(report["confusion"]) == 4 and report["class_names"][0] == "blue_squares"
    assert [s["path"] for s in report["skipped"]] == [str(tiny / "red_circles" / "broken.png")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--val-split", "1.5"], "--val-split must be between 0 and 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_bad_options_are_one_error_line(tiny: Path, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    assert main(["finetune", str(tiny), "-o", str(tmp_path / "m"), *extra]) == 2
    err = capsys.readouterr().err
    assert err == f"squeezelens: error: {message}\n" or err.startswith(f"squeezelens: error: {message}")
    assert err.count("\n") == 1 and not (tmp_path / "m").exists()


def test_single_class_and_bad_output_are_one_error_line(tmp_path: Path, capsys) -> None:
    from PIL import Image

    (tmp_path / "data" / "cats").mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / "data" / "cats" / f"{i}.png")
    assert main(["finetune", str(tmp_path / "data"), "-o", str(tmp_path / "m"), "--offline"]) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("squeezelens: error:")]
    assert len(error_lines) == 1 and "at least 2 classes" in error_lines[0]
    assert "Traceback" not in err

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.txt").write_text("keep me")
    assert main(["finetune", str(tmp_path / "data"), "-o", str(tmp_path / "docs")]) == 2
    assert "did not write (thesis.txt)" in capsys.readouterr().err
    assert (tmp_path / "docs" / "thesis.txt").read_text() == "keep me"


def test_progress_line_is_rewritten_on_a_terminal() -> None:
    import io

    from squeezelens.cli.progress import ProgressPrinter
    from squeezelens.core.finetune import BatchEvent, StageEvent

    buf = io.StringIO()
    printer = ProgressPrinter(buf, tty=True)
    printer(BatchEvent("features", 0, 5, 1, 3, None, 1.0, 2.0))
    printer(BatchEvent("features", 0, 5, 2, 3, None, 2.0, 1.0))
    printer(StageEvent("train", "training"))
    assert buf.getvalue() == ("\r\033[Kfeatures  batch 1/3  ETA 0:02\r\033[Kfeatures  batch 2/3  ETA 0:01\n"
                              "training\n")

    logged = io.StringIO()
    printer = ProgressPrinter(logged, tty=False)  # a log: first batch of a stage, then every few seconds
    for b in range(1, 4):
        printer(BatchEvent("train", 1, 5, b, 3, 0.5, 0.1 * b, 1.0))
    assert logged.getvalue() == "epoch 1/5 train  batch 1/3  loss 0.5000  ETA 0:01\n"


def test_progress_in_a_log_is_one_batch_line_every_5_s() -> None:
    import io

    from squeezelens.cli.progress import LOG_EVERY_S, ProgressPrinter
    from squeezelens.core.finetune import BatchEvent, StageEvent

    now = [100.0]
    logged = io.StringIO()
    printer = ProgressPrinter(logged, tty=False, clock=lambda: now[0])
    for b, t in ((1, 100.0), (2, 104.9), (3, 105.0), (4, 109.0), (5, 110.0)):
        now[0] = t
        printer(BatchEvent("train", 1, 5, b, 9, None, 0.0, None))
    now[0] = 112.0
    printer(StageEvent("train", "validating"))  # any line restarts the wait
    now[0] = 116.0
    printer(BatchEvent("train", 1, 5, 6, 9, None, 0.0, None))
    now[0] = 116.5
    printer(BatchEvent("features", 0, 5, 1, 9, None, 0.0, None))  # a new stage's first batch: at once
    assert LOG_EVERY_S == 5.0
    assert logged.getvalue() == ("epoch 1/5 train  batch 1/9\nepoch 1/5 train  batch 3/9\n"
                                 "epoch 1/5 train  batch 5/9\nvalidating\nfeatures  batch 1/9\n")


def test_help_does_not_import_torch() -> None:
    code = ("import sys\nfrom squeezelens.cli import main\nmain(['finetune', '--help'])\n"
            "print('torch' in sys.modules, 'timm' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "--mode {quick,deep}" in proc.stdout
    assert proc.stdout.strip().endswith("False False")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_cancels_and_keeps_the_previous_model(cli_model: tuple, tiny: Path, confident_weights: Path,
                                                     tmp_path: Path) -> None:
    model_dir = cli_model[3]
    before = {str(p.relative_to(model_dir)): p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
    env = {**os.environ, "SQUEEZELENS_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "squeezelens", "finetune", str(tiny), "-o", str(model_dir), "--mode", "deep",
           "--epochs", "50", "--batch-size", "4", "--input-size", "64", "--device", "cpu",
           "--weights", str(confident_weights)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            if line.startswith("training "):
                break
        assert lines and lines[-1].startswith("training "), "".join(lines)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "cancelling at the next batch" in err
    assert f"cancelled; {model_dir} was not changed" in err
    assert "Traceback" not in err and out == ""
    assert {str(p.relative_to(model_dir)): p.read_bytes() for p in model_dir.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in model_dir.parent.iterdir()) == sorted(["cache", "model", "report.json"])


def test_nproc_restarts_through_torchrun_without_the_launch_options() -> None:
    from squeezelens.cli import build_parser
    from squeezelens.cli import finetune as finetune_cli

    args = build_parser().parse_args(["finetune", "-my data", "-o", "out", "--mode", "deep", "--nproc", "2",
                                      "--batch-size", "4", "--resume", "--epochs", "3"])
    cmd = finetune_cli.torchrun_command(args)
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"]
    tail = cmd[cmd.index("finetune") + 1:]
    assert "--nproc" not in tail and "--nnodes" not in tail
    assert tail[-2:] == ["--", "-my data"]  # a data folder named like an option stays the data folder
    again = build_parser().parse_args(["finetune", *tail])
    assert (again.data_dir, again.batch_size, again.resume, again.epochs, again.nproc) == ("-my data", 4, True, 3, None)

    nodes = build_parser().parse_args(["finetune", "d", "-o", "out", "--mode", "deep", "--nproc", "8",
                                       "--nnodes", "4", "--rdzv-endpoint", "node1:29500"])
    cmd = finetune_cli.torchrun_command(nodes)
    assert cmd[3:13] == ["--nproc-per-node", "8", "--nnodes", "4", "--rdzv-backend", "c10d",
                         "--rdzv-endpoint", "node1:29500", "-m", "squeezelens"]


@pytest.mark.parametrize("extra, message", [
    (["--nproc", "0", "--mode", "deep"], "--nproc must be at least 1"),
    (["--nproc", "2"], "deep mode only"),
    (["--nproc", "2", "--mode", "deep", "--nnodes", "2"], "--rdzv-endpoint"),
])
def test_nproc_refuses_what_torchrun_cannot_run(extra: list[str], message: str) -> None:
    from squeezelens.cli import build_parser
    from squeezelens.cli import finetune as finetune_cli
    from squeezelens.core.errors import UsageError

    args = build_parser().parse_args(["finetune", "d", "-o", "out", *extra])
    with pytest.raises(UsageError, match=message):
        finetune_cli.torchrun_command(args)
