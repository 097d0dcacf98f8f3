"""Put one of issue 16's views on screen for a screenshot (run under /work/shared/tools/shot).

    python scripts/trust_screenshots.py unknown|review|versions [--dark] [--out PNG]

With ``--out`` the window grabs itself into PNG once its view is ready, and the app quits.

unknown:  the main window with a small 3-class model saved with a calibrated unknown threshold,
          showing an image of a kind it was not trained on.
review:   the review queue of a generated 3-class dataset with 2 labels flipped (a real ranking,
          random-init seresnext26d_32x4d at 64 px, so it takes a few seconds to appear).
versions: the Finetune window's versions panel after a second version was saved into a folder.
Everything is written to a temporary folder (settings and cache too).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from screenshot_support import apply_dark_palette, shapes_dataset  # scripts/ is on sys.path when a script runs

TMP = Path(tempfile.mkdtemp(prefix="trust-shots-"))
os.environ.setdefault("SQUEEZELENS_CACHE_DIR", str(TMP / "cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["XDG_CONFIG_HOME"] = str(TMP / "config")


def _save(folder: Path, seed: int, labels: list[str], extra: dict) -> Path:
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    torch.manual_seed(seed)
    net = timm.create_model("test_resnet", num_classes=len(labels))
    return save_model(net, folder, labels, extra_config=extra)


def main() -> int:
    view = sys.argv[1]
    from squeezelens.gui.app import create_app

    app = create_app()
    if "--dark" in sys.argv:
        apply_dark_palette(app)
    keep = []
    if view == "unknown":
        from squeezelens.core.unknown import CONFIG_KEY, UnknownCalibration
        from squeezelens.gui.main_window import MainWindow
        from squeezelens.gui.settings import AppSettings
        from squeezelens.gui.worker import InferenceClient

        folder = _save(TMP / "shapes-model", 0, ["blue_squares", "green_stripes", "red_circles"],
                       {CONFIG_KEY: UnknownCalibration(0.62, val_correct=23, val_total=24).to_config()})
        img = TMP / "face.png"
        import numpy as np

        shapes_dataset().make_image("checkerboard", np.random.default_rng(5), 256).save(img)
        settings = AppSettings()
        settings.device = "cpu"
        w = MainWindow(InferenceClient(), settings)
        w.show()
        w.start()
        w.use_model_folder(str(folder))
        w.open_path(str(img))
        keep.append(w)
    elif view == "review":
        from squeezelens.core.review import move_to_class
        from squeezelens.gui.review_window import ReviewWindow

        data = shapes_dataset().make_dataset(TMP / "pets", per_class=12, size=64, seed=4,
                                             classes=("checkerboard", "green_stripes", "red_circles"))
        move_to_class(data / "red_circles" / "red_circles_003.png", "green_stripes")
        move_to_class(data / "checkerboard" / "checkerboard_007.png", "red_circles")
        w = ReviewWindow(str(data), model="seresnext26d_32x4d", input_size=64, device="cpu")
        w.show()
        w.start()
        keep.append(w)
    else:
        from squeezelens.core.model_versions import record_current
        from squeezelens.gui.finetune_window import FinetuneWindow
        from squeezelens.gui.settings import AppSettings

        folder = TMP / "my-model"
        for seed, acc in ((1, 0.875), (2, 0.9375)):
            _save(folder, seed, ["blue_squares", "green_stripes", "red_circles"],
                  {"squeezelens_finetune": {"mode": "quick", "base_model": "seresnext26d_32x4d",
                                            "val_accuracy": acc, "train_images": 96, "val_images": 24},
                   "squeezelens_unknown": UnknownCalibrationDict(acc)})
            record_current(folder)
        w = FinetuneWindow(AppSettings(), "seresnext26d_32x4d")
        w.resize(1400, 860)
        w.show()
        w.versions.show_folder(folder, 1, 2)
        keep.append(w)
    if "--out" in sys.argv:
        out = sys.argv[sys.argv.index("--out") + 1]
        w = keep[0]
        ready = {
            "unknown": lambda: w.current is not None and w.current.prediction is not None,
            "review": lambda: w.result is not None,
        }.get(view, lambda: True)
        from PySide6.QtCore import QTimer

        def poll() -> None:
            if ready():
                QTimer.singleShot(800, lambda: (w.grab().save(out), print("saved", out), app.quit()))
            else:
                QTimer.singleShot(300, poll)

        QTimer.singleShot(500, poll)
    return app.exec()


def UnknownCalibrationDict(acc: float) -> dict:  # noqa: N802 - reads like the dataclass it stands for
    from squeezelens.core.unknown import UnknownCalibration

    return UnknownCalibration(0.55 + acc / 10, val_correct=int(24 * acc), val_total=24).to_config()


if __name__ == "__main__":
    sys.exit(main())
