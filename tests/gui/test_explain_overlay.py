"""The "Why?" toggle (issue 17): a heatmap from the worker drawn over the image, for the top-1 or a clicked bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, Qt

WAIT_MS = 30_000


def _wait_prediction(qtbot: Any, window: Any) -> Any:
    qtbot.waitUntil(lambda: window.current is not None and window.current.prediction is not None, timeout=WAIT_MS)
    return window.current.prediction


def test_why_overlays_the_top1_heatmap_and_a_clicked_bar(qtbot: Any, make_window: Any, classifier: Any,
                                                         photo_dir: Path) -> None:
    from squeezelens.gui.explain_overlay import compute_heat

    window = make_window()
    qtbot.waitUntil(lambda: window.client.model is not None, timeout=WAIT_MS)
    photo = str(photo_dir / "chelsea.jpg")
    window.open_path(photo)
    pred = _wait_prediction(qtbot, window)
    ex = window.explainer
    assert window.view._overlay is None
    ex.action.trigger()  # Why? on
    qtbot.waitUntil(lambda: ex._heat is not None, timeout=WAIT_MS)
    assert ex._heat.class_index == pred.top[0].index
    assert ex.caption.text() == f"why: {pred.top[0].label}"
    overlay = window.view._overlay
    assert overlay is not None and not overlay.isNull()
    want = compute_heat(classifier, photo, pred.top[0].index).heat
    assert np.allclose(ex._heat.heat, want, atol=1e-5)
    assert (overlay.width(), overlay.height()) == (want.shape[1], want.shape[0])
    # the view's image and the heatmap have the same aspect ratio (both upright)
    img = window.view.image
    assert abs(img.width() / img.height() - want.shape[1] / want.shape[0]) < 0.01

    # opacity: re-blended at once, no new request, and remembered
    req = ex._req
    before = overlay.pixelColor(overlay.width() // 2, overlay.height() // 2).alpha()
    ex.slider.setValue(20)
    after = window.view._overlay.pixelColor(overlay.width() // 2, overlay.height() // 2).alpha()
    assert ex._req == req and after <= before
    assert window.settings.explain_opacity == 20

    # a click on the second bar explains that class
    bars = window.results.bars
    qtbot.mouseClick(bars, Qt.MouseButton.LeftButton, pos=QPoint(10, bars._row_height() + 8))
    qtbot.waitUntil(lambda: ex._heat is not None and ex._heat.class_index == pred.top[1].index, timeout=WAIT_MS)
    assert ex.caption.text() == f"why: {pred.top[1].label}"

    ex.action.trigger()  # off
    assert window.view._overlay is None
    assert window.settings.explain_on is False


def test_export_action_writes_the_loaded_model_off_the_gui_thread(qtbot: Any, make_window: Any, tmp_path: Path,
                                                                  monkeypatch: Any) -> None:
    import timm
    import torch
    from PySide6.QtWidgets import QFileDialog

    from squeezelens.core.engine import Classifier
    from squeezelens.core.model_export import read_export_metadata
    from squeezelens.core.saved_model import save_model

    from .conftest import fixed_loader

    torch.manual_seed(2)
    folder = save_model(timm.create_model("test_resnet", num_classes=3), tmp_path / "mine", ["a", "b", "c"])
    clf = Classifier.load(str(folder), backend="torch")
    window = make_window(loader=fixed_loader(clf))
    qtbot.waitUntil(lambda: window.client.model is not None, timeout=WAIT_MS)
    out = tmp_path / "mine.onnx"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "ONNX model (*.onnx)"))
    window.act_export.trigger()
    assert "Exporting" in window.notice.text()  # the trigger returned at once; the task runs meanwhile
    # the notice bar (issue 14) puts a kind icon before the text: look for the words, not the start
    qtbot.waitUntil(lambda: any(w in window.notice.text() for w in ("Exported", "Export failed")), timeout=WAIT_MS)
    assert "Exported" in window.notice.text() and "export FILE --check" in window.notice.text(), window.notice.text()
    assert read_export_metadata(out)["squeezelens_class_names"] == ["a", "b", "c"]
