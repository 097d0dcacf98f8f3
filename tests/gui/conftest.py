"""GUI test fixtures: isolated settings, a shared model, windows that are always shut down, and a
check that fails any test which leaves a Qt thread running (napari's ``_dangling_qthreads``)."""

from __future__ import annotations

import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QThread, QThreadPool

ARCH = "seresnext26d_32x4d"


@pytest.fixture(autouse=True)
def _dangling_qthreads(monkeypatch: pytest.MonkeyPatch, qtbot: Any) -> Iterator[None]:
    """Fail the test if a QThread it started is still running at its end (with where it was started)."""
    started: weakref.WeakKeyDictionary[QThread, str] = weakref.WeakKeyDictionary()
    base_start = QThread.start

    def start(self: QThread, *args: Any) -> None:
        started[self] = "".join(traceback.format_stack(limit=6)[:-1])
        base_start(self, *args)

    monkeypatch.setattr(QThread, "start", start)
    yield
    dangling = []
    for thread, where in list(started.items()):
        try:
            if thread.isRunning():
                dangling.append(where)
        except RuntimeError:  # the C++ object is already gone: not running
            pass
    if dangling:
        raise AssertionError(f"{len(dangling)} QThread(s) still running after the test; started at:\n"
                             + "\n".join(dangling))
    if QThreadPool.globalInstance().activeThreadCount():  # nothing of ours should use it; guard anyway
        raise AssertionError("the global QThreadPool still has work running after the test")


@pytest.fixture(autouse=True)
def _private_settings(tmp_path: Path) -> None:
    """QSettings (INI, user scope) in this test's temp folder: never the developer's own settings."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))


@pytest.fixture(scope="session")
def classifier(confident_weights: Path) -> Any:
    """One real seresnext26d_32x4d (seed-0 weights with a confident head) shared by the GUI tests."""
    from squeezelens.core.engine import Classifier

    return Classifier.load(ARCH, weights=confident_weights, device="cpu", backend="torch")


@pytest.fixture(scope="session")
def onnx_classifier(confident_weights: Path) -> Any:
    """The same model on ONNX Runtime, the app's default backend on a CPU (exported once per session,
    into the private cache of the test that first asks for it)."""
    from squeezelens.core.engine import Classifier

    clf = Classifier.load(ARCH, weights=confident_weights, device="cpu", backend="onnxruntime")
    assert clf.backend == "onnxruntime", clf.backend_note
    return clf


@pytest.fixture(scope="session")
def untrained_classifier() -> Any:
    from squeezelens.core.engine import Classifier

    return Classifier.load(ARCH, device="cpu", backend="torch", allow_download=False)


class SlowClassifier:
    """A classifier that takes at least ``delay`` seconds per input: time for tests to act mid-work."""

    def __init__(self, clf: Any, delay: float) -> None:
        self._clf = clf
        self.delay = delay
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clf, name)

    def classify(self, inputs: Any, *args: Any, on_result: Any = None, **kwargs: Any) -> Any:
        self.calls += 1
        if on_result is None:
            time.sleep(self.delay * len(inputs))
            return self._clf.classify(inputs, *args, **kwargs)

        def slow(i: int, pred: Any) -> None:
            time.sleep(self.delay)
            on_result(i, pred)

        return self._clf.classify(inputs, *args, on_result=slow, **kwargs)


class Renamed:
    """A classifier that answers under another model name (to tell two loaded models apart)."""

    def __init__(self, clf: Any, name: str) -> None:
        self._clf = clf
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._clf, attr)

    def classify(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        preds = self._clf.classify(inputs, *args, **kwargs)
        for p in preds:
            p.model = self.name
        return preds


def fixed_loader(clf: Any) -> Callable[..., Any]:
    """A worker loader that hands out an already loaded classifier (no model build per test)."""

    def load(spec: Any, progress: Any, cancel: threading.Event) -> Any:
        return clf

    return load


@pytest.fixture
def make_window(qtbot: Any, classifier: Any) -> Iterator[Callable[..., Any]]:
    """``make_window(loader=None, images=None)``: a shown, started MainWindow, closed at teardown."""
    from squeezelens.gui.app import create_app
    from squeezelens.gui.main_window import MainWindow
    from squeezelens.gui.settings import AppSettings
    from squeezelens.gui.worker import InferenceClient

    create_app()  # names, icon: what the real start-up sets on pytest-qt's QApplication
    windows = []

    def make(loader: Callable[..., Any] | None = None, images: list[str] | None = None, start: bool = True) -> Any:
        client = InferenceClient(loader or fixed_loader(classifier))
        window = MainWindow(client, AppSettings())
        windows.append(window)
        window.show()
        if start:
            window.start(images)
        return window

    yield make
    from squeezelens.gui.tasks import running_tasks

    for window in windows:
        window.close()
        # the private pool (display decoding) and the copies must be idle too, not only the worker
        assert window.loader._pool.activeThreadCount() == 0, "display decoding still running after close"
        assert not [t for t in running_tasks() if t.name == "copy-to-class-folders"], \
            "a copy to class folders still running after close"


@pytest.fixture(scope="session")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 24 small made-up photos (JPEG and PNG) and one broken file in the middle."""
    rng = np.random.default_rng(1)
    d = tmp_path_factory.mktemp("many")
    for i in range(24):
        arr = rng.integers(0, 256, (48 + i, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(d / f"img{i:02d}.{'jpg' if i % 2 else 'png'}")
    (d / "img12_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d
