"""Screenshot of camera mode fed by synthetic frames (there is no camera on the build machines).

Builds the real main window with the untrained default model, enters camera mode, runs it on a
``SyntheticSource`` (a photo from skimage.data when installed, else the moving test pattern) for a
few seconds, and saves ``window.grab()``. Not a user feature: the app itself only opens cameras.

Run:  HF_HUB_OFFLINE=1 QT_QPA_PLATFORM=offscreen python scripts/camera_screenshot.py OUT.png
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main(out: str) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scratch = Path(tempfile.mkdtemp(prefix="squeezelens-shot-"))
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
    window = MainWindow(InferenceClient(), settings)
    window.resize(1200, 760)
    window.show()
    window.start()
    deadline = time.monotonic() + 120
    while window.model_state is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    window.set_camera_mode(True)
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
    end = time.monotonic() + 60
    while page.controller.stats.results < 5 and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    end = time.monotonic() + 3
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    page.capture.refresh()
    page.capture.select("cat")
    app.processEvents()
    window.grab().save(out)
    print(f"saved {out}: {page.controller.stats.frames} frames, {page.controller.stats.results} results, "
          f"overlay {page.view.overlay!r}")
    window.close()
    QCoreApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "camera-synthetic.png"))
