"""packaging/build.py's helpers that need no PyInstaller: bundling weights from the Hugging Face cache, the
.deb's glibc requirement, permissions and control file, the torch pins and the build's error messages."""

from __future__ import annotations

import _ctypes
import _ssl
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from huggingface_hub import constants as hf_constants
from safetensors.numpy import save

from squeezelens.core import paths
from squeezelens.core.weights import cached_weights

ROOT = Path(__file__).resolve().parents[2]
REPO = "timm/seresnext26d_32x4d.bt_in1k"


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("squeezelens_packaging_build", ROOT / "packaging" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


#: A real (tiny) safetensors file: a damaged one counts as not cached (issue 15's header check).
WEIGHTS = save({"x": np.zeros(1, np.float32)}, metadata={"content": "the weights"})


def cache_with_symlinked_blob(cache: Path) -> Path:
    """What huggingface_hub writes: the snapshot file is a symlink to a blob."""
    folder = cache / f"models--{REPO.replace('/', '--')}"
    blob = folder / "blobs" / "deadbeef"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(WEIGHTS)
    snap = folder / "snapshots" / "rev1" / "model.safetensors"
    snap.parent.mkdir(parents=True)
    snap.symlink_to(Path("../../blobs/deadbeef"))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("rev1")
    return snap


def test_copies_the_weights_file_in_cache_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_with_symlinked_blob(Path(hf_constants.HF_HUB_CACHE))
    build = load_build()
    dest = tmp_path / "hf-hub"
    [copied] = build.copy_cached_weights(["seresnext26d_32x4d"], dest)
    assert copied == dest / "models--timm--seresnext26d_32x4d.bt_in1k" / "snapshots" / "rev1" / "model.safetensors"
    assert copied.is_file() and not copied.is_symlink() and copied.read_bytes() == WEIGHTS
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "models--timm--seresnext26d_32x4d.bt_in1k/refs/main",
        "models--timm--seresnext26d_32x4d.bt_in1k/snapshots/rev1/model.safetensors",
    ]
    # the app, pointed at that folder with the user's cache empty, finds them
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv(paths.BUNDLED_HUB_ENV, str(dest))
    assert cached_weights(REPO) == copied


def test_unknown_or_uncached_variants_stop_the_build(tmp_path: Path) -> None:
    build = load_build()
    with pytest.raises(SystemExit, match="--weights seresnext26d_32x4d: timm/seresnext26d_32x4d.bt_in1k is not in"):
        build.copy_cached_weights(["seresnext26d_32x4d"], tmp_path)
    with pytest.raises(SystemExit, match="--weights nosuchnet"):
        build.copy_cached_weights(["nosuchnet"], tmp_path)


# --- the .deb's glibc requirement, permissions and control file; torch pins; errors -----------------------

def objdump_glibc_needs(path: Path) -> set[tuple[int, ...]]:
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=True).stdout
    return {tuple(int(x) for x in v.split(".")) for v in re.findall(r"\bGLIBC_(\d+(?:\.\d+)+)\b", out)}


ELF_SAMPLES = [Path(sys.executable).resolve(), Path(_ctypes.__file__), Path(_ssl.__file__)]


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("objdump") is None,
                    reason="Linux ELF files, checked against binutils' objdump")
@pytest.mark.parametrize("elf", ELF_SAMPLES, ids=lambda p: p.name)
def test_glibc_needs_match_objdump(elf: Path) -> None:
    build = load_build()
    assert build.elf_glibc_needs(elf) == objdump_glibc_needs(elf) != set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc")
