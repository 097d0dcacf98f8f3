"""The inference worker stops only after what it started: the catalogue listing thread, and core's
background ONNX export of its model (so nothing of it outlives the worker unnoticed at exit)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from squeezelens.core import catalogue
from squeezelens.gui.worker import InferenceClient, ModelSpec

from .conftest import fixed_loader


def catalogue_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "squeezelens-catalogue"]


def test_stopping_waits_for_the_catalogue_listing(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_list_variants(*args: Any, **kwargs: Any) -> Any:  # e.g. still importing timm
        started.set()
        release.wait(20)
        return []

    monkeypatch.setattr(catalogue, "list_variants", slow_list_variants)
    client = InferenceClient(lambda spec, progress, cancel: None)
    answers: list[Any] = []
    client.catalogueReady.connect(answers.append)
    client.request_catalogue()
    assert started.wait(10)
    [listing] = catalogue_threads()
    assert not client.shutdown(300)  # the worker waits for its listing: it counts as running (app.run sees it)
    assert client.running and listing.is_alive()
    release.set()
    qtbot.waitUntil(lambda: not client.running, timeout=20_000)
    assert not listing.is_alive()
    qtbot.wait(50)
    assert answers == []  # the window has closed: nobody waits for the list


class Exporting:
    """A classifier whose ONNX graph is still being exported in the background until ``done`` is set."""

    def __init__(self, clf: Any) -> None:
        self._clf = clf
        self.done = threading.Event()
        self.waited = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clf, name)

    @property
    def export_pending(self) -> bool:
        return not self.done.is_set()

    def wait_for_export(self, timeout: float | None = None) -> bool:
        self.waited = True
        return self.done.wait(timeout)


def test_stopping_waits_for_the_models_background_export(qtbot: Any, classifier: Any) -> None:
    clf = Exporting(classifier)
    client = InferenceClient(fixed_loader(clf))
    ready: list[Any] = []
    client.modelReady.connect(ready.append)
    client.load_model(ModelSpec())
    qtbot.waitUntil(lambda: bool(ready), timeout=20_000)
    assert not client.shutdown(300)
    assert client.running and clf.waited
    clf.done.set()
    qtbot.waitUntil(lambda: not client.running, timeout=20_000)
