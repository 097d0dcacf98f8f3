"""The real start-up in a fresh process: the window appears before torch has finished importing, and
torch/timm are imported only by the worker thread, never the GUI thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squeezelens.gui.dev_tools import PROBE_ENV, QUIT_ENV

SCRIPT = r"""
import json, sys, threading, time
log = open(sys.argv[2], "a")
def hook(event, args):
    if event == "import" and args[0] in ("torch", "timm"):
        log.write(json.dumps({"module": args[0], "t": time.time(),
                              "main_thread": threading.current_thread() is threading.main_thread()}) + "\n")
        log.flush()  # the app may end with os._exit (e.g. an ONNX export still running): no atexit
sys.addaudithook(hook)
from squeezelens.__main__ import main
sys.argv = ["squeezelens", sys.argv[1]]
sys.exit(main())
"""


def run_app(tmp_path: Path, image: Path, quit_after: str) -> tuple[subprocess.CompletedProcess, dict, list, float]:
    """The real app in a fresh process on ``image``, quitting after the probe event ``quit_after``.

    Returns the process, the probe's {event: time}, the torch/timm imports seen, and when it exited.
    """
    probe, imports_log = tmp_path / "probe.jsonl", tmp_path / "imports.jsonl"
    env = dict(
        os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
        **{PROBE_ENV: str(probe), QUIT_ENV: quit_after},
    )
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(image), str(imports_log)], env=env,
                         capture_output=True, text=True, timeout=180)
    exited = time.time()
    assert out.returncode == 0, out.stderr[-2000:]
    marks = {e["event"]: e["t"] for e in map(json.loads, probe.read_text().splitlines())}
    imports = [json.loads(line) for line in imports_log.read_text().splitlines()] if imports_log.exists() else []
    return out, marks, imports, exited


@pytest.mark.slow
def test_window_before_torch_and_torch_only_in_the_worker(tmp_path: Path, photo_dir: Path) -> None:
    out, marks, imports, _ = run_app(tmp_path, photo_dir / "chelsea.jpg", quit_after="first_result")
    assert set(marks) == {"window_shown", "first_result"}
    assert imports, "torch was never imported: no model ran"
    assert not [i for i in imports if i["main_thread"]], "the GUI thread imported torch or timm"
    timm_start = min(i["t"] for i in imports if i["module"] == "timm")
    # timm is imported only after `import torch` has completed, so this is "before torch finished"
    assert marks["window_shown"] < timm_start
    assert marks["window_shown"] < marks["first_result"]
    assert "Traceback" not in out.stderr


def test_no_display_is_a_clear_error_not_an_abort(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "squeezelens"], env=env, capture_output=True, text=True, timeout=60)
    if not sys.platform.startswith("linux"):
        pytest.skip("the check is for Linux")
    assert out.returncode == 2
    assert "no display found" in out.stderr and "squeezelens classify" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_closing_while_torch_imports_exits_quickly_and_quietly(tmp_path: Path, photo_dir: Path) -> None:
    """Close the window the moment it shows, while the worker is still importing torch."""
    out, marks, _, exited = run_app(tmp_path, photo_dir / "chelsea.jpg", quit_after="window_shown")
    assert "first_result" not in marks  # it really closed before the model was ready
    assert exited - marks["window_shown"] < 2.5  # 2 s promised, plus interpreter teardown
    assert "QThread: Destroyed while thread" not in out.stderr
    assert "Traceback" not in out.stderr
