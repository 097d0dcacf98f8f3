"""Camera mode on a real X server (Xvfb with Mesa's software OpenGL), in fresh processes, in both orders.

Offscreen runs never load OpenGL, which is why they missed the crash of issue 14: with ``xcb`` Qt's
video path loads Mesa (``swrast_dri``, ``libLLVM``) with the first frame, and importing timm after that
(torch._dynamo -> triton, which carries its own LLVM) crashed the process; a capture converted in the
GUI thread while the worker converted the same frame hung it. Each run is ``x11_camera_run.py`` in its
own process (a crash or hang there must not take pytest down), several times per order.

Needs ``Xvfb`` (``scripts/system-deps.sh`` installs it on Debian/Ubuntu) or a ``DISPLAY``; skipped with
the reason otherwise. ``SQUEEZELENS_X11_RUNS`` sets the runs per order (default 2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RUN = Path(__file__).with_name("x11_camera_run.py")
RUNS = int(os.environ.get("SQUEEZELENS_X11_RUNS", "2"))
TIMEOUT_S = 240  # one run imports torch and timm: seconds on an idle machine, a minute on a busy one

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 is Linux's")]


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
    """A private Xvfb display (``:N``), or the session's own DISPLAY when there is no Xvfb."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("DISPLAY"):
            yield os.environ["DISPLAY"]
            return
        pytest.skip("no X server: Xvfb is not installed (scripts/system-deps.sh installs it) and DISPLAY is unset")
    read, write = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        proc.wait()
        pytest.skip("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


def _start(order: str, display: str, scratch: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "HF_HUB_OFFLINE": "1",
           "PYTHONFAULTHANDLER": "1", "SQUEEZELENS_CACHE_DIR": str(scratch / "cache")}
    return subprocess.Popen([sys.executable, str(RUN), order, str(scratch)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("order", ["camera-first", "stack-first"])
def test_camera_mode_on_x11_in_either_order(x_display: str, tmp_path: Path, order: str) -> None:
    """The runs of one order go at once (separate processes, one display): each must exit 0 saying OK."""
    runs = []
    for i in range(RUNS):
        scratch = tmp_path / f"run{i}"
        scratch.mkdir()
        runs.append(_start(order, x_display, scratch))
    failures = []
    for i, proc in enumerate(runs):
        try:
            out, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            failures.append(f"run {i + 1}: hung (no exit within {TIMEOUT_S} s)")
        else:
            if proc.returncode != 0 or f"OK {order}" not in out:
                failures.append(f"run {i + 1}: exit {proc.returncode}")
        if failures and failures[-1].startswith(f"run {i + 1}:"):
            tail = "\n".join(line for line in out.splitlines() if not line.startswith("qt.multimedia"))
            failures[-1] += "\n" + tail[-3000:]
    assert not failures, f"{order}: {len(failures)} of {RUNS} runs failed\n" + "\n---\n".join(failures)
