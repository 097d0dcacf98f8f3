"""The model catalogue is timm's registry and pretrained_cfg, seed variants first."""

from __future__ import annotations

import timm
from timm.models import get_pretrained_cfg

from squeezelens.core import catalogue


def test_every_pretrained_seresnext_is_listed_seed_first() -> None:
    infos = catalogue.list_variants()
    names = [t.name for i in infos for t in i.tags]
    assert sorted(names) == sorted(timm.list_models("seresnext*", pretrained=True))
    assert [i.architecture for i in infos[:3]] == list(catalogue.SEED_MODELS)
    assert catalogue.DEFAULT_MODEL == infos[0].architecture == "seresnext26d_32x4d"


def test_fields_come_from_pretrained_cfg() -> None:
    for info in catalogue.list_variants():
        for t in info.tags:
            cfg = get_pretrained_cfg(t.name)
            assert t.input_size == tuple(cfg.input_size)
            assert t.crop_pct == cfg.crop_pct and t.interpolation == cfg.interpolation
            assert t.mean == tuple(cfg.mean) and t.std == tuple(cfg.std)
            assert t.num_classes == cfg.num_classes and t.license == cfg.license
            assert t.hf_hub_id == cfg.hf_hub_id


def test_find() -> None:
    info, tag = catalogue.find("seresnext50_32x4d")
    assert tag is info.default and tag.name.startswith("seresnext50_32x4d.")
    _, tag = catalogue.find("seresnext50_32x4d.racm_in1k")
    assert tag.tag == "racm_in1k"
    for bad in ("resnet50", "seresnext50_32x4d.nope"):
        try:
            catalogue.find(bad)
        except KeyError:
            continue
        raise AssertionError(f"{bad} should not be found")
