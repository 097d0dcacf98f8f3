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
import time
from pathlib import Path


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
    from PySide6.QtCore import Qt

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
    if dark:  # Xvfb has no desktop theme to follow: Fusion with a dark palette, as a dark desktop gives
        from PySide6.QtGui import QColor, QPalette

        app.setStyle("Fusion")
        app.styleHints().setColorScheme(Qt.ColorScheme.Dark)
        pal = QPalette()
        R = QPalette.ColorRole
        for role, colour in ((R.Window, "#2b2b2b"), (R.WindowText, "#e6e6e6"), (R.Base, "#1f1f1f"),
                             (R.AlternateBase, "#353535"), (R.Text, "#e6e6e6"), (R.Button, "#353535"),
                             (R.ButtonText, "#e6e6e6"), (R.Highlight, "#3d8ee6"), (R.HighlightedText, "#ffffff"),
                             (R.Mid, "#5a5a5a"), (R.PlaceholderText, "#a0a0a0"), (R.ToolTipBase, "#353535"),
                             (R.ToolTipText, "#e6e6e6")):
            pal.setColor(role, QColor(colour))
        app.setPalette(pal)
    client = InferenceClient()
    window = MainWindow(client, AppSettings())
    window.resize(1100, 700)
    window.show()
    window.start([str(photos)] if batch else [str(photos / "cat-on-the-garden-wall-1.jpg")])

    def spin(done: object, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not done() and time.monotonic() < end:  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.01)

    if batch:
        spin(lambda: window.batches and not next(iter(window.batches.values())).running, 180)
        target = next(iter(window.batches.values()))
    else:
        spin(lambda: window.current is not None and window.current.prediction is not None, 180)
        target = window
    spin(lambda: False, 1.5)
    target.grab().save(out)
    print(f"saved {out}")
    window.close()
    spin(lambda: not client.running, 60)
    return 0


def _exit(code: int) -> None:
    """As ``app.run``: a worker still inside ``import timm`` (slow on a busy machine) cannot be stopped, and
    letting Python exit would destroy its running QThread (abort): end the process, scratch already removed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main(sys.argv[1:]))
