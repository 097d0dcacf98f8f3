"""Class names: a saved model's own ``label_names``, else timm's ImageNet tables, else numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: num_classes -> timm ImageNet subset name (timm ships these tables; nothing is downloaded)
_IMAGENET_SUBSETS = {1000: "imagenet-1k", 1001: "imagenet-1k", 11821: "imagenet-12k", 21841: "imagenet-22k",
                     21843: "imagenet-21k-goog", 10450: "imagenet-21k-miil"}


def short_description(desc: str) -> str:
    """'Samoyed, Samoyede' -> 'Samoyed': the first synonym reads best on a bar."""
    return desc.split(",", 1)[0].strip() or desc


def _imagenet_names(num_classes: int, label_offset: int = 0) -> list[str] | None:
    subset = _IMAGENET_SUBSETS.get(num_classes)
    if subset is None:
        return None
    from timm.data import ImageNetInfo

    try:
        info = ImageNetInfo(subset)
    except Exception:  # a timm without that table
        return None
    n = info.num_classes()
    names = ["background"] * label_offset + [short_description(info.index_to_description(i)) for i in range(n)]
    return names[:num_classes] if len(names) >= num_classes else None


def label_names_for(pretrained_cfg: Mapping[str, Any], num_classes: int) -> list[str]:
    """One readable name per output index of a model with ``num_classes`` outputs."""
    names = pretrained_cfg.get("label_names")
    descriptions = pretrained_cfg.get("label_descriptions") or {}
    if names:
        if isinstance(names, Mapping):
            names = [str(names.get(str(i), names.get(i, f"class {i}"))) for i in range(num_classes)]
        names = list(names)
        if len(names) == num_classes:
            if descriptions:
                return [short_description(str(descriptions.get(n, n))) for n in names]
            if all(_is_synset(n) for n in names):
                return _synsets_to_descriptions(names) or names
            return [str(n) for n in names]
    offset = int(pretrained_cfg.get("label_offset") or 0)
    return _imagenet_names(num_classes - offset, offset) or [f"class {i}" for i in range(num_classes)]


def _is_synset(name: Any) -> bool:
    return isinstance(name, str) and len(name) == 9 and name[0] == "n" and name[1:].isdigit()


def _synsets_to_descriptions(names: Sequence[str]) -> list[str] | None:
    from timm.data import ImageNetInfo

    try:
        info = ImageNetInfo("imagenet-22k")
        return [short_description(info.label_name_to_description(n)) for n in names]
    except Exception:
        return None
