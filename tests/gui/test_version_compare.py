"""The Finetune window's versions panel: old and new accuracy side by side, the list, rolling back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from squeezelens.core.model_versions import read_index, record_current, version_dir
from squeezelens.core.saved_model import save_model


def _save_version(folder: Path, seed: int, acc: float) -> int:
    import timm

    torch.manual_seed(seed)
    net = timm.create_model("test_resnet", num_classes=3)
    extra = {"squeezelens_finetune": {"mode": "quick", "base_model": "test_resnet", "val_accuracy": acc,
                                      "train_images": 24, "val_images": 6}}
    save_model(net, folder, ["ant", "bee", "cow"], extra_config=extra)
    return record_current(folder).number


@pytest.fixture()
def two_versions(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    assert _save_version(folder, 1, 0.8) == 1
    assert _save_version(folder, 2, 0.95) == 2
    return folder


def test_side_by_side_and_go_back(qtbot: Any, two_versions: Path) -> None:
    from squeezelens.gui.version_compare import VersionPanel

    panel = VersionPanel()
    qtbot.addWidget(panel)
    panel.show_folder(two_versions, previous=1, new=2)
    panel.show()
    text = panel.compare.text()
    assert "Previous (v1)" in text and "80.0%" in text and "New (v2, current)" in text and "95.0%" in text
    assert "+15.0 points" in text
    assert panel.back_button.isVisible() and panel.back_button.text() == "Go back to v1"
    assert panel.table.rowCount() == 2 and panel.table.item(0, 0).text() == "v2  (current)"
    assert panel.table.item(1, 2).text() == "80.0%"

    with qtbot.waitSignal(panel.rolledBack, timeout=10_000) as signal:
        panel.back_button.click()
    assert signal.args == [str(two_versions), 1]
    assert read_index(two_versions).current == 1
    assert (two_versions / "model.safetensors").read_bytes() == (version_dir(two_versions, 1)
                                                                  / "model.safetensors").read_bytes()
    assert panel.table.item(1, 0).text() == "v1  (current)"  # the list was refreshed
    assert "v1 is current again" in panel.message.text()

    qtbot.waitUntil(panel.current_button.isEnabled, timeout=10_000)  # the task's on_finished re-enables it
    panel.table.selectRow(0)  # v2 again, from the list
    with qtbot.waitSignal(panel.rolledBack, timeout=10_000):
        panel.current_button.click()
    assert read_index(two_versions).current == 2
    assert panel.wait(10_000)
    qtbot.waitUntil(panel.current_button.isEnabled, timeout=10_000)  # on_finished ran before the end


def test_replace_question_names_the_current_accuracy(two_versions: Path) -> None:
    from squeezelens.gui.version_compare import replace_question

    text = replace_question(two_versions)
    assert "It holds v2, validation accuracy 95.0%" in text and "side by side" in text


def test_the_finetune_window_shows_the_panel_after_a_run(qtbot: Any, two_versions: Path) -> None:
    from dataclasses import dataclass

    from squeezelens.gui.finetune_window import FinetuneWindow
    from squeezelens.gui.settings import AppSettings

    w = FinetuneWindow(AppSettings(), "seresnext26d_32x4d")
    qtbot.addWidget(w)
    w.show()
    assert not w.versions.isVisible()

    @dataclass
    class Result:  # what show_folder reads of a FinetuneResult
        output_dir: Path
        previous_version: int
        version: int

    w.versions.show_folder(Result(two_versions, 1, 2).output_dir, 1, 2)
    assert w.versions.isVisible() and "95.0%" in w.versions.compare.text()
    assert w.shutdown(5000)


def test_staged_version_becomes_current_only_when_kept(qtbot: Any, tmp_path: Path) -> None:
    import timm

    from squeezelens.core.model_versions import save_version
    from squeezelens.gui.version_compare import VersionPanel

    folder = tmp_path / "model"
    assert _save_version(folder, 1, 0.875) == 1
    torch.manual_seed(2)
    extra = {"squeezelens_finetune": {"mode": "quick", "val_accuracy": 0.938}}
    assert save_version(timm.create_model("test_resnet", num_classes=3), folder, ["ant", "bee", "cow"], extra,
                        stage_only=True) == (1, 2)
    panel = VersionPanel()
    qtbot.addWidget(panel)
    panel.show_folder(folder, previous=1, new=2, staged=True)
    panel.show()
    assert panel.message.text() == "Keep new (v2, 93.8%) or keep current (v1, 87.5%)?"
    assert "Current (v1)" in panel.compare.text() and "New (v2, not yet current)" in panel.compare.text()
    assert read_index(folder).current == 1  # shown side by side while v1 is still current
    panel.back_button.click()  # keep current: nothing changes
    assert read_index(folder).current == 1 and "v1 stays current" in panel.message.text()

    panel.show_folder(folder, previous=1, new=2, staged=True)
    with qtbot.waitSignal(panel.rolledBack, timeout=10_000) as signal:
        panel.keep_button.click()
    assert signal.args == [str(folder), 2] and read_index(folder).current == 2
    assert (folder / "model.safetensors").read_bytes() == (version_dir(folder, 2) / "model.safetensors").read_bytes()
