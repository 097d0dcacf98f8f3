"""The Linux bundle as users get it: build it with packaging/build.py, run the frozen app, inspect the .deb.

Marked ``packaging``: ``make test-packaging`` (CI runs it after ``make test``); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle and .deb"),
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HUB_ID = "timm/seresnext26d_32x4d.bt_in1k"


@pytest.fixture(scope="session")
def build() -> dict:
    """Build the CPU flavour (bundle, .tar.gz, .deb) once per session; returns build.py's report."""
    proc = subprocess.run([sys.executable, "packaging/build.py", "--flavour", "cpu"], cwd=ROOT, timeout=1800,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads((ROOT / "dist" / "build-cpu.json").read_text())


@pytest.fixture(scope="session")
def exe(build: dict) -> Path:
    path = Path(build["bundle"]) / "squeezelens"
    assert path.is_file() and os.access(path, os.X_OK)
    return path


def headless_env(**extra: str) -> dict[str, str]:
    """No display and no Qt platform chosen: what a server or a CI job has. hf_env made the caches private."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "PYTHONPATH", "VIRTUAL_ENV")}
    return dict(env, HF_HUB_OFFLINE="1", **extra)


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd="/")


def test_frozen_self_test_passes_headless(exe: Path) -> None:
    proc = run([str(exe), "--self-test"], headless_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "squeezelens self-test (frozen app;" in out
    for name in ("sample image", "class names", "photo formats", "classify", "Qt platform plugin", "Qt image formats",
                 "Qt multimedia backend", "Qt charts"):
        assert f"  ok    {name}: " in out, name
    assert "libqxcb.so loads (no display, so not connected" in out
    assert "libffmpegmediaplugin.so loaded" in out
    assert "HEIC and AVIF read; colour profiles converted with LittleCMS" in out
    # the installers quantize (ONNX Runtime's quantizer and the onnxruntime.transformers modules it loads by
    # bare name) and carry OpenVINO's CPU plugin and ONNX front end (issue 19's fast int8/bf16 engine)
    assert "  ok    fast engine: int8 quantized, and run by OpenVINO " in out
    assert "UNTRAINED" in out  # no weights bundled in this build
    assert "Traceback" not in proc.stderr


def need(tool: str, package: str) -> None:
    """These tests run only when asked for (-m packaging, CI): a missing tool fails them, never skips them."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (Debian package {package}; scripts/system-deps.sh installs it)")


