"""One run of camera mode on a real X display (run by test_camera_x11.py in a fresh process).

    python tests/gui/x11_camera_run.py ORDER SCRATCH      (ORDER: camera-first | stack-first)

The real main window and worker, with a stand-in classifier (its load is held until the order wants
the model) and the real model stack import (torch, torch._dynamo -> triton, timm: core.model_stack).
Synthetic frames (``QVideoFrame(QImage)`` into the page's ``QVideoSink``) are drawn and converted by Qt's
video path, which on X11 loads OpenGL (Mesa's swrast_dri and libLLVM).

- camera-first: camera mode is chosen while nothing of the model stack is loaded, frames flow (if the
  app lets them) and only then the model becomes ready, which starts the catalogue listing (import timm).
  Captures are taken while that import runs.
- stack-first: the model and its catalogue are ready first, then camera mode.

Exit 0 and a line "OK ..." when live results came, captures were saved and the worker stopped; 3 when
Qt's OpenGL stack was found loaded before the model stack's libtorch; a crash or a hang otherwise
(the caller's timeout).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

GL_LIBS = ("libLLVM", "swrast_dri", "libGLX_mesa", "libgallium")


def _maps() -> str:
    try:
        return Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: the order check is skipped
        return ""


class FakeClassifier:
    name = "fake"
    labels = ["cat", "dog", "empty desk"]
    untrained = False
    export_pending = False
    device = "cpu"
    backend = "onnxruntime"

    def wait_for_export(self, timeout: float | None = None) -> bool:
        return True

    def classify(self, inputs: list, top_k: int = 5, **_: Any) -> list:
        from squeezelens.core.predictions import Prediction, TopClass

        time.sleep(0.005)
        return [Prediction("frame", self.name, [TopClass(0, "cat", 0.7), TopClass(1, "dog", 0.2),
                                                TopClass(2, "empty desk", 0.1)]) for _ in inputs]

    @property
    def loaded(self) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(architecture="fake", untrained_reason=None, license=None)


def main(order: str, scratch: Path) -> int:
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from PySide6.QtCore import QCoreApplication

    from squeezelens.gui import worker
    from squeezelens.gui.app import create_app
    from squeezelens.gui.dev_tools import SyntheticSource
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import AppSettings

    app = create_app()
    gate = threading.Event()

    def loader(spec: Any, progress: Any, cancel: threading.Event) -> FakeClassifier:
        gate.wait(120)
        return FakeClassifier()

    settings = AppSettings()
    settings.capture_folder = str(scratch / "dataset")
    settings.camera_classes = ["cat", "dog", "empty desk"]
    importer = getattr(worker, "default_stack_importer", None)  # None: the app before issue 14's fix
    client = worker.InferenceClient(loader, **({"stack_importer": importer} if importer else {}))
    window = MainWindow(client, settings)
    catalogue: list[Any] = []
    client.catalogueReady.connect(lambda entries: catalogue.append(entries))
    window.resize(1000, 700)
    window.show()
    window.start()

    def spin(done: Any, seconds: float, each: Any = None) -> bool:
        end = time.monotonic() + seconds
        while not done() and time.monotonic() < end:
            app.processEvents()
            if each is not None:
                each()
            time.sleep(0.005)
        return bool(done())

    violation: list[str] = []

    def check_order(_frame: Any = None) -> None:
        maps = _maps()
        if not violation and "libtorch_cpu" not in maps and any(lib in maps for lib in GL_LIBS):
            violation.append(next(lib for lib in GL_LIBS if lib in maps))

    if order == "stack-first":
        gate.set()
        if not spin(lambda: bool(catalogue), 180):
            print("FAIL: the catalogue never came", flush=True)
            return 1
    window.set_camera_mode(True)
    source: list[Any] = []

    def start_when_page_ready() -> None:
        page = window.camera_page
        if not source and page is not None and not getattr(page, "waiting_for_stack", False):
            page.controller.frameShown.connect(check_order)
            source.append(SyntheticSource(page.controller.sink, size=(320, 240), fps=30))
            page.start_source(source[0])

    # camera-first: frames flow (when the app lets them) before the model, and so the stack, is there
    spin(lambda: bool(source) and window.camera_page.controller.stats.frames >= 10, 180, start_when_page_ready)
    if not source:
        print("FAIL: camera mode never started", flush=True)
        return 1
    page = window.camera_page
    gate.set()
    page.capture.select("cat")
    last = [0.0]
    taken = [0]

    def capture_now_and_then() -> None:  # captures while the catalogue (import timm) runs, and after it
        check_order()
        if time.monotonic() - last[0] > 0.15 and page.current_frame() is not None:
            last[0] = time.monotonic()
            taken[0] += bool(page.capture.capture_one())

    ok = spin(lambda: bool(catalogue) and page.controller.stats.results >= 5 and taken[0] >= 5, 180,
              capture_now_and_then)
    spin(lambda: not page.capture.writer.busy, 10)
    check_order()
    saved = sorted((scratch / "dataset").rglob("*.jpg"))
    stats = page.controller.stats
    window.close()
    QCoreApplication.processEvents()
    stopped = spin(lambda: not client.running, 60)
    if violation:
        print(f"ORDER: {violation[0]} was loaded before the model stack's libtorch", flush=True)
        return 3
    if not ok or not saved or not stopped:
        print(f"FAIL: results={stats.results} catalogue={bool(catalogue)} captures={len(saved)} "
              f"worker stopped={stopped}", flush=True)
        return 1
    print(f"OK {order}: {stats.frames} frames, {stats.results} results, {len(saved)} captures", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
