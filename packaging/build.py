"""Build SqueezeLens' one-folder bundle for this platform, then its installers.

    python packaging/build.py [--flavour cpu|cuda] [--python PY] [--torch-index URL] [--torch-spec SPEC]
                              [--weights VARIANT ...] [--no-installers]

Steps (docs/PACKAGING.md has the details and the measured sizes):

1. A build environment: ``build/venv-<flavour>`` (made once, rebuilt when pyproject.toml or the torch
   spec change) with torch installed first, from ``--torch-index`` / ``$SQUEEZELENS_TORCH_INDEX`` when
   given (the CPU flavour on Linux pins ``torch==2.13.0+cpu``, which only the PyTorch CPU index,
   ``https://download.pytorch.org/whl/cpu``, or a local wheel on pip's find-links provides: on a
   PyPI-only machine pip stops at once instead of fetching the CUDA build), then SqueezeLens itself (a
   regular, non-editable install) with its dependencies and PyInstaller. ``--python`` uses an existing
   environment instead.
2. Optional: the pretrained weights of ``--weights`` variants copied from the local Hugging Face cache
   into ``build/bundle-<flavour>/hf-hub`` (the cache's own layout); the frozen app looks there first.
3. PyInstaller on ``packaging/squeezelens.spec`` -> ``dist/<flavour>/squeezelens/``.
4. Installers: Linux ``.tar.gz`` and ``.deb`` (``dpkg-deb``); Windows: the Inno Setup script is compiled
   when ``iscc`` is on PATH; macOS: ``SqueezeLens.app`` comes from the spec, and the ``.dmg`` is made
   with ``hdiutil``. Compression is fast (gzip level 1): the payload is mostly already-compressed
   shared libraries, and level 9 would cost minutes for a few per cent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
APP = "squeezelens"

#: What the CPU flavour installs when no --torch-spec is given. On Linux, PyPI's torch is the CUDA build
#: (3 GB with its nvidia-* wheels), so the pin names the +cpu build: it resolves from the PyTorch CPU index
#: (--torch-index https://download.pytorch.org/whl/cpu) or from a +cpu wheel on pip's find-links (this
#: workplace), and fails fast, before any download, where only PyPI is reachable. PyPI's Windows and
#: macOS wheels are CPU builds already (and there is no +cpu on PyPI). torchvision has no local tag in the
#: pin: ``==0.28.0`` matches the CPU index's 0.28.0+cpu and PyPI's 0.28.0 alike.
CPU_TORCH_SPEC = ("torch==2.13.0+cpu" if sys.platform.startswith("linux") else "torch==2.13.0") + " torchvision==0.28.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def cuda_torch_spec() -> str:
    """The CUDA flavour: torch and torchvision within pyproject's ranges (PyPI's Linux wheels are CUDA builds)."""
    deps = re.findall(r'^\s*"((?:torch|torchvision)\s*[<>=!~][^"]*)"', (ROOT / "pyproject.toml").read_text(),
                      re.MULTILINE)
    if len(deps) != 2:
        raise SystemExit(f"pyproject.toml: expected torch and torchvision requirements, found {deps}")
    return " ".join(d.replace(" ", "") for d in deps)


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(cmd: list[str], **kw: object) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)  # type: ignore[call-overload]


def version() -> str:
    """The project's version, from pyproject.toml (no tomllib: Python 3.10 builds too)."""
    found = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    if not found:
        raise SystemExit("pyproject.toml has no version")
    return found.group(1)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def build_env(flavour: str, torch_spec: str, torch_index: str | None) -> Path:
    """The build venv's python; created or refreshed only when its inputs change."""
    venv = ROOT / "build" / f"venv-{flavour}"
    py = venv_python(venv)
    key = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + f"\n{torch_spec}\n{torch_index}".encode()
    ).hexdigest()
    stamp = venv / ".squeezelens-build-env"
    if not (py.exists() and stamp.exists() and stamp.read_text() == key):
        if venv.exists():
            shutil.rmtree(venv)
        run([sys.executable, "-m", "venv", venv])
        pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        run([*pip, *(["--index-url", torch_index] if torch_index else []), *torch_spec.split()])
        # the app's own dependencies (torch is satisfied already) and PyInstaller, from the usual index
        run([*pip, f"{ROOT}[packaging]", *torch_spec.split()])
        stamp.write_text(key)
    # the app itself, fresh from the working tree every build (no dependency resolution: seconds). setuptools
    # builds the wheel in the tree's build/lib and does not empty it: a module deleted or renamed since the last
    # build would still be in the wheel, and in the bundle
    for stale in [ROOT / "build" / "lib", *(ROOT / "build").glob("bdist.*")]:
        shutil.rmtree(stale, ignore_errors=True)
    run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--force-reinstall", ROOT])
    return py


