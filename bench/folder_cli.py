"""Whole processes: the CLI on a folder of 32 camera-sized JPEGs and on one photo, against the seed snippet.

Rows, each a fresh process, wall time from start to exit and peak RSS (``os.wait4``):

- seed snippet looped over the folder in one process: import timm, ``create_model`` (random
  weights; ``pretrained=True`` cannot download here and the speed is the same), the model card's
  transform + forward + softmax + topk per file, printing the top-5 as the card does;
- ``squeezelens classify FOLDER --offline --format json`` with the ONNX graph already cached (the
  steady state), and once on an empty cache (the first run, which exports the graph);
- the same CLI with ``--backend torch``;
- cold start: ``squeezelens classify ONE.jpg`` with the graph cached, against ``--backend torch``.

Wall time includes a small launcher process (about 20 ms) that lets the child's own peak RSS be read.

Runs alternate between the compared commands; medians are printed with ratios from the same run.
Targets from issue 6: the folder via the CLI at most 0.4x of the seed loop; peak RSS under 1.2 GB.

Run:  python bench/folder_cli.py [--runs 3] [--photos DIR]   (DIR is filled with the JPEGs once)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARCH = "seresnext26d_32x4d"
COUNT = 32
TARGET_RATIO, TARGET_RSS_GB = 0.4, 1.2
SOURCES = ("coffee", "chelsea", "astronaut", "rocket", "camera", "immunohistochemistry", "hubble_deep_field",
           "coins")

SEED_LOOP = """
import sys, urllib
from pathlib import Path
import timm
model = timm.create_model('seresnext26d_32x4d', pretrained=False)
model.eval()
from PIL import Image
from timm.data import resolve_data_config
from timm.data.transforms_factory import create_transform
config = resolve_data_config({}, model=model)
transform = create_transform(**config)
import torch
for filename in sorted(Path(sys.argv[1]).iterdir()):
    img = Image.open(filename).convert('RGB')
    tensor = transform(img).unsqueeze(0)
    with torch.no_grad():
        out = model(tensor)
    probabilities = torch.nn.functional.softmax(out[0], dim=0)
    top5_prob, top5_catid = torch.topk(probabilities, 5)
    print(filename.name, top5_catid.tolist(), top5_prob.tolist())
"""


def make_photos(folder: Path) -> None:
    """32 JPEGs of 12 MP (4000x3000, every fourth one portrait) from skimage photos, q85-95."""
    sys.path.insert(0, str(Path(__file__).parent))
    import fast_decode
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(COUNT):
        path = folder / f"IMG_{i:04d}.jpg"
        if path.exists():
            continue
        fast_decode.make_photo(path, source=SOURCES[i % len(SOURCES)], noise=2.0 + i % 3, quality=85 + i % 11)
        if i % 4 == 3:
            with Image.open(path) as im:
                im.rotate(90, expand=True).save(path, "JPEG", quality=90)


#: Runs the command as a child of a fresh small process and reports that child's own rusage. Peak
#: RSS (ru_maxrss) carries over fork and exec on Linux, so a child forked straight from this
#: benchmark would report this process's peak, not its own.
LAUNCHER = """
import os, sys, json
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss]), file=sys.stdout)
"""


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in GB, exit code of one process."""
    import json

    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    code, maxrss = json.loads(proc.stdout.strip().splitlines()[-1])
    if code != 0:
        print(f"  ! exit {code}: {' '.join(cmd[:6])}...\n{proc.stderr[-1500:]}", file=sys.stderr)
    factor = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return wall, maxrss * factor / 1e9, code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per command (median reported)")
    ap.add_argument("--photos", help="folder for the 32 JPEGs (kept; made on first use)")
    ap.add_argument("--make-photos", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.make_photos:
        make_photos(Path(args.make_photos))
        return 0

    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(args.photos) if args.photos else Path(tmp) / "photos"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--make-photos", str(photos)], check=True)
        print(f"photos: {COUNT} x 4000x3000 JPEG in {photos} ({time.perf_counter() - t0:.0f} s to make)")
        one = sorted(photos.iterdir())[0]
        cache = Path(tmp) / "cache"
        env = {**os.environ, "SQUEEZELENS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
        cli = [py, "-m", "squeezelens", "classify", "--offline", "--format", "json", "--model", ARCH]

        first = run([*cli, str(one)], env)  # an empty cache: this run exports the graph
        rows: dict[str, list[tuple[float, float, int]]] = {}
        commands = {
            "seed snippet, looped over the folder": [py, "-c", SEED_LOOP, str(photos)],
            "squeezelens classify FOLDER (cached ONNX)": [*cli, str(photos)],
            "squeezelens classify FOLDER --backend torch": [*cli, "--backend", "torch", str(photos)],
            "squeezelens classify ONE.jpg (cached ONNX)": [*cli, str(one)],
            "squeezelens classify ONE.jpg --backend torch": [*cli, "--backend", "torch", str(one)],
        }
        for _ in range(args.runs):
            for name, cmd in commands.items():
                rows.setdefault(name, []).append(run(cmd, env))
        shutil.rmtree(cache, ignore_errors=True)
        first_folder = run([*cli, str(photos)], env)  # the folder on an empty cache: export + classify

    print(f"machine: {platform.machine()} cpus={os.cpu_count()} python {platform.python_version()}")
    print(f"first CLI run on one photo, empty cache (exports the graph): {first[0]:.2f} s, {first[1]:.2f} GB")
    print(f"first CLI run on the folder, empty cache: {first_folder[0]:.2f} s, {first_folder[1]:.2f} GB")
    med = {k: (statistics.median(w for w, _, _ in v), max(r for _, r, _ in v), max(c for _, _, c in v))
           for k, v in rows.items()}
    seed = med["seed snippet, looped over the folder"][0]
    one_torch = med["squeezelens classify ONE.jpg --backend torch"][0]
    print(f"{'command':<46} {'median s':>9} {'peak GB':>8} {'ratio':>16}")
    for name, (wall, rss, code) in med.items():
        ref, ref_name = (one_torch, "x torch") if "ONE" in name else (seed, "x seed loop")
        print(f"{name:<46} {wall:9.2f} {rss:8.2f} {wall / ref:8.3f} {ref_name}" + ("" if code == 0 else " FAILED"))
    ratio = med["squeezelens classify FOLDER (cached ONNX)"][0] / seed
    rss = med["squeezelens classify FOLDER (cached ONNX)"][1]
    print(f"folder via CLI / seed loop = {ratio:.3f}x (target <= {TARGET_RATIO}x): "
          f"{'MET' if ratio <= TARGET_RATIO else 'NOT MET'}")
    print(f"peak RSS of the CLI on the folder = {rss:.2f} GB (target < {TARGET_RSS_GB} GB): "
          f"{'MET' if rss < TARGET_RSS_GB else 'NOT MET'}; first run with export: {first_folder[1]:.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