def test_frozen_self_test_connects_to_x11_under_xvfb(exe: Path) -> None:
    need("xvfb-run", "xvfb")
    env = headless_env()
    proc = run(["xvfb-run", "-a", str(exe), "--self-test"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    Qt platform plugin: libqxcb.so loads; Qt started on 'xcb'" in proc.stdout


def test_frozen_self_test_with_an_unreachable_display_fails_cleanly(exe: Path) -> None:
    """Frozen, the self-test's Qt child is the app itself (no ``-c``): entry.py runs the probe."""
    proc = run([str(exe), "--self-test"], headless_env(DISPLAY=":97"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ("  FAIL  Qt platform plugin: libqxcb.so loads, but Qt could not start (killed by SIGABRT): "
            "qt.qpa.xcb: could not connect to display :97") in proc.stdout
    assert "  ok    Qt charts: " in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_frozen_classify_real_photos(exe: Path, photo_dir: Path) -> None:
    proc = run([str(exe), "classify", str(photo_dir), "--format", "json"], headless_env())
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert sorted(Path(r["path"]).name for r in results) == sorted(p.name for p in photo_dir.iterdir())
    for r in results:
        assert r["untrained"] is True and "error" not in r
        assert len(r["top"]) == 5 and all(t["label"] and not t["label"].startswith("class ") for t in r["top"])
    assert "running untrained" in proc.stderr  # and it says so


def test_frozen_app_uses_weights_bundled_in_it(exe: Path, tmp_path: Path, confident_weights: Path,
                                               photo_dir: Path) -> None:
    """A bundle with hf-hub/ inside (what build.py --weights makes) runs trained, offline, from the first start."""
    # a copy beside dist/ (same file system: hard links, instant, no space; tmp_path may be another one)
    bundle = ROOT / "build" / "test-bundle-with-weights" / "squeezelens"
    shutil.rmtree(bundle.parent, ignore_errors=True)
    bundle.parent.mkdir(parents=True)
    if subprocess.run(["cp", "-al", str(exe.parent), str(bundle)], capture_output=True).returncode != 0:
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.copytree(exe.parent, bundle, symlinks=True)
    snap = bundle / "_internal" / "hf-hub" / f"models--{DEFAULT_HUB_ID.replace('/', '--')}" / "snapshots" / "r1"
    snap.mkdir(parents=True)
    shutil.copyfile(confident_weights, snap / "model.safetensors")
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("r1")

    proc = run([str(bundle / "squeezelens"), "classify", str(photo_dir / "chelsea.jpg"), "--format", "json"],
               headless_env())
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)
    assert result["untrained"] is False
    proc = run([str(bundle / "squeezelens"), "--self-test"], headless_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"[weights: weights bundled with the app ({DEFAULT_HUB_ID})]" in proc.stdout
    assert "UNTRAINED" not in proc.stdout
    shutil.rmtree(bundle.parent)


def test_bundle_contents(build: dict) -> None:
    internal = Path(build["bundle"]) / "_internal"
    must = [
        "timm/data/_info/imagenet_synsets.txt", "timm/data/_info/imagenet_synset_to_lemma.txt",
        "squeezelens/resources/sample.jpg", "squeezelens/resources/icon.svg",
        "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so", "PySide6/Qt/plugins/imageformats/libqjpeg.so",
        "PySide6/QtMultimedia.abi3.so", "PySide6/QtCharts.abi3.so",
    ]
    assert [m for m in must if not (internal / m).exists()] == []
    assert list(internal.rglob("libavcodec.so*")), "Qt's FFmpeg libraries"
    names = {p.name for p in internal.rglob("*")}
    left_out = ["libQt6WebEngineCore.so.6", "libQt6Pdf.so.6", "libqpdf.so", "libQt6VirtualKeyboard.so.6",
                "libqtvirtualkeyboardplugin.so", "libqgtk3.so", "libqeglfs.so", "libtorch_cuda.so", "libcudart.so.13"]
    assert [n for n in left_out if n in names] == []
    assert not (internal / "torch" / "test").exists() and not (internal / "torch" / "include").exists()


def test_targz(build: dict) -> None:
    [targz] = [Path(p) for p in build["installers"] if p.endswith(".tar.gz")]
    with tarfile.open(targz) as tar:
        names = set(tar.getnames())
    top = f"squeezelens-{targz.name.split('-')[1]}"
    assert f"{top}/squeezelens" in names and f"{top}/_internal/squeezelens/resources/sample.jpg" in names


def test_deb_info_and_contents(build: dict, tmp_path: Path) -> None:
    need("dpkg-deb", "dpkg")
    [deb] = [Path(p) for p in build["installers"] if p.endswith(".deb")]
    info = subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True, text=True, check=True).stdout
    for field in ("Package: squeezelens", "Version: 0.1.0", "Architecture: amd64", "Depends: libc6",
                  "libxcb-cursor0", "Description: desktop image classifier"):
        assert field in info, field
    # the glibc the bundle's libraries need (build.py reads their version needs), not a guess
    need("objdump", "binutils")
    glibc = re.search(r"Depends: libc6 \(>= (\d+\.\d+)\)", info).group(1)
    needed = subprocess.run(f"find {build['bundle']} -type f -exec objdump -p {{}} + 2>/dev/null", shell=True,
                            capture_output=True, text=True).stdout
    top = max(tuple(map(int, v.split("."))) for v in re.findall(r"\bGLIBC_(\d+(?:\.\d+)+)\b", needed))
    assert glibc == ".".join(map(str, top))
    contents = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True,
                              check=True).stdout
    paths = {line.split()[-1] for line in contents.splitlines()}
    for p in ("./usr/bin/squeezelens", "./usr/share/applications/squeezelens.desktop",
              "./usr/share/icons/hicolor/256x256/apps/squeezelens.png",
              "./usr/share/icons/hicolor/scalable/apps/squeezelens.svg", "./opt/squeezelens/squeezelens",
              "./opt/squeezelens/_internal/timm/data/_info/imagenet_synsets.txt",
              "./opt/squeezelens/_internal/PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so"):
        assert p in paths, p
    launcher = next(line for line in contents.splitlines() if line.endswith("./usr/bin/squeezelens"))
    assert launcher.startswith("-rwxr-xr-x root/root")
    modes = {line.split()[-1]: line.split()[0] for line in contents.splitlines() if "->" not in line}
    assert modes["./opt/squeezelens/_internal/squeezelens/resources/sample.jpg"] == "-rw-r--r--"
    assert modes["./opt/squeezelens/squeezelens"] == "-rwxr-xr-x"
    # unpacked, the app in it runs; the launcher execs it from /opt
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    assert (tmp_path / "usr/bin/squeezelens").read_text() == '#!/bin/sh\nexec /opt/squeezelens/squeezelens "$@"\n'
    proc = run([str(tmp_path / "opt/squeezelens/squeezelens"), "--version"], headless_env())
    assert (proc.returncode, proc.stdout.strip()) == (0, "squeezelens 0.1.0")
    desktop = (tmp_path / "usr/share/applications/squeezelens.desktop").read_text()
    assert "Exec=squeezelens %F" in desktop and "Icon=squeezelens" in desktop
