"""Screenshot of the main window (or the batch window) with a photo classified, light or dark.

Not a user feature: for docs/ and for looking at visible changes under Xvfb.

Run:  xvfb-run -a env QT_QPA_PLATFORM=xcb HF_HUB_OFFLINE=1 python scripts/window_screenshot.py OUT.png [--dark]
      [--batch]     (QT_SCALE_FACTOR=2 for the 2x look)
The photo (skimage's cat, else a made-up gradient) and the settings go to a scratch folder removed at the end.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from screenshot_support import apply_dark_palette, exit_now, spin  # scripts/ is on sys.path when a script runs


def main(argv: list[str]) -> int:
    out = argv[0]
    scratch = Path(tempfile.mkdtemp(prefix="squeezelens-wshot-"))
    try:
        os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return _shoot(out, scratch, dark="--dark" in argv, batch="--batch" in argv)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _shoot(out: str, scratch: Path, dark: bool, batch: bool) -> int:
    import numpy as np
    from PIL import Image

    from squeezelens.gui.app import create_app
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import AppSettings
    from squeezelens.gui.worker import InferenceClient

    try:
        from skimage import data

        arr = data.chelsea()
    except ImportError:
        arr = np.linspace(0, 255, 300 * 400 * 3).reshape(300, 400, 3).astype(np.uint8)
    photos = scratch / "photos"
    photos.mkdir()
    for i in range(6 if batch else 1):
        Image.fromarray(arr).save(photos / f"cat-on-the-garden-wall-{i + 1}.jpg")
    (photos / "notes-not-an-image.jpg").write_bytes(b"not a jpeg") if batch else None
    app = create_app()
    if dark:
        apply_dark_palette(app)
    client = InferenceClient()
    window = MainWindow(client, AppSettings())
    window.resize(1100, 700)
    window.show()
    window.start([str(photos)] if batch else [str(photos / "cat-on-the-garden-wall-1.jpg")])

    if batch:
        spin(app, lambda: window.batches and not next(iter(window.batches.values())).running, 180)
        target = next(iter(window.batches.values()))
    else:
        spin(app, lambda: window.current is not None and window.current.prediction is not None, 180)
        target = window
    spin(app, lambda: False, 1.5)
    target.grab().save(out)
    print(f"saved {out}")
    window.close()
    spin(app, lambda: not client.running, 60)
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
