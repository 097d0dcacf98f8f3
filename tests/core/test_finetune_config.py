"""FinetuneConfig.validate(): every check of the settings in one place, before any work starts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from squeezelens.core.errors import OutputError, UsageError
from squeezelens.core.finetune import FinetuneConfig, check_output_dir, finetune


@pytest.fixture
def config(tmp_path: Path) -> FinetuneConfig:
    (tmp_path / "data").mkdir()
    return FinetuneConfig(tmp_path / "data", tmp_path / "model", device="cpu", allow_download=False)


def test_a_good_config_passes(config: FinetuneConfig) -> None:
    config.validate()
    for mode in ("quick", "deep"):
        replace(config, mode=mode, epochs=1, batch_size=1, val_split=0.5, input_size=32, lr=1e-4,  # type: ignore[arg-type]
                weight_decay=0.0, label_smoothing=0.0, patience=1, num_workers=0).validate()
    replace(config, input_size=1024, val_split=0.01).validate()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "slow"}, "unknown mode 'slow'; choose quick or deep"),
        ({"device": "tpu"}, "unknown device 'tpu'; choose one of auto, cpu, cuda, mps"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": 0}, "batch size must be at least 1"),
        ({"val_split": 0.0}, "validation split must be between 0 and 1, e.g. 0.2"),
        ({"val_split": 1.0}, "validation split must be between 0 and 1, e.g. 0.2"),
        ({"val_split": float("nan")}, "validation split must be between 0 and 1, e.g. 0.2"),
        ({"input_size": 31}, "input size must be between 32 and 1024 pixels, not 31"),
        ({"input_size": 1025}, "input size must be between 32 and 1024 pixels, not 1025"),
        ({"lr": 0.0}, "learning rate must be positive"),
        ({"lr": -1e-3}, "learning rate must be positive"),
        ({"weight_decay": -0.1}, "weight decay must be 0 or more"),
        ({"label_smoothing": 1.0}, "label smoothing must be at least 0 and below 1"),
        ({"label_smoothing": -0.1}, "label smoothing must be at least 0 and below 1"),
        ({"patience": 0}, "patience must be at least 1"),
        ({"num_workers": -1}, "workers must be 0 or more"),
    ],
)
def test_each_bad_setting_is_a_usage_error(config: FinetuneConfig, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        replace(config, **changes).validate()
    assert str(info.value) == message and info.value.path is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "--epochs must be at least 1"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"val_split": 1.5}, "--val-split must be between 0 and 1, e.g. 0.2"),
        ({"input_size": 16}, "--input-size must be between 32 and 1024 pixels, not 16"),
        ({"num_workers": -2}, "--workers must be 0 or more"),
    ],
)
def test_a_caller_names_the_settings_its_own_way(config: FinetuneConfig, changes: dict[str, Any],
                                                 message: str) -> None:
    cli = {"epochs": "--epochs", "batch_size": "--batch-size", "val_split": "--val-split",
           "input_size": "--input-size", "num_workers": "--workers"}
    with pytest.raises(UsageError, match=f"^{message}$"):
        replace(config, **changes).validate(cli)


def test_the_output_folder_is_checked_last(config: FinetuneConfig, tmp_path: Path) -> None:
    (tmp_path / "model").write_text("a file")
    with pytest.raises(UsageError, match="epochs"):  # a setting first ...
        replace(config, epochs=0).validate()
    with pytest.raises(OutputError) as info:  # ... then the output
        config.validate()
    assert info.value.path == str(tmp_path / "model") and info.value.reason == "exists and is not a folder"


def test_output_folder_refusals_are_output_errors(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(OutputError, match=r"did not write \(holiday.jpg\)") as info:
        check_output_dir(photos)
    assert info.value.path == str(photos) and str(info.value).startswith(f"{photos}: ")
    with pytest.raises(OutputError, match="inside the dataset folder"):
        check_output_dir(tmp_path / "data" / "model", tmp_path / "data")
    check_output_dir(tmp_path / "new" / "model", tmp_path / "data")  # absent (and its parent too) is fine
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")


def test_finetune_validates_before_the_scan(config: FinetuneConfig) -> None:
    events: list[Any] = []
    with pytest.raises(UsageError, match="validation split"):
        finetune(replace(config, val_split=1.5), on_event=events.append)
    assert events == []  # not even the "scan" stage began