def check_not_editable(py: Path) -> None:
    """PyInstaller cannot follow setuptools' editable-install finder (our package-dir mapping): refuse early."""
    code = ("import json, importlib.metadata as m; d = m.distribution('squeezelens'); "
            "t = d.read_text('direct_url.json'); print(json.loads(t).get('dir_info', {}).get('editable', False) "
            "if t else False)")
    out = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=ROOT / "build")  # not ./*.egg-info
    if out.returncode != 0:
        raise SystemExit(f"--python {py}: squeezelens is not installed there ({out.stderr.strip().splitlines()[-1:]})")
    if out.stdout.strip() == "True":
        raise SystemExit(f"--python {py}: squeezelens is an editable install there, which PyInstaller cannot "
                         "bundle; build without --python (a build venv), or `pip install --no-deps .` "
                         "(not -e) into that environment")


def check_torch(py: Path, flavour: str) -> None:
    """A CPU flavour built on a CUDA torch would bundle gigabytes, or break (the spec drops CUDA libraries)."""
    out = subprocess.run([py, "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                         capture_output=True, text=True, cwd=ROOT / "build")
    if out.returncode != 0:
        raise SystemExit(f"torch does not import in {py}: {out.stderr.strip()[-500:]}")
    torch_version, cuda = out.stdout.split()
    log(f"torch {torch_version} (CUDA {cuda})")
    if flavour == "cpu" and cuda != "None":
        raise SystemExit(f"the CPU flavour got a CUDA build of torch ({torch_version}); install torch from the "
                         f"CPU index: --torch-index {CPU_INDEX} (docs/PACKAGING.md)")
    if flavour == "cuda" and cuda == "None":
        raise SystemExit(f"the CUDA flavour got a CPU build of torch ({torch_version}); on Windows pass the CUDA "
                         "index for your drivers, e.g. --torch-index https://download.pytorch.org/whl/cu126, or "
                         "delete build/venv-cuda if it was made from another index (docs/PACKAGING.md)")


def copy_cached_weights(variants: list[str], dest: Path, cache_dir: str | None = None) -> list[Path]:
    """Copy the weights of catalogue ``variants`` from the Hugging Face cache into ``dest`` (same layout).

    Only the weights file and ``refs/main`` are copied, as plain files (no symlinks), so that
    ``huggingface_hub.try_to_load_from_cache(repo, file, cache_dir=dest)`` finds them.

    Raises:
        SystemExit: a variant is unknown or its weights are not in the cache.
    """
    from huggingface_hub import try_to_load_from_cache

    from squeezelens.core import catalogue
    from squeezelens.core.weights import HUB_WEIGHT_FILES

    copied: list[Path] = []
    for name in variants:
        try:
            hub_id = catalogue.find(name)[1].hf_hub_id
        except Exception as e:  # unknown variant: say which
            raise SystemExit(f"--weights {name}: {e}") from e
        if not hub_id:
            raise SystemExit(f"--weights {name}: this variant has no published weights")
        found = None
        for filename in HUB_WEIGHT_FILES:
            f = try_to_load_from_cache(hub_id, filename, cache_dir=cache_dir)
            if isinstance(f, str) and os.path.isfile(f):
                found = Path(f)
                break
        if found is None:
            raise SystemExit(f"--weights {name}: {hub_id} is not in the Hugging Face cache; run "
                             f"`squeezelens classify --model {name} SOME.jpg` once online to fetch it")
        # <cache>/models--org--name/snapshots/<revision>/<filename>
        revision, repo_dir = found.parent.name, found.parent.parent.parent.name
        target = dest / repo_dir / "snapshots" / revision / found.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found.resolve(), target)
        refs = dest / repo_dir / "refs"
        refs.mkdir(parents=True, exist_ok=True)
        (refs / "main").write_text(revision)
        copied.append(target)
        log(f"bundling weights of {name}: {target.stat().st_size / 1e6:.0f} MB")
    return copied


def freeze(py: Path, flavour: str, hub_dir: Path | None) -> Path:
    """Run PyInstaller on the spec; returns the bundle folder."""
    dist = ROOT / "dist" / flavour
    work = ROOT / "build" / f"pyinstaller-{flavour}"
    args = [py, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
            "--distpath", dist, "--workpath", work, PACKAGING / "squeezelens.spec", "--", "--flavour", flavour]
    if hub_dir is not None:
        args += ["--hub-dir", hub_dir]
    run(args, cwd=ROOT / "build")  # not the working tree: its squeezelens.egg-info would shadow the venv's
    return dist / APP


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def deb_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def make_targz(bundle: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        tar.add(bundle, arcname=f"{APP}-{version()}")
    return out


SHT_GNU_VERNEED = 0x6FFFFFFE


def elf_glibc_needs(path: Path) -> set[tuple[int, ...]]:
    """The ``GLIBC_x.y[.z]`` symbol versions an ELF file needs (its ``.gnu.version_r``); empty for non-ELF.

    What ``objdump -p`` lists under "Version References", read with no binutils at hand.
    """
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
            return set()
        is64, end = ident[4] == 2, "<" if ident[5] == 1 else ">"
        f.seek(0)
        header = f.read(64 if is64 else 52)
        if is64:
            shoff, shentsize, shnum = (struct.unpack_from(end + "Q", header, 0x28)[0],
                                       *struct.unpack_from(end + "HH", header, 0x3A))
        else:
            shoff, shentsize, shnum = (struct.unpack_from(end + "I", header, 0x20)[0],
                                       *struct.unpack_from(end + "HH", header, 0x2E))
        if not shoff or not shnum:
            return set()
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        sections = []  # (type, offset, size, link)
        for i in range(shnum):
            if is64:
                _, kind, _, _, off, size, link = struct.unpack_from(end + "IIQQQQI", table, i * shentsize)
            else:
                _, kind, _, _, off, size, link = struct.unpack_from(end + "IIIIIII", table, i * shentsize)
            sections.append((kind, off, size, link))
        needs: set[tuple[int, ...]] = set()
        for kind, off, size, link in sections:
            if kind != SHT_GNU_VERNEED or link >= len(sections):
                continue
            f.seek(off)
            data = f.read(size)
            f.seek(sections[link][1])
            strtab = f.read(sections[link][2])
            pos = 0
            while pos + 16 <= len(data):
                _, count, _, aux, nxt = struct.unpack_from(end + "HHIII", data, pos)
                apos = pos + aux
                for _ in range(count):
                    if apos + 16 > len(data):
                        break
                    _, _, _, name_off, anext = struct.unpack_from(end + "IHHII", data, apos)
                    name = strtab[name_off:strtab.find(b"\0", name_off)].decode("ascii", "replace")
                    found = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", name)
                    if found:
                        needs.add(tuple(int(x) for x in found.group(1).split(".")))
                    if not anext:
                        break
                    apos += anext
                if not nxt:
                    break
                pos += nxt
        return needs


def glibc_requirement(folder: Path) -> str:
    """The lowest glibc the bundle runs on: the highest GLIBC_ symbol version any of its ELF files needs;
    the build host's glibc when none says (which is what the bundle was linked and tested against)."""
    needs: set[tuple[int, ...]] = set()
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            needs |= elf_glibc_needs(p)
    if needs:
        return ".".join(map(str, max(needs)))
    host = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None  # "glibc 2.36"
    if host and host.split()[-1][:1].isdigit():
        return host.split()[-1]
    raise SystemExit(f"cannot tell which glibc {folder} needs (no ELF version needs, and the host says {host!r})")


def normalise_permissions(stage: Path) -> None:
    """Folders and executables 0755, other files 0644: dpkg-deb wants 0755 folders, and a build run under
    umask 077 would otherwise install files only root can read."""
    for p in [stage, *stage.rglob("*")]:
        if p.is_symlink():
            continue
        if p.is_dir() or p.stat().st_mode & 0o100:
            p.chmod(0o755)
        else:
            p.chmod(0o644)


def deb_control(flavour: str, size_kb: int, glibc: str) -> str:
    """The .deb's DEBIAN/control. ``$SQUEEZELENS_DEB_MAINTAINER`` names the maintainer (the default is a
    placeholder, docs/PACKAGING.md); ``$SQUEEZELENS_HOMEPAGE``, when set, adds Homepage."""
    suffix = "" if flavour == "cpu" else f" ({flavour.upper()} build)"
    maintainer = os.environ.get("SQUEEZELENS_DEB_MAINTAINER") or "SqueezeLens developers <noreply@invalid>"
    homepage = os.environ.get("SQUEEZELENS_HOMEPAGE")
    return (
        f"Package: {APP}\nVersion: {version()}\nSection: graphics\nPriority: optional\n"
        f"Architecture: {deb_arch()}\nInstalled-Size: {size_kb}\n"
        f"Maintainer: {maintainer}\n"
        # glibc: what the bundled libraries need; then what Qt's xcb platform plugin and its
        # EGL/GL/fontconfig need from the system (scripts/system-deps.sh); everything else is bundled
        f"Depends: libc6 (>= {glibc}), libegl1, libgl1, libfontconfig1, libxkbcommon0, libxkbcommon-x11-0, "
        "libdbus-1-3, libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, libxcb-image0, libxcb-render-util0, "
        "libxcb-shape0, libxcb-xinerama0, libxcb-xkb1, libxcb-randr0\n"
        "Recommends: libpulse0\n"
        + (f"Homepage: {homepage}\n" if homepage else "")
        + f"Description: desktop image classifier on timm's SE-ResNeXt models{suffix}\n"
        " Drop a photo and see the top-5 ImageNet classes, classify folders, teach it your\n"
        " own classes. Runs offline; `squeezelens --self-test` checks an installation.\n"
    )


def make_deb(bundle: Path, out: Path, flavour: str) -> Path:
    """A .deb: the bundle in /opt/squeezelens, a /usr/bin launcher, the .desktop entry and the icons."""
    stage = ROOT / "build" / f"deb-{flavour}"
    if stage.exists():
        shutil.rmtree(stage)
    opt = stage / "opt" / APP
    shutil.copytree(bundle, opt, symlinks=True)
    (stage / "usr/bin").mkdir(parents=True)
    launcher = stage / "usr/bin" / APP
    launcher.write_text(f'#!/bin/sh\nexec /opt/{APP}/{APP} "$@"\n')
    launcher.chmod(0o755)
    res = ROOT / "resources"
    apps = stage / "usr/share/applications"
    apps.mkdir(parents=True)
    shutil.copyfile(res / "squeezelens.desktop", apps / "squeezelens.desktop")
    for src, sub in (("icon-256.png", "256x256/apps/squeezelens.png"), ("icon.svg", "scalable/apps/squeezelens.svg")):
        dst = stage / "usr/share/icons/hicolor" / sub
        dst.parent.mkdir(parents=True)
        shutil.copyfile(res / src, dst)
    control = stage / "DEBIAN"
    control.mkdir()
    glibc = glibc_requirement(opt)
    log(f".deb: the bundle needs glibc {glibc}")
    (control / "control").write_text(deb_control(flavour, dir_size(stage) // 1024, glibc))
    normalise_permissions(stage)
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", stage, out])
    shutil.rmtree(stage)
    return out


def make_windows_installer(bundle: Path, flavour: str) -> Path | None:
    iscc = shutil.which("iscc") or shutil.which("ISCC.exe")
    if not iscc:
        log("Inno Setup's iscc not on PATH: skipping the Windows installer (packaging/windows/squeezelens.iss)")
        return None
    out = ROOT / "dist"
    run([iscc, f"/DAppVersion={version()}", f"/DBundleDir={bundle}", f"/DFlavour={flavour}", f"/O{out}",
         PACKAGING / "windows" / "squeezelens.iss"])
    return out / f"SqueezeLens-{version()}-{flavour}-setup.exe"


def make_dmg(flavour: str) -> Path:
    """Sign the .app (its binaries were signed by PyInstaller, with the same identity: the spec), then a .dmg
    with the app and an /Applications link to drag it onto."""
    app = ROOT / "dist" / flavour / "SqueezeLens.app"
    out = ROOT / "dist" / f"SqueezeLens-{version()}-{flavour}.dmg"
    identity = os.environ.get("MACOS_SIGN_IDENTITY") or "-"  # "-": ad-hoc; a Developer ID for distribution
    # no --deep (Apple: sign nested code inside out, which PyInstaller did); a secure timestamp is what
    # notarisation requires of a Developer ID signature, and an ad-hoc one cannot have it
    run(["codesign", "--force", "--options", "runtime", *(["--timestamp"] if identity != "-" else []),
         "--sign", identity, "--entitlements", PACKAGING / "macos" / "entitlements.plist", app])
    run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", app])
    stage = ROOT / "build" / f"dmg-{flavour}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    run(["ditto", app, stage / app.name])  # ditto keeps the signature's extended attributes
    (stage / "Applications").symlink_to("/Applications")
    out.unlink(missing_ok=True)
    for attempt in range(1, 4):  # hdiutil fails now and then with "Resource busy" on CI runners
        try:
            run(["hdiutil", "create", "-volname", "SqueezeLens", "-srcfolder", stage, "-ov", "-format", "UDZO", out])
            break
        except subprocess.CalledProcessError:
            if attempt == 3:
                raise
            log(f"hdiutil failed (attempt {attempt} of 3); retrying in 10 s")
            time.sleep(10)
    shutil.rmtree(stage)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        return build(argv)
    except subprocess.CalledProcessError as e:  # pip, PyInstaller or an installer tool failed: its output is above
        cmd = " ".join(str(c) for c in e.cmd)
        hint = ""
        if "pip" in [str(c) for c in e.cmd[:4]]:
            hint = (f"; if torch could not be found: the CPU flavour on Linux needs torch's +cpu build, from the "
                    f"PyTorch CPU index: --torch-index {CPU_INDEX} (or SQUEEZELENS_TORCH_INDEX={CPU_INDEX}); "
                    "see docs/PACKAGING.md")
        print(f"build.py: `{cmd}` failed with exit status {e.returncode}{hint}", file=sys.stderr)
        return 1


def build(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flavour", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--python", help="build with this environment's python instead of build/venv-<flavour>")
    ap.add_argument("--torch-index", default=os.environ.get("SQUEEZELENS_TORCH_INDEX") or None,
                    help=f"pip index for torch and torchvision (default: $SQUEEZELENS_TORCH_INDEX, else pip's own "
                         f"configuration; the CPU flavour on Linux needs {CPU_INDEX} unless a +cpu wheel is on "
                         "pip's find-links)")
    ap.add_argument("--torch-spec", help=f"torch requirements (default cpu: {CPU_TORCH_SPEC!r}; "
                                         "cuda: pyproject.toml's torch and torchvision ranges)")
    ap.add_argument("--weights", nargs="*", default=[], metavar="VARIANT",
                    help="bundle these variants' pretrained weights from the local Hugging Face cache")
    ap.add_argument("--hf-cache", help="the Hugging Face hub cache to copy --weights from (default: the usual)")
    ap.add_argument("--no-installers", action="store_true", help="stop after the bundle")
    args = ap.parse_args(argv)

    t0 = time.time()
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "dist").mkdir(exist_ok=True)
    spec = args.torch_spec or (CPU_TORCH_SPEC if args.flavour == "cpu" else cuda_torch_spec())
    # absolute, not resolved: a venv's python is a symlink out of the venv
    py = Path(os.path.abspath(args.python)) if args.python else build_env(args.flavour, spec, args.torch_index)
    check_not_editable(py)
    check_torch(py, args.flavour)
    log(f"build environment ready ({time.time() - t0:.0f} s): {py}")

    hub_dir = None
    if args.weights:
        hub_dir = ROOT / "build" / f"bundle-{args.flavour}" / "hf-hub"
        if hub_dir.exists():
            shutil.rmtree(hub_dir)
        hub_dir.mkdir(parents=True)
        copy_cached_weights(args.weights, hub_dir, args.hf_cache)

    t1 = time.time()
    bundle = freeze(py, args.flavour, hub_dir)
    report: dict[str, object] = {"flavour": args.flavour, "bundle": str(bundle), "bundle_bytes": dir_size(bundle),
                                 "freeze_s": round(time.time() - t1, 1)}
    log(f"bundle {bundle}: {report['bundle_bytes'] / 1e6:.0f} MB in {report['freeze_s']} s")

    if not args.no_installers:
        t2 = time.time()
        dist = ROOT / "dist"
        installers: list[Path | None] = []
        if sys.platform.startswith("linux"):
            stem = f"{APP}-{version()}-linux-{platform.machine()}-{args.flavour}"
            installers.append(make_targz(bundle, dist / f"{stem}.tar.gz"))
            if shutil.which("dpkg-deb"):
                installers.append(make_deb(bundle, dist / f"{APP}_{version()}_{deb_arch()}-{args.flavour}.deb",
                                           args.flavour))
            else:
                log("dpkg-deb not found: skipping the .deb")
        elif sys.platform == "win32":
            installers.append(make_windows_installer(bundle, args.flavour))
        elif sys.platform == "darwin":
            installers.append(make_dmg(args.flavour))
        report["installers"] = {str(p): p.stat().st_size for p in installers if p is not None}
        report["installers_s"] = round(time.time() - t2, 1)
        for p, size in report["installers"].items():  # type: ignore[union-attr]
            log(f"installer {p}: {size / 1e6:.0f} MB")
    report["total_s"] = round(time.time() - t0, 1)
    (ROOT / "dist" / f"build-{args.flavour}.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"done in {report['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
