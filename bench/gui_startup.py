"""Desktop app start-up: process start to window shown, and to the first result, against `import torch, timm`.

Each run is a fresh process: `python -m squeezelens gui PHOTO` with SQUEEZELENS_STARTUP_PROBE set, so the
app appends wall-clock stamps when the window first paints and when the first result is shown, and quits
after the first result. The baseline, a plain `python -c "import torch, timm"`, runs in the same session.
Settings go to a temp folder; the Hugging Face cache is the user's own (empty here: the model is untrained).
With ``--cold-cache`` every run gets an empty SqueezeLens cache, so no ONNX graph is cached: the first
result then comes from torch while the graph is exported in the background (a first start); without it
the graph cached by earlier runs is used and the first result needs no torch (every later start; the
model picker's catalogue scan imports timm later, in the worker).

    python bench/gui_startup.py [--runs 5] [--platform offscreen|xcb] [--image PHOTO] [--cold-cache]
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


def time_app(image: str, env: dict[str, str], probe: Path) -> dict[str, float]:
    probe.unlink(missing_ok=True)
    env = dict(env, SQUEEZELENS_STARTUP_PROBE=str(probe), SQUEEZELENS_STARTUP_PROBE_QUIT="first_result")
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "squeezelens", "gui", image], env=env, check=True, timeout=180,
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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        env = dict(os.environ, QT_QPA_PLATFORM=args.platform, XDG_CONFIG_HOME=str(tmpdir / "config"))
        image = args.image or sample_photo(tmpdir)
        time_import(env)  # warm the page cache for both sides alike
        imports, shown, first = [], [], []
        for _ in range(args.runs):
            imports.append(time_import(env))
            run_env = env
            if args.cold_cache:
                run_env = dict(env, SQUEEZELENS_CACHE_DIR=tempfile.mkdtemp(dir=tmpdir))
            marks = time_app(image, run_env, tmpdir / "probe.jsonl")
            shown.append(marks["window_shown"])
            first.append(marks["first_result"])
    imp, win, res = (statistics.median(x) for x in (imports, shown, first))
    cache = "empty SqueezeLens cache each run" if args.cold_cache else "SqueezeLens cache as left by earlier runs"
    print(f"platform {args.platform}, {args.runs} runs, {cache}, medians (s):")
    print(f"  import torch, timm (baseline)   {imp:6.2f}")
    print(f"  process start -> window shown   {win:6.2f}   ratio {win / imp:.2f} of the import (target < 0.40)")
    print(f"  process start -> first result   {res:6.2f}   ratio {res / imp:.2f} of the import")


if __name__ == "__main__":
    main()
