"""A saved model's config.json with values that would cost memory, give NaN or mislabel: a weights
error (exit 2) naming the file and the value, before any work."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from squeezelens.cli import main
from squeezelens.core.errors import WeightsError
from squeezelens.core.model_loader import load_model
from squeezelens.core.saved_model import save_model

BAD = {
    "input_size 6000": (("pretrained_cfg", "input_size"), [3, 6000, 6000], "outside 32..1024"),
    "input_size 16": (("pretrained_cfg", "input_size"), [3, 16, 16], "outside 32..1024"),
    "input_size 2 values": (("pretrained_cfg", "input_size"), [224, 224], "must be [3, height, width]"),
    "std 0": (("pretrained_cfg", "std"), [0.2, 0.0, 0.2], "must be above 0"),
    "std 2 values": (("pretrained_cfg", "std"), [0.2, 0.2], "three numbers"),
    "mean text": (("pretrained_cfg", "mean"), ["a", "b", "c"], "three numbers"),
    "interpolation": (("pretrained_cfg", "interpolation"), "sharpest", "not one of"),
    "crop_pct 0": (("pretrained_cfg", "crop_pct"), 0, "above 0"),
    "label_names short": (("label_names",), ["a", "b", "c"], "3 names for 4 classes"),
    "num_classes text": (("num_classes",), "four", "positive whole number"),
    "pretrained_cfg list": (("pretrained_cfg",), [1, 2], "not a JSON object"),
}


@pytest.fixture(scope="module")
def good_config(tmp_path_factory: pytest.TempPathFactory, tiny_net, labels) -> tuple[dict, bytes]:
    folder = save_model(tiny_net(1), tmp_path_factory.mktemp("good") / "m", labels)
    return json.loads((folder / "config.json").read_text()), (folder / "model.safetensors").read_bytes()


def _folder(tmp_path: Path, good_config, keys: tuple[str, ...], value) -> Path:
    config, weights = good_config
    config = json.loads(json.dumps(config))
    where = config
    for k in keys[:-1]:
        where = where[k]
    where[keys[-1]] = value
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(weights)
    return folder


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_config_value_is_a_weights_error(tmp_path: Path, good_config, case: str) -> None:
    keys, value, message = BAD[case]
    folder = _folder(tmp_path, good_config, keys, value)
    with pytest.raises(WeightsError) as info:
        load_model(str(folder))
    assert message in info.value.reason and info.value.path == str(folder / "config.json")


def test_the_cli_refuses_a_huge_input_size_at_once_with_exit_2(tmp_path: Path, good_config, photo_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, good_config, ("pretrained_cfg", "input_size"), [3, 6000, 6000])
    t0 = time.monotonic()
    code = main(["classify", str(photo_dir / "chelsea.jpg"), "--model", str(folder), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "outside 32..1024" in err and "internal error" not in err
    assert time.monotonic() - t0 < 20


def test_a_good_config_still_loads(tmp_path: Path, good_config, labels) -> None:
    folder = _folder(tmp_path, good_config, ("pretrained_cfg", "interpolation"), "bilinear")
    assert load_model(str(folder)).labels == labels
