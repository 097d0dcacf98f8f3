"""``squeezelens --self-test`` from source as a user runs it: a fresh process, exit status and output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SqueezeLens cache for this module's runs: the ONNX export happens once, not in every test."""
    return str(tmp_path_factory.mktemp("self_test_cache"))


def self_test(cache: str, base: dict[str, str] | None = None, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ if base is None else base, HF_HUB_OFFLINE="1", SQUEEZELENS_CACHE_DIR=cache, **env)
    return subprocess.run([sys.executable, "-m", "squeezelens", "--self-test"], capture_output=True, text=True,
                          env=full, timeout=300)


def test_self_test_passes_offscreen(onnx_cache: str) -> None:
    proc = self_test(onnx_cache, QT_QPA_PLATFORM="offscreen")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "(from source;" in out.splitlines()[0]
    assert "(451x300 JPEG)" in out and "1000 ImageNet classes from timm (#281 = 'tabby'" in out
    assert "  ok    classify: seresnext26d_32x4d on " in out
    for name in ("sample image", "class names", "photo formats", "classify", "Qt platform plugin", "Qt image formats",
                 "Qt multimedia backend", "Qt charts"):
        assert f"  ok    {name}: " in out, name
    assert "Qt started on 'offscreen'" in out
    assert "jpeg, png, gif, webp, tiff, bmp, svg readable" in out
    assert "mediaplugin" in out  # the backend's plugin file is named (ffmpeg on Linux)
    assert "HEIC and AVIF read; colour profiles converted with LittleCMS" in out
    assert "  ok    fast engine: int8 quantized, and run by OpenVINO " in out  # dev has the `openvino` extra
    assert "UNTRAINED" in out
    assert out.rstrip().endswith("self-test passed (9 checks)")
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 plugin is Linux's")
def test_without_a_display_the_native_plugin_is_loaded_not_connected(onnx_cache: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = self_test(onnx_cache, base=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    Qt platform plugin: libqxcb.so loads (no display, so not connected" in proc.stdout


def test_missing_platform_plugin_is_reported_not_fatal(onnx_cache: str) -> None:
    """Qt aborts the process on a platform plugin it cannot find; the self-test looks first and says so."""
    proc = self_test(onnx_cache, QT_QPA_PLATFORM="nosuchplatform")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "  FAIL  Qt platform plugin: Qt platforms plugin 'nosuchplatform' not found in " in out
    assert "libqoffscreen" in out  # and it lists what is there
    assert "  FAIL  Qt multimedia backend: not checked: Qt did not start" in out
    assert "  ok    classify: " in out  # the model side still ran
    assert "self-test FAILED: 4 of 9 checks: Qt platform plugin, Qt image formats, Qt multimedia backend" in out
    assert "Traceback" not in proc.stdout + proc.stderr


def _free_display() -> str:
    """An X display number nothing listens on."""
    n = 97
    while os.path.exists(f"/tmp/.X11-unix/X{n}") or os.path.exists(f"/tmp/.X{n}-lock"):
        n += 1
    return f":{n}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 plugin is Linux's")
def test_unreachable_display_is_a_fail_line_not_an_abort(onnx_cache: str) -> None:
    """DISPLAY set to a server that is not there: Qt would abort (exit 134) with its misleading xcb-cursor
    hint; the self-test starts Qt in a child first, reports why it failed, and runs the rest offscreen."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    display = _free_display()
    proc = self_test(onnx_cache, base=env, DISPLAY=display)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    line = next(li for li in out.splitlines() if "Qt platform plugin:" in li)
    assert line.startswith("  FAIL  Qt platform plugin: libqxcb.so loads, but Qt could not start (killed by "
                           "SIGABRT"), line
    assert f"could not connect to display {display}" in line and f"is DISPLAY={display!r} a running X server" in line
    assert "xcb-cursor0" not in line
    assert line.endswith("the other Qt checks run offscreen")
    for name in ("Qt image formats", "Qt multimedia backend", "Qt charts", "classify"):
        assert f"  ok    {name}: " in out, name
    assert out.rstrip().endswith("self-test FAILED: 1 of 9 checks: Qt platform plugin")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_platform_list_is_tried_in_order_like_qt(onnx_cache: str) -> None:
    """QT_QPA_PLATFORM="wayland;xcb" is a fallback list, not one plugin's name."""
    proc = self_test(onnx_cache, QT_QPA_PLATFORM="nosuchplatform;offscreen")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("  ok    Qt platform plugin: libqoffscreen.so loads (before it in QT_QPA_PLATFORM: Qt platforms plugin "
            "'nosuchplatform' not found in ") in proc.stdout
    assert "Qt started on 'offscreen'" in proc.stdout


def test_asked_platforms_parses_lists_and_options() -> None:
    from squeezelens.gui.self_test_qt import asked_platforms

    assert asked_platforms(None) == [] and asked_platforms("") == []
    assert asked_platforms("xcb") == ["xcb"]
    assert asked_platforms("wayland;xcb") == ["wayland", "xcb"]
    assert asked_platforms("offscreen:fontengine=freetype;xcb:nograb;") == ["offscreen", "xcb"]
