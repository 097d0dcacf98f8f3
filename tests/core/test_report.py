"""core/report.py: the texts of ``classify``, ``models`` and ``finetune``, byte for byte as the command
line printed them before they moved out of it (the expected texts were made by that code)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from squeezelens.core import report
from squeezelens.core.catalogue import ModelInfo, PretrainedTag
from squeezelens.core.engine import Prediction, TopClass


def predictions() -> list[Prediction]:
    return [
        Prediction("photos/cat.jpg", "seresnext26d_32x4d",
                   [TopClass(281, "tabby", 0.8125), TopClass(285, "Egyptian cat", 0.1),
                    TopClass(9, "ostrich", 0.0000123)], load_ms=12.25, infer_ms=30.5),
        Prediction("photos/broken.jpg", "seresnext26d_32x4d", error="photos/broken.jpg: not an image",
                   error_reason="not an image"),
        Prediction('photos/a, "quoted".png', "seresnext26d_32x4d", [TopClass(1, "goldfish, Carassius auratus", 0.5)],
                   untrained=True, load_ms=1.0, infer_ms=2.0),
    ]


TABLE = """\
photos/cat.jpg  (43 ms)
  1. tabby          81.25%  (#281)
  2. Egyptian cat   10.00%  (#285)
  3. ostrich         0.00%  (#9)

photos/broken.jpg
  error: not an image

photos/a, "quoted".png  [untrained]  (3 ms)
  1. goldfish, Carassius auratus   50.00%  (#1)

"""
UNTRAINED_BANNER = "!! UNTRAINED: no pretrained weights were found, so these predictions come from a random network\n\n"
CSV = """\
path,model,untrained,rank,index,label,prob,error
photos/cat.jpg,seresnext26d_32x4d,false,1,281,tabby,0.81250000,
photos/cat.jpg,seresnext26d_32x4d,false,2,285,Egyptian cat,0.10000000,
photos/cat.jpg,seresnext26d_32x4d,false,3,9,ostrich,0.00001230,
photos/broken.jpg,seresnext26d_32x4d,false,,,,,photos/broken.jpg: not an image
"photos/a, ""quoted"".png",seresnext26d_32x4d,true,1,1,"goldfish, Carassius auratus",0.50000000,
"""
JSON: list[dict[str, Any]] = [
    {"path": "photos/cat.jpg", "model": "seresnext26d_32x4d", "untrained": False,
     "top": [{"index": 281, "label": "tabby", "prob": 0.8125}, {"index": 285, "label": "Egyptian cat", "prob": 0.1},
             {"index": 9, "label": "ostrich", "prob": 1.23e-05}],
     "time_ms": {"load": 12.25, "inference": 30.5}},
    {"path": "photos/broken.jpg", "model": "seresnext26d_32x4d", "untrained": False,
     "error": "photos/broken.jpg: not an image"},
    {"path": 'photos/a, "quoted".png', "model": "seresnext26d_32x4d", "untrained": True,
     "top": [{"index": 1, "label": "goldfish, Carassius auratus", "prob": 0.5}],
     "time_ms": {"load": 1.0, "inference": 2.0}},
]


@pytest.mark.parametrize("untrained", [False, True])
def test_classify_formats(untrained: bool) -> None:
    banner = UNTRAINED_BANNER if untrained else ""
    assert report.format_table(predictions(), untrained) == banner + TABLE
    assert report.format_csv(predictions(), untrained) == CSV  # each row carries its own flag
    assert report.format_json(predictions(), untrained) == json.dumps(JSON, indent=2) + "\n"
    assert report.format_json(predictions(), untrained).startswith('[\n  {\n    "path": "photos/cat.jpg",\n')
    assert {name: f(predictions(), untrained) for name, f in report.CLASSIFY_FORMATS.items()} == {
        "table": banner + TABLE, "csv": CSV, "json": json.dumps(JSON, indent=2) + "\n"}


def variants() -> tuple[ModelInfo, ...]:
    def tag(name: str, hub: str | None, license: str | None = "apache-2.0", size: int = 224,
            crop: float = 0.875) -> PretrainedTag:
        return PretrainedTag(name=name, tag=name.split(".")[1], hf_hub_id=hub, input_size=(3, size, size),
                             crop_pct=crop, interpolation="bicubic", mean=(0.485, 0.456, 0.406),
                             std=(0.229, 0.224, 0.225), num_classes=1000, license=license)

    return (
        ModelInfo("seresnext26d_32x4d", (tag("seresnext26d_32x4d.bt_in1k", "timm/seresnext26d_32x4d.bt_in1k"),)),
        ModelInfo("seresnext50_32x4d", (
            tag("seresnext50_32x4d.racm_in1k", "timm/seresnext50_32x4d.racm_in1k", size=288, crop=0.95),
            tag("seresnext50_32x4d.gluon_in1k", None, license=None),
        )),
    )


MODELS_TABLE = """\
MODEL                         INPUT    CROP   INTERP   CLASSES  LICENCE     WEIGHTS
seresnext26d_32x4d.bt_in1k *  224x224  0.875  bicubic  1000     apache-2.0  needs download
seresnext50_32x4d.racm_in1k   288x288  0.950  bicubic  1000     apache-2.0  cached
seresnext50_32x4d.gluon_in1k  224x224  0.875  bicubic  1000     ?           needs download

* default. Use the bare architecture name for its first (default) tag.
"""
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "num_classes": 1000}


def model_json(name: str, default: bool, default_model: bool, size: int, crop: float, license: str | None,
               hub: str | None, cached: bool) -> dict[str, Any]:
    arch, tag = name.split(".")
    return {"name": name, "architecture": arch, "tag": tag, "default": default, "default_model": default_model,
            "input_size": [3, size, size], "crop_pct": crop, "interpolation": "bicubic", "mean": IMAGENET["mean"],
            "std": IMAGENET["std"], "num_classes": 1000, "license": license, "hf_hub_id": hub, "cached": cached}


def test_models_listing() -> None:
    rows = report.model_rows(variants(), lambda hub: hub == "timm/seresnext50_32x4d.racm_in1k")
    assert report.format_models_table(rows) == MODELS_TABLE
    assert report.format_models_json(rows) == json.dumps([
        model_json("seresnext26d_32x4d.bt_in1k", True, True, 224, 0.875, "apache-2.0",
                   "timm/seresnext26d_32x4d.bt_in1k", False),
        model_json("seresnext50_32x4d.racm_in1k", True, False, 288, 0.95, "apache-2.0",
                   "timm/seresnext50_32x4d.racm_in1k", True),
        model_json("seresnext50_32x4d.gluon_in1k", False, False, 224, 0.875, None, None, False),
    ], indent=2) + "\n"


def finetune_result(untrained_base: bool = False, mode: str = "quick", extras: bool = True,
                    best_epoch: int = 2) -> Any:
    """What format_summary reads of a FinetuneResult."""
    return SimpleNamespace(
        output_dir=Path("out/model"), mode=mode, base_model="seresnext26d_32x4d.bt_in1k",
        class_names=["cats", "dogs_with_long_names"], untrained_base=untrained_base, input_size=(3, 224, 224),
        best_epoch=best_epoch, stopped_early=True,
        history=[SimpleNamespace(train_loss=1.23456, val_loss=2.5), SimpleNamespace(train_loss=0.5, val_loss=0.61234),
                 SimpleNamespace(train_loss=0.25, val_loss=0.7)],
        confusion=[[5, 1], [0, 4]], val_accuracy=0.9, cache_hits=7, cache_misses=3,
        per_class=[SimpleNamespace(name="cats", precision=1.0, recall=5 / 6, support=6),
                   SimpleNamespace(name="dogs_with_long_names", precision=0.8, recall=1.0, support=4)],
        misclassified=[SimpleNamespace(path=Path("data/cats/c3.jpg"), true_index=0, pred_index=1, confidence=0.734)],
        skipped=[SimpleNamespace(path=Path("data/dogs/x.png"), reason="cannot be read as an image")] if extras else [],
        warnings=["only 4 validation images for dogs"] if extras else [],
        version=None, previous_version=None, previous_val_accuracy=None,
    )


METRICS = """\
class                 precision  recall  val images
cats                     100.0%   83.3%           6
dogs_with_long_names      80.0%  100.0%           4

confusion matrix (rows: true class, columns: predicted)
                            cats  dogs_with_
cats                           5           1
dogs_with_long_names           0           4

misclassified validation images: 1
  data/cats/c3.jpg  true: cats  predicted: dogs_with_long_names (73%)
"""


def test_finetune_summary() -> None:
    assert report.format_summary(finetune_result()) == (
        "saved out/model (quick mode on seresnext26d_32x4d.bt_in1k, 2 classes, input 224 px)\n"
        "best epoch 2 of 3, stopped early; train loss 0.5000, val loss 0.6123\n"
        "validation accuracy: 90.0% (9/10)\n"
        "feature cache: 7 reused, 3 extracted\n\n"
        + METRICS +
        "\nskipped files: 1\n  data/dogs/x.png: cannot be read as an image\n"
        "\nwarnings:\n  only 4 validation images for dogs\n"
    )
    assert report.format_summary(finetune_result(True, "deep", extras=False, best_epoch=0)) == (
        "saved out/model (deep mode on seresnext26d_32x4d.bt_in1k, 2 classes, input 224 px)\n"
        "!! the base model had no pretrained weights: this model was trained on random features\n"
        "best epoch 0 of 3, stopped early\n"
        "validation accuracy: 90.0% (9/10)\n\n"
        + METRICS
    )


def test_finetune_json_report() -> None:
    data = {"val_accuracy": 0.9, "class_names": ["cats", "dogs"], "confusion": [[5, 1], [0, 4]]}
    text = report.format_finetune_json(SimpleNamespace(to_dict=lambda: data))  # type: ignore[arg-type]
    assert text == json.dumps(data, indent=2) + "\n"
