"""Screenshots of the Finetune window during a run and after it, light or dark (run under Xvfb).

Not a user feature: for docs/ and for looking at issue 14's Finetune-window changes (the whole-run
progress bar, the untrained-base banner, the chance-level hint, the charts in the palette).

    python scripts/finetune_screenshot.py DURING.png AFTER.png [--dark] [--mode deep|quick] [--epochs N]
    e.g. /work/shared/tools/shot /tmp/screen.png 240 -- python scripts/finetune_screenshot.py d.png a.png --dark

A made-up 3-class shapes dataset (tests/core/shapes_dataset.py) is trained on a random-init
seresnext26d_32x4d at 32 px (offline: no weights, so the banner shows), deep mode by default. DURING is
grabbed once epoch 4 has ended (quick mode: halfway through the features), AFTER when the run is done.
Dataset, model, settings and cache go to a scratch folder removed at the end.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from screenshot_support import (  # scripts/ is on sys.path when a script runs
    apply_dark_palette,
    exit_now,
    shapes_dataset,
    spin,
)


def _arg(argv: list[str], name: str, default: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv: list[str]) -> int:
    during, after = argv[0], argv[1]
    scratch = Path(tempfile.mkdtemp(prefix="squeezelens-ftshot-"))
    try:
        os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")
        os.environ.setdefault("SQUEEZELENS_CACHE_DIR", str(scratch / "cache"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return _shoot(during, after, scratch, "--dark" in argv, _arg(argv, "--mode", "deep"),
                      int(_arg(argv, "--epochs", "8")))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _shoot(during: str, after: str, scratch: Path, dark: bool, mode: str, epochs: int) -> int:
    from squeezelens.core.finetune import BatchEvent, EpochEvent
    from squeezelens.gui.app import create_app
    from squeezelens.gui.finetune_window import FinetuneWindow
    from squeezelens.gui.settings import AppSettings

    data = shapes_dataset().make_dataset(scratch / "shapes", per_class=16, size=48, seed=3,
                                         classes=("checkerboard", "green_stripes", "red_circles"))
    app = create_app()
    if dark:
        apply_dark_palette(app)
    settings = AppSettings()
    settings.device = "cpu"
    w = FinetuneWindow(settings, "seresnext26d_32x4d")
    w.resize(1240, 800)
    w.show()
    w.form.set_data_folder(str(data))
    w.form.mode.setCurrentIndex(w.form.mode.findData(mode))
    w.form.epochs.setValue(epochs)
    w.form.input_size.setValue(32)
    w.form.output_edit.setText(str(scratch / "shapes-model"))

    spin(app, lambda: w.start_button.isEnabled(), 60)  # the preview has scanned the folder
    seen: list[Any] = []
    shot = [False]

    def on_event(_run_id: int, e: Any) -> None:  # grab in the GUI thread, right after the window showed e
        seen.append(e)
        if shot[0]:
            return
        if (mode == "deep" and isinstance(e, EpochEvent) and e.stats.epoch == min(4, epochs)) or (
                mode == "quick" and isinstance(e, BatchEvent) and e.stage == "features" and 2 * e.batch >= e.batches):
            shot[0] = True
            app.processEvents()
            w.grab().save(during)
            print(f"saved {during}")

    if not w.start():
        print("the run did not start:", w.status.text())
        return 1
    assert w.run is not None
    w.run.progressed.connect(on_event)
    if not spin(app, lambda: w.run is None, 600):
        print("the run did not end in 10 minutes")
        return 1
    spin(app, lambda: False, 1.0)
    w.grab().save(after)
    print(f"saved {after}: {w.status.text()}")
    w.close()
    w.shutdown(5000)
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
