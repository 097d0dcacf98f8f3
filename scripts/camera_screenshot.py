"""Screenshot of camera mode fed by synthetic frames (there is no camera on the build machines).

Builds the real main window with the untrained default model, enters camera mode, runs it on a
``SyntheticSource`` (a photo from skimage.data when installed, else the moving test pattern) for a
few seconds, and saves ``window.grab()``. Not a user feature: the app itself only opens cameras.

Run:  HF_HUB_OFFLINE=1 QT_QPA_PLATFORM=offscreen python scripts/camera_screenshot.py OUT.png
      (or on X11: xvfb-run -a env QT_QPA_PLATFORM=xcb HF_HUB_OFFLINE=1 python scripts/camera_screenshot.py OUT.png)

Its scratch folder (settings, the dataset the captures go to) is removed at the end, whatever happens.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from screenshot_support import exit_now, spin  # scripts/ is on sys.path when a script runs


def main(out: str) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scratch = Path(tempfile.mkdtemp(prefix="squeezelens-shot-"))
    try:
        return _shoot(out, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _shoot(out: str, scratch: Path) -> int:
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")  # never the user's own settings

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtGui import QImage

    from squeezelens.gui.app import create_app
    from squeezelens.gui.dev_tools import SyntheticSource
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import AppSettings
    from squeezelens.gui.worker import InferenceClient

    app = create_app()
    settings = AppSettings()
    dataset = scratch / "dataset"
    settings.capture_folder = str(dataset)
    settings.camera_classes = ["cat", "dog", "empty desk"]
    client = InferenceClient()
    window = MainWindow(client, settings)
    window.resize(1200, 760)
    window.show()
    window.start()
    spin(app, lambda: window.model_state is not None, 120)
    window.set_camera_mode(True)  # waits for the model stack first ("Starting camera...")
    if not spin(app, lambda: window.camera_page is not None and not window.camera_page.waiting_for_stack, 120):
        print("camera mode never started", file=sys.stderr)
        return 1
    page = window.camera_page
    images = None
    try:
        from skimage import data

        arr = data.chelsea()  # 300x451 RGB
        img = QImage(arr.tobytes(), arr.shape[1], arr.shape[0], arr.shape[1] * 3, QImage.Format.Format_RGB888)
        images = [img.scaled(640, 480).copy()]
    except ImportError:
        pass
    page.start_source(SyntheticSource(page.controller.sink, size=(640, 480), fps=30, images=images))
    page.capture.select("cat")
    for _ in range(3):
        page.capture.capture_one()
    # the worker may still be busy with the model picker's catalogue (seconds): wait for live results
    spin(app, lambda: page.controller.stats.results >= 5, 60)
    spin(app, lambda: False, 3)
    page.capture.refresh()
    page.capture.select("cat")
    app.processEvents()
    window.grab().save(out)
    print(f"saved {out}: {page.controller.stats.frames} frames, {page.controller.stats.results} results, "
          f"overlay {page.view.overlay!r}")
    window.close()
    QCoreApplication.processEvents()
    # as app.run: the catalogue listing may still be inside `import timm`, which cannot be interrupted
    if not spin(app, lambda: not client.running, 60):
        print("the worker did not stop within 60 s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1] if len(sys.argv) > 1 else "camera-synthetic.png"))
