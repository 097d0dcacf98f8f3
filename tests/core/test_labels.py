"""Class names: which ImageNet table a head gets is timm's word (``infer_imagenet_subset``), whole and
with its ``label_offset``; a count timm names no table for gets ``class N``, never a cut-short table."""

from __future__ import annotations

import pytest
from timm.data import ImageNetInfo
from timm.models import get_pretrained_cfg

from squeezelens.core.labels import (
    BACKGROUND,
    ImageNetHead,
    imagenet_head,
    imagenet_names,
    label_names_for,
    short_description,
)


def table(subset: str) -> list[str]:
    """timm's own table, straight from ImageNetInfo, as the app shortens each description."""
    info = ImageNetInfo(subset)
    return [short_description(info.index_to_description(i)) for i in range(info.num_classes())]


def numbers(n: int) -> list[str]:
    return [f"class {i}" for i in range(n)]


def test_10450_classes_get_numbers_not_the_first_names_of_the_11221_table() -> None:
    """MIIL's winter21 ImageNet-21K-P head: timm ships no subset for 10450 classes, so no names.

    (It used to get the first 10450 of the 11221 fall11 names, which are other classes.)
    """
    assert imagenet_head({"num_classes": 10450}, 10450) is None
    assert label_names_for({"num_classes": 10450}, 10450) == numbers(10450)
    # the head of a timm 21k-miil model given a 10450-class state_dict: still not that table
    miil = get_pretrained_cfg("tresnet_m.miil_in21k").to_dict()
    assert label_names_for(miil, 10450) == numbers(10450)


def test_11221_classes_are_the_imagenet_21k_miil_table() -> None:
    cfg = get_pretrained_cfg("tresnet_m.miil_in21k").to_dict()
    assert cfg["num_classes"] == 11221
    assert imagenet_head(cfg, 11221) == ImageNetHead("imagenet-21k-miil")
    names = label_names_for(cfg, 11221)
    assert names == table("imagenet-21k-miil") and len(names) == 11221
    assert not any(n.startswith("class ") for n in names)


def test_21842_classes_are_the_imagenet_22k_ms_table() -> None:
    """FocalNet's Microsoft remap of ImageNet-22k (the 1k classes first), not fall11's 21841 order."""
    cfg = get_pretrained_cfg("focalnet_large_fl3.ms_in22k").to_dict()
    assert cfg["num_classes"] == 21842
    assert imagenet_head(cfg, 21842) == ImageNetHead("imagenet-22k-ms")
    names = label_names_for(cfg, 21842)
    assert names == table("imagenet-22k-ms") and len(names) == 21842
    assert names[:1000] == table("imagenet-1k")  # what tells this table apart from imagenet-22k


def test_1000_classes_with_label_offset_already_cut_off_are_plain_imagenet_1k() -> None:
    """timm's pretrained loading drops the offset rows, leaving ``num_classes`` outputs: no background."""
    cfg = {"num_classes": 1000, "label_offset": 1}
    assert imagenet_head(cfg, 1000) == ImageNetHead("imagenet-1k")
    assert label_names_for(cfg, 1000) == table("imagenet-1k")


def test_1001_classes_with_label_offset_have_background_first() -> None:
    """A state_dict loaded as it is keeps the offset rows: output 0 is background, 1.. the table."""
    cfg = {"num_classes": 1000, "label_offset": 1}
    assert imagenet_head(cfg, 1001) == ImageNetHead("imagenet-1k", 1)
    names = label_names_for(cfg, 1001)
    assert names == [BACKGROUND] + table("imagenet-1k")


def test_counts_timm_names_no_table_for_get_numbers() -> None:
    for n in (1001, 999, 10, 21844):
        assert imagenet_head({"num_classes": n}, n) is None
        assert label_names_for({"num_classes": n}, n) == numbers(n)
    # an offset that does not match the head's size is not applied to it
    assert label_names_for({"num_classes": 1000, "label_offset": 1}, 1002) == numbers(1002)


@pytest.mark.parametrize(("num_classes", "subset"), [
    (1000, "imagenet-1k"), (11821, "imagenet-12k"), (21841, "imagenet-22k"), (21843, "imagenet-21k-goog"),
])
def test_tables_timm_names_are_used_whole(num_classes: int, subset: str) -> None:
    assert label_names_for({"num_classes": num_classes}, num_classes) == table(subset)


def test_a_head_is_looked_up_by_its_own_size_as_timm_does() -> None:
    """A 1k tag's config with an 11821-output state_dict (the in12k weights): the 12k table, as
    ``infer_imagenet_subset(model)`` says; a finetuned 10-class head: numbers."""
    cfg = get_pretrained_cfg("seresnextaa101d_32x8d.sw_in12k_ft_in1k").to_dict()
    assert cfg["num_classes"] == 1000
    assert imagenet_head(cfg, 11821) == ImageNetHead("imagenet-12k")
    assert label_names_for(cfg, 10) == numbers(10)


def test_missing_timm_data_files_give_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    import timm.data

    def missing(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("timm/data/_info/imagenet_synsets.txt")

    monkeypatch.setattr(timm.data, "ImageNetInfo", missing)
    with pytest.raises(FileNotFoundError, match="imagenet-1k"):
        imagenet_names("imagenet-1k")
    assert label_names_for({"num_classes": 1000}, 1000) == numbers(1000)


def test_saved_label_names_win_over_any_table() -> None:
    names = [f"thing {i}" for i in range(1000)]
    assert label_names_for({"num_classes": 1000, "label_names": names}, 1000) == names
    # a saved list of the wrong length is not used (and no table is cut to fit it)
    assert label_names_for({"num_classes": 3, "label_names": ["a", "b"]}, 3) == numbers(3)
    # synsets read as their descriptions
    assert label_names_for({"label_names": ["n02111889", "n01440764"]}, 2) == ["Samoyed", "tench"]