def test_glibc_requirement_is_the_highest_need_else_the_hosts(tmp_path: Path) -> None:
    build = load_build()
    (tmp_path / "README").write_text("not an ELF file")
    (tmp_path / "short").write_bytes(b"\x7fELF")
    host = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
    assert build.glibc_requirement(tmp_path) == host  # no ELF file says: the build host's
    sub = tmp_path / "_internal" / "lib"
    sub.mkdir(parents=True)
    for elf in ELF_SAMPLES:
        shutil.copyfile(elf, sub / elf.name)
    want = max(set().union(*(build.elf_glibc_needs(e) for e in ELF_SAMPLES)))
    assert build.glibc_requirement(tmp_path) == ".".join(map(str, want))
    assert want <= tuple(int(x) for x in host.split("."))


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_deb_under_umask_077_has_readable_files_and_the_bundles_glibc(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    build = load_build()
    monkeypatch.delenv("SQUEEZELENS_DEB_MAINTAINER", raising=False)
    monkeypatch.delenv("SQUEEZELENS_HOMEPAGE", raising=False)
    old = os.umask(0o077)
    try:
        bundle = tmp_path / "squeezelens"
        (bundle / "_internal").mkdir(parents=True)
        shutil.copyfile(Path(sys.executable).resolve(), bundle / "squeezelens")
        (bundle / "squeezelens").chmod(0o700)
        (bundle / "_internal" / "data.txt").write_text("data")
        (bundle / "_internal" / "link.txt").symlink_to("data.txt")
        assert (bundle / "_internal" / "data.txt").stat().st_mode & 0o777 == 0o600
        deb = build.make_deb(bundle, tmp_path / "test.deb", "fasttest")
    finally:
        os.umask(old)
    contents = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True,
                              check=True).stdout
    modes = {line.split()[-1] if "->" not in line else line.split()[-3]: line.split()[0]
             for line in contents.splitlines()}
    assert modes["./opt/squeezelens/squeezelens"] == "-rwxr-xr-x"
    assert modes["./usr/bin/squeezelens"] == "-rwxr-xr-x"
    assert modes["./opt/squeezelens/_internal/data.txt"] == "-rw-r--r--"
    assert modes["./usr/share/applications/squeezelens.desktop"] == "-rw-r--r--"
    assert modes["./opt/squeezelens/_internal/link.txt"].startswith("l")
    assert {m for p, m in modes.items() if p.endswith("/")} == {"drwxr-xr-x"}
    assert all(line.split()[1] == "root/root" for line in contents.splitlines())

    def field(name: str) -> str:
        return subprocess.run(["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True,
                              check=True).stdout.strip()

    glibc = ".".join(map(str, max(build.elf_glibc_needs(Path(sys.executable).resolve()))))
    assert field("Depends").startswith(f"libc6 (>= {glibc}), libegl1, ")
    assert field("Maintainer") == "SqueezeLens developers <noreply@invalid>"
    assert field("Homepage") == ""
    assert field("Description").startswith("desktop image classifier on timm's SE-ResNeXt models (FASTTEST build)")
    assert not (ROOT / "build" / "deb-fasttest").exists()


def test_torch_pins() -> None:
    build = load_build()
    deps = re.findall(r'"((?:torch|torchvision)[<>=][^"]*)"', (ROOT / "pyproject.toml").read_text())
    assert build.cuda_torch_spec().split() == deps  # the CUDA flavour: pyproject's ranges, not "whatever pip has"
    if sys.platform.startswith("linux"):  # PyPI's Linux torch is the CUDA build: only the +cpu pin is safe
        assert build.CPU_TORCH_SPEC.split() == ["torch==2.13.0+cpu", "torchvision==0.28.0"]


def fake_python(tmp_path: Path, torch_version: str, cuda: str) -> Path:
    """Stands in for a build venv's python in check_torch: prints what `torch.__version__, torch.version.cuda` would."""
    py = tmp_path / "python"
    py.write_text(f"#!/bin/sh\necho {torch_version} {cuda}\n")
    py.chmod(0o755)
    return py


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for python")
def test_check_torch_refuses_the_wrong_build_for_the_flavour(tmp_path: Path) -> None:
    build = load_build()
    (ROOT / "build").mkdir(exist_ok=True)
    build.check_torch(fake_python(tmp_path, "2.13.0+cpu", "None"), "cpu")
    build.check_torch(fake_python(tmp_path, "2.14.1+cu130", "13.0"), "cuda")
    with pytest.raises(SystemExit, match=r"the CUDA flavour got a CPU build of torch \(2.13.0\+cpu\)"):
        build.check_torch(fake_python(tmp_path, "2.13.0+cpu", "None"), "cuda")
    with pytest.raises(SystemExit, match=r"the CPU flavour got a CUDA build of torch .*--torch-index "
                                         r"https://download.pytorch.org/whl/cpu"):
        build.check_torch(fake_python(tmp_path, "2.14.1+cu130", "13.0"), "cpu")


def test_a_failed_pip_install_is_one_line_with_the_index_hint(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    build = load_build()

    def no_torch(*args: object) -> Path:
        raise subprocess.CalledProcessError(1, ["/x/venv/bin/python", "-m", "pip", "install", "-q",
                                                "--disable-pip-version-check", "torch==2.13.0+cpu"])

    monkeypatch.setattr(build, "build_env", no_torch)
    assert build.main(["--flavour", "cpu", "--no-installers"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("build.py: `/x/venv/bin/python -m pip install -q --disable-pip-version-check "
                          "torch==2.13.0+cpu` failed with exit status 1")
    assert "--torch-index https://download.pytorch.org/whl/cpu" in err and "SQUEEZELENS_TORCH_INDEX" in err
