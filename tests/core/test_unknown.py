"""The "unknown" verdict: calibration at save time, config.json round trip, engine, reports.

The done-means test finetunes quick mode on 3 kinds of generated textures/shapes (random-init
seresnext26d_32x4d at 64 px, as tests/core/test_finetune.py does) and shows images of a fourth
kind, never seen in training, to the saved model.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import timm

from squeezelens import Classifier
from squeezelens.core.errors import UsageError
from squeezelens.core.finetune import FinetuneConfig, finetune
from squeezelens.core.predictions import Prediction, TopClass
from squeezelens.core.report import CSV_COLUMNS, CSV_COLUMNS_UNKNOWN, format_csv, format_json, format_table
from squeezelens.core.unknown import (
    CONFIG_KEY,
    UnknownCalibration,
    calibrate,
    energy_score,
    msp_score,
    parse_threshold,
    read_calibration,
    resolve_threshold,
    threshold_keeping,
)

ARCH = "seresnext26d_32x4d"
KNOWN = ("green_stripes", "blue_squares", "red_circles")
UNSEEN = "checkerboard"


def test_threshold_keeps_the_asked_fraction() -> None:
    scores = [i / 100 for i in range(1, 101)]
    t = threshold_keeping(scores, 0.95)
    assert sum(s >= t for s in scores) == 95
    cal = calibrate([0.9, 0.8, 0.3, 0.7], [True, True, False, True], keep=1.0)
    assert cal.threshold == 0.7 and (cal.val_correct, cal.val_total) == (3, 4)  # the wrong one is ignored
    with pytest.raises(UsageError):
        calibrate([0.5], [False])


def test_scores() -> None:
    import numpy as np

    logits = np.array([[10.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert msp_score(logits) == pytest.approx([1 / (1 + 2 * np.exp(-10)), 1 / 3])
    assert energy_score(logits) == pytest.approx([10 + np.log(1 + 2 * np.exp(-10)), 1 + np.log(3)])


def test_threshold_settings() -> None:
    cal = UnknownCalibration(0.4)
    assert resolve_threshold(None, cal) == 0.4
    assert resolve_threshold(None, None) is None  # an ImageNet model: no verdict unless asked
    assert resolve_threshold("off", cal) is None
    assert resolve_threshold(0.7, None) == 0.7
    assert resolve_threshold("25%", cal) == 0.25
    assert parse_threshold("0.5") == 0.5
    for bad in ("1.5", "maybe", "-0.1"):
        with pytest.raises(UsageError):
            parse_threshold(bad)
    assert UnknownCalibration.from_config(cal.to_config()) == cal
    assert UnknownCalibration.from_config({"score": "energy", "threshold": 3.0}) is None  # not ours to apply
    assert UnknownCalibration.from_config({"threshold": "x"}) is None


def _pred(prob: float, unknown: bool | None) -> Prediction:
    return Prediction("a.png", "m", [TopClass(2, "owl", prob), TopClass(0, "robin", 1 - prob)], unknown=unknown)


def test_reports_carry_the_verdict() -> None:
    flagged, fine = _pred(0.41, True), _pred(0.9, False)
    table = format_table([flagged, fine], False)
    assert "Unknown \u2014 none of your classes (closest: owl, 41%)" in table
    assert table.count("Unknown") == 1
    assert [d["unknown"] for d in json.loads(format_json([flagged, fine], False))] == [True, False]
    rows = format_csv([flagged, fine], False).splitlines()
    assert rows[0] == ",".join(CSV_COLUMNS_UNKNOWN)
    assert [r.rsplit(",", 1)[1] for r in rows[1:]] == ["true", "true", "false", "false"]
    # without a threshold nothing changes: no key, no column
    plain = _pred(0.41, None)
    assert "unknown" not in json.loads(format_json([plain], False))[0]
    assert format_csv([plain], False).splitlines()[0] == ",".join(CSV_COLUMNS)
    assert "Unknown" not in format_table([plain], False)


def test_imagenet_style_model_has_no_verdict_unless_set(tiny_dir: Path, tmp_path: Path) -> None:
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 10, 10)).save(img)
    with Classifier.load(str(tiny_dir), device="cpu", backend="torch") as clf:
        assert clf.unknown_calibration is None and clf.unknown_threshold is None
        assert clf.classify([img])[0].unknown is None
        clf.set_unknown_threshold(1.0)
        assert clf.classify([img])[0].unknown is True
        clf.set_unknown_threshold("off")
        assert clf.classify([img])[0].unknown is None
    with Classifier.load(str(tiny_dir), device="cpu", backend="torch", unknown_threshold=0.0) as clf:
        assert clf.classify([img])[0].unknown is False


@pytest.mark.slow
def test_unseen_kind_is_flagged_unknown(shapes_module: ModuleType, confident_weights: Path,
                                        tmp_path: Path) -> None:
    data = shapes_module.make_dataset(tmp_path / "data", per_class=40, size=64, seed=0, classes=KNOWN)
    held = shapes_module.make_dataset(tmp_path / "held", per_class=30, size=64, seed=100,
                                      classes=(*KNOWN, UNSEEN))
    out = tmp_path / "model"
    result = finetune(FinetuneConfig(data, out, model=ARCH, weights=confident_weights, input_size=64,
                                     device="cpu", feature_cache_dir=tmp_path / "features", allow_download=False))
    assert result.val_accuracy >= 0.9

    # the calibration round-trips through config.json, and timm still loads the folder
    cfg = json.loads((out / "config.json").read_text())
    stored = cfg[CONFIG_KEY]
    assert stored["score"] == "msp" and stored["rule"] == "keep 95% of correct validation predictions"
    cal = read_calibration(out)
    assert cal is not None and cal.threshold == pytest.approx(stored["threshold"])
    assert 0 < cal.threshold < 1
    timm.create_model(f"local-dir:{out}", pretrained=True)

    known_files = sorted(f for k in KNOWN for f in (held / k).iterdir())
    unseen_files = sorted((held / UNSEEN).iterdir())
    with Classifier.load(str(out), device="cpu", backend="torch") as clf:
        assert clf.unknown_threshold == cal.threshold
        known = clf.classify(known_files)
        unseen = clf.classify(unseen_files)
    kept = sum(p.unknown is False for p in known) / len(known)
    flagged = sum(p.unknown is True for p in unseen) / len(unseen)
    assert flagged >= 0.8, (flagged, kept)
    assert kept >= 0.9, (flagged, kept)
