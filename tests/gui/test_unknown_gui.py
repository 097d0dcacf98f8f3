"""The unknown verdict in the window: results panel, threshold slider, batch window filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from squeezelens.core.predictions import Prediction, TopClass
from squeezelens.core.saved_model import save_model
from squeezelens.core.unknown import CONFIG_KEY, UnknownCalibration

from .conftest import fixed_loader

WAIT_MS = 20_000


@pytest.fixture()
def calibrated(tmp_path: Path) -> Any:
    """A tiny 3-class model saved with a calibrated threshold of 1.0 (so every image is unknown)."""
    import timm

    from squeezelens.core.engine import Classifier

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=3)
    extra = {CONFIG_KEY: UnknownCalibration(1.0, val_correct=9, val_total=9).to_config()}
    folder = save_model(net, tmp_path / "m", ["ant", "bee", "cow"], extra_config=extra)
    clf = Classifier.load(str(folder), device="cpu", backend="torch")
    yield clf
    clf.close()


def test_verdict_and_slider(qtbot: Any, make_window: Any, calibrated: Any, photo_dir: Path) -> None:
    window = make_window(loader=fixed_loader(calibrated))
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    control = window.unknown_control
    assert control.enabled_box.isChecked() and control.slider.value() == 100
    assert control.reset_button.isEnabled()

    window.open_path(str(photo_dir / "coffee.png"))
    qtbot.waitUntil(lambda: window.current.prediction is not None, timeout=WAIT_MS)
    pred = window.current.prediction
    assert pred.unknown is True
    verdict = window.results.verdict
    assert verdict.isVisible()
    assert verdict.text() == (f"Unknown \u2014 none of your classes (closest: {pred.top[0].label}, "
                              f"{pred.top[0].prob:.0%})")
    assert window.results.bars.isVisible()  # the closest classes stay visible under the verdict
    assert window.history.item(0).text().startswith("Unknown\n(")  # the history strip says it too

    control.enabled_box.setChecked(False)  # "off": the image is answered again, without a verdict
    qtbot.waitUntil(lambda: window.current.prediction is not None and window.current.prediction.unknown is None,
                    timeout=WAIT_MS)
    assert not verdict.isVisible() and control.value_label.text() == "off"

    control.enabled_box.setChecked(True)
    control.slider.setValue(0)  # a keyboard-sized step applies at once: nothing is below 0%
    qtbot.waitUntil(lambda: window.current.prediction is not None and window.current.prediction.unknown is False,
                    timeout=WAIT_MS)
    assert calibrated.unknown_threshold == 0.0
    name = window._model_name or "seresnext26d_32x4d"
    assert window.settings.unknown_threshold_for(name) == 0.0  # kept per model, for the next start

    control.reset_button.click()  # the model's own value again
    qtbot.waitUntil(lambda: window.current.prediction is not None and window.current.prediction.unknown is True,
                    timeout=WAIT_MS)
    assert control.slider.value() == 100
    assert window.settings.unknown_threshold_for(name) is None  # reset forgets the saved value


def test_slider_setting_is_kept_per_model(qtbot: Any, make_window: Any, calibrated: Any) -> None:
    from squeezelens.gui.settings import AppSettings

    settings = AppSettings()
    settings.set_unknown_threshold_for("/models/birds", 0.3)
    settings.set_unknown_threshold_for("seresnext26d_32x4d", "off")
    again = AppSettings()  # a new start reads them back
    assert again.unknown_threshold_for("/models/birds") == 0.3
    assert again.unknown_threshold_for("seresnext26d_32x4d") == "off"
    assert again.unknown_threshold_for("/models/other") is None
    again.set_unknown_threshold_for("/models/birds", None)
    assert AppSettings().unknown_threshold_for("/models/birds") is None

    # a window whose model has a saved setting applies it when the model is ready
    window = make_window(loader=fixed_loader(calibrated))
    name = window._model_name or "seresnext26d_32x4d"
    window.settings.set_unknown_threshold_for(name, 0.25)
    window.load_model(window._model_name or None)
    qtbot.waitUntil(lambda: window.unknown_control.slider.value() == 25, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: calibrated.unknown_threshold == 0.25, timeout=WAIT_MS)


def test_imagenet_model_has_the_verdict_off(qtbot: Any, make_window: Any) -> None:
    window = make_window()
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    control = window.unknown_control
    assert not control.enabled_box.isChecked() and not control.slider.isEnabled()
    assert not control.reset_button.isEnabled()


def _pred(name: str, unknown: bool | None, ok: bool = True) -> Prediction:
    if not ok:
        return Prediction(name, "m", error=f"{name}: broken", error_reason="broken")
    return Prediction(name, "m", [TopClass(0, "ant", 0.3)], unknown=unknown)


def test_batch_window_filters_on_the_verdict(qtbot: Any) -> None:
    from squeezelens.gui.batch_window import BatchWindow

    w = BatchWindow(1)
    qtbot.addWidget(w)
    w.start(["/d/a.png", "/d/b.png", "/d/c.png", "/d/d.png"])
    for i, p in enumerate([_pred("/d/a.png", True), _pred("/d/b.png", False), _pred("/d/c.png", None, ok=False)]):
        w.add(i, p)
    proxy = w.proxy

    def shown() -> list[str]:
        return [proxy.index(r, 0).data() for r in range(proxy.rowCount())]

    assert shown() == ["a.png", "b.png", "c.png", "d.png"]
    assert proxy.index(0, 1).data() == "Unknown (closest: ant)"
    w.filter.setCurrentIndex(1)
    assert shown() == ["a.png"]
    w.filter.setCurrentIndex(2)
    assert shown() == ["b.png"]
    w.filter.setCurrentIndex(0)
    assert len(shown()) == 4
    w.finish(False)
