"""Desktop app start-up: process start to window shown, and to the first result, against `import torch, timm`.

Each run is a fresh process: `python -m squeezelens gui PHOTO` with SQUEEZELENS_STARTUP_PROBE set, so the
app appends wall-clock stamps when the window first paints and when the first result is shown, and quits
after the first result. The baseline, a plain `python -c "import torch, timm"`, runs in the same session.
Settings go to a temp folder; the Hugging Face cache is the user's own (empty here: the model is untrained).
With ``--cold-cache`` every run gets an empty SqueezeLens cache, so no ONNX graph is cached: the first
result then comes from torch while the graph is exported in the background (a first start); without it
the graph cached by earlier runs is used and the first result needs no torch (every later start; the
model picker's catalogue scan imports timm later, in the worker).

With ``--exe PATH`` (a frozen app, e.g. ``dist/cpu/squeezelens/squeezelens``) each run also starts that
executable the same way, alternating with the from-source app, and both are reported (docs/PACKAGING.md).
The frozen app gets a SqueezeLens cache of its own (a temp folder, warmed by one untimed `classify`): its torch
differs from the source tree's, so its ONNX graph is keyed differently, and one shared cache would have
each side replace the other's graph on every run (an installed app has the cache to itself).

    python bench/gui_startup.py [--runs 5] [--platform offscreen|xcb] [--image PHOTO] [--cold-cache] [--exe PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_import(env: dict[str, str]) -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-c", "import torch, timm"], env=env, check=True)
    return time.time() - t0


def time_app(image: str, env: dict[str, str], probe: Path, exe: str | None = None) -> dict[str, float]:
    probe.unlink(missing_ok=True)
    from squeezelens.gui.dev_tools import PROBE_ENV, QUIT_ENV

    env = dict(env, **{PROBE_ENV: str(probe), QUIT_ENV: "first_result"})
    cmd = [exe, "gui", image] if exe else [sys.executable, "-m", "squeezelens", "gui", image]
    t0 = time.time()
    subprocess.run(cmd, env=env, check=True, timeout=180,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    total = time.time() - t0
    marks = {e["event"]: e["t"] - t0 for e in map(json.loads, probe.read_text().splitlines())}
    return {**marks, "exit": total}


def sample_photo(folder: Path) -> str:
    from PIL import Image
    from skimage import data

    path = folder / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(path, quality=92)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    ap.add_argument("--image", help="photo to classify (default: skimage's chelsea)")
    ap.add_argument("--cold-cache", action="store_true", help="an empty SqueezeLens cache for every run")
    ap.add_argument("--exe", help="also time this executable (a frozen app) in the same runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        env = dict(os.environ, QT_QPA_PLATFORM=args.platform, XDG_CONFIG_HOME=str(tmpdir / "config"))
        image = args.image or sample_photo(tmpdir)
        time_import(env)  # warm the page cache for both sides alike
        frozen_env = dict(env, SQUEEZELENS_CACHE_DIR=str(tmpdir / "frozen-cache"))
        if args.exe:
            # page cache, and its ONNX graph: `classify` waits for the export, where the app quitting
            # right after its first result would cut the background export off
            subprocess.run([args.exe, "classify", image], env=frozen_env, check=True, timeout=300,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        imports, shown, first, fshown, ffirst = [], [], [], [], []
        for _ in range(args.runs):
            imports.append(time_import(env))
            run_env = env
            if args.cold_cache:
                run_env = dict(env, SQUEEZELENS_CACHE_DIR=tempfile.mkdtemp(dir=tmpdir))
            marks = time_app(image, run_env, tmpdir / "probe.jsonl")
            shown.append(marks["window_shown"])
            first.append(marks["first_result"])
            if args.exe:
                run_env = frozen_env
                if args.cold_cache:
                    run_env = dict(env, SQUEEZELENS_CACHE_DIR=tempfile.mkdtemp(dir=tmpdir))
                marks = time_app(image, run_env, tmpdir / "probe.jsonl", args.exe)
                fshown.append(marks["window_shown"])
                ffirst.append(marks["first_result"])
    imp, win, res = (statistics.median(x) for x in (imports, shown, first))
    cache = "empty SqueezeLens cache each run" if args.cold_cache else "SqueezeLens cache as left by earlier runs"
    print(f"platform {args.platform}, {args.runs} runs, {cache}, medians (s):")
    print(f"  import torch, timm (baseline)   {imp:6.2f}")
    print(f"  process start -> window shown   {win:6.2f}   ratio {win / imp:.2f} of the import (target < 0.40)")
    print(f"  process start -> first result   {res:6.2f}   ratio {res / imp:.2f} of the import")
    if args.exe:
        fwin, fres = statistics.median(fshown), statistics.median(ffirst)
        print(f"frozen app {args.exe}:")
        print(f"  process start -> window shown   {fwin:6.2f}   ratio {fwin / win:.2f} of from source")
        print(f"  process start -> first result   {fres:6.2f}   ratio {fres / res:.2f} of from source")


if __name__ == "__main__":
    main()
