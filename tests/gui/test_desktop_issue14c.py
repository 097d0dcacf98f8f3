"""Issue 14, second round: the camera page without a camera, the batch window's thumbnails and per-image
CSV, the drop highlight, toolbar icons and Tab order, elided file names, secondary-text contrast and the
model picker's facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

WAIT_MS = 30_000


def test_camera_page_without_a_camera(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No camera: Capture and Hold to record are disabled with the reason as tooltip (before: enabled, and
    pressing them talked about the dataset folder); the no-camera message is said once (before: also
    "No live video." in the results panel; capture messages also repeated in the notice bar)."""
    from PySide6.QtWidgets import QLabel

    from squeezelens.gui import camera_source as cs
    from squeezelens.gui.camera_page import NO_VIDEO_TO_CAPTURE

    monkeypatch.setattr(cs, "list_cameras", lambda: [])
    window = make_window()
    qtbot.waitUntil(lambda: window.model_state is not None, timeout=WAIT_MS)
    window.act_camera.trigger()
    page = window.camera_page
    qtbot.waitUntil(lambda: page.view.message == cs.NO_CAMERA, timeout=WAIT_MS)
    cap = page.capture
    for button in (cap.capture, cap.record):
        assert not button.isEnabled() and NO_VIDEO_TO_CAPTURE in button.toolTip()
    shown = [lbl.text() for lbl in window.findChildren(QLabel) if lbl.isVisible()]
    assert not any("no live video" in t.lower() or "no camera" in t.lower() for t in shown), shown
    cap.set_dataset("")
    assert not cap.capture_one()
    assert "dataset folder" in cap.status.text() and "dataset folder" not in window.notice.text()


def test_removing_a_class_keeps_its_files(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A class can be removed from the list, after a question that says nothing is deleted; its folder and
    images stay, it does not come back from the folder scan, and adding it again brings it back."""
    from PySide6.QtWidgets import QMessageBox

    from squeezelens.gui.capture_panel import CapturePanel
    from squeezelens.gui.settings import AppSettings

    dataset = tmp_path / "dataset"
    (dataset / "apple").mkdir(parents=True)
    (dataset / "apple" / "a.jpg").write_bytes(b"x")
    settings = AppSettings()
    settings.capture_folder = str(dataset)
    panel = CapturePanel(settings, lambda: None)
    qtbot.addWidget(panel)
    panel.add("pear")
    assert panel.class_names() == ["pear", "apple"]
    qtbot.waitUntil(lambda: not panel.counting, timeout=WAIT_MS)
    panel.select("apple")
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes)
    panel.remove_class.click()
    assert asked and "stay on disk" in asked[0] and "1 image " in asked[0]
    assert panel.class_names() == ["pear"] and (dataset / "apple" / "a.jpg").is_file()
    assert "left on disk" in panel.status.text()
    again = CapturePanel(settings, lambda: None)
    qtbot.addWidget(again)
    assert again.class_names() == ["pear"]  # remembered
    again.shutdown(5000)
    panel.add("apple")
    assert panel.class_names() == ["pear", "apple"]
    panel.shutdown(5000)
