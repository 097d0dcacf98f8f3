"""Offline start: time until the model runs without weights, ours against plain timm.

With no network and an empty Hugging Face cache, `timm.create_model(..., pretrained=True)` retries
the hub for a long time before failing. SqueezeLens probes the endpoint first and falls back to an
untrained model. Both are timed here in fresh processes with an empty cache, in the same run.

    python bench/offline_start.py [--endpoint URL] [--skip-timm]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

OURS = """
import time; t = time.perf_counter()
from squeezelens.core.model_loader import load_model
m = load_model('seresnext26d_32x4d')
print(f'{time.perf_counter() - t:.2f} untrained={m.untrained} reason={m.untrained_reason!r}')
"""
TIMM = """
import time; t = time.perf_counter()
import timm
try:
    timm.create_model('seresnext26d_32x4d', pretrained=True)
    print(f'{time.perf_counter() - t:.2f} loaded')
except Exception as e:
    print(f'{time.perf_counter() - t:.2f} failed: {type(e).__name__}')
"""


def run(code: str, env: dict[str, str], timeout: float) -> str:
    t = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
        return out.stdout.strip() or out.stderr.strip().splitlines()[-1]
    except subprocess.TimeoutExpired:
        return f"{time.perf_counter() - t:.2f} still waiting (timed out)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", help="HF_ENDPOINT to use (default: the real hub, unreachable offline)")
    ap.add_argument("--skip-timm", action="store_true", help="do not time plain timm (it can take a minute)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update(HF_HOME=cache, HF_HUB_CACHE=os.path.join(cache, "hub"))
        if args.endpoint:
            env["HF_ENDPOINT"] = args.endpoint
        ours = run(OURS, env, 120)
        print(f"squeezelens load_model (offline, empty cache): {ours}")
        if not args.skip_timm:
            plain = run(TIMM, env, 180)
            print(f"timm.create_model(pretrained=True) (same):   {plain}")
            try:
                print(f"ratio: {float(plain.split()[0]) / float(ours.split()[0]):.1f}x sooner")
            except ValueError:
                pass


if __name__ == "__main__":
    main()
