"""Class names for a model's outputs: its own ``label_names``, else the ImageNet table timm names, else numbers.

Which ImageNet table a head predicts is timm's call, not ours: :func:`timm.data.infer_imagenet_subset`
maps a class count to a subset (1000 ``imagenet-1k``, 11221 ``imagenet-21k-miil``, 11821
``imagenet-12k``, 21841 ``imagenet-22k``, 21842 ``imagenet-22k-ms``, 21843 ``imagenet-21k-goog``) and
:class:`timm.data.ImageNetInfo` reads that table from the data files timm ships. Any other count gets
``class N`` names, never the first N names of a longer table: 10450 (MIIL's ImageNet-21K-P winter21),
for instance, has a synset file in timm but no subset name, so timm itself gives it no names either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The name of the extra leading output(s) that ``label_offset`` counts (TensorFlow's ImageNet heads).
BACKGROUND = "background"


@dataclass(frozen=True)
class ImageNetHead:
    """The ImageNet table a classifier head predicts, as timm names it.

    Attributes:
        subset: timm's subset name (``"imagenet-1k"``, ``"imagenet-21k-miil"``...), for ``ImageNetInfo``.
        label_offset: leading outputs that are not in the table (a "background" class), so output
            ``label_offset + i`` is the table's class ``i``.
    """

    subset: str
    label_offset: int = 0


def short_description(desc: str) -> str:
    """'Samoyed, Samoyede' -> 'Samoyed': the first synonym reads best on a bar."""
    return desc.split(",", 1)[0].strip() or desc


def imagenet_names(subset: str) -> list[str]:
    """One short name per class of timm's ImageNet table ``subset``, in the table's order.

    Read afresh each call (about 0.15 s), so a self-test sees the data files as they are now.

    Args:
        subset: a subset name :class:`timm.data.ImageNetInfo` knows (``"imagenet-1k"``...).

    Returns:
        The first synonym of each class's WordNet lemma (``"Samoyed"``), as many as the table has
        classes (1000 for ``imagenet-1k``).

    Raises:
        FileNotFoundError: timm's data files (``timm/data/_info``) are not installed.
        AssertionError: ``subset`` is not a table timm knows (timm's own check).
    """
    from timm.data import ImageNetInfo

    try:
        info = ImageNetInfo(subset)
    except (OSError, AttributeError) as e:
        # pkgutil.get_data raises for a missing file, or returns None (-> AttributeError on .decode)
        # where the loader cannot read package data: a frozen bundle that left timm/data/_info behind
        raise FileNotFoundError(f"timm's ImageNet table {subset!r} is not installed ({e})") from e
    return [short_description(info.index_to_description(i)) for i in range(info.num_classes())]


def imagenet_head(pretrained_cfg: Mapping[str, Any], num_classes: int) -> ImageNetHead | None:
    """Which ImageNet table a head of ``num_classes`` outputs predicts, or None when timm does not say.

    timm's ``pretrained_cfg`` gives ``num_classes`` after any ``label_offset`` is cut off: timm's own
    pretrained loading drops the first ``label_offset`` rows of such a checkpoint's classifier. A
    state_dict loaded as it is keeps them, so a head of ``num_classes + label_offset`` outputs is that
    table behind ``label_offset`` background outputs. Any other head is looked up by its own size, as
    timm's inference script does (``infer_imagenet_subset(model)``).

    Args:
        pretrained_cfg: the model's ``pretrained_cfg`` (``num_classes``, ``label_offset`` are read).
        num_classes: outputs of the model's classifier head.

    Returns:
        The table and how many background outputs come before it; None for a size timm names no
        table for (10450, 1001 without an offset, a finetuned head...).
    """
    from timm.data import infer_imagenet_subset

    offset = int(pretrained_cfg.get("label_offset") or 0)
    cfg_classes = pretrained_cfg.get("num_classes")
    if offset > 0 and isinstance(cfg_classes, int) and num_classes == cfg_classes + offset:
        subset = infer_imagenet_subset({"num_classes": cfg_classes})
        return ImageNetHead(subset, offset) if subset else None
    subset = infer_imagenet_subset({"num_classes": num_classes})
    return ImageNetHead(subset) if subset else None


def label_names_for(pretrained_cfg: Mapping[str, Any], num_classes: int) -> list[str]:
    """One readable name per output of a model with ``num_classes`` outputs.

    In order: the config's own ``label_names`` (a saved model's; synsets such as ``n02111889`` and
    ``label_descriptions`` are turned into descriptions) when there is one per output; else the
    ImageNet table of :func:`imagenet_head`, whole and with its offset; else ``"class 0"``,
    ``"class 1"``... A table timm's data files lack also gives numbers (the self-test reports that).

    Args:
        pretrained_cfg: the model's ``pretrained_cfg`` (a saved model's ``config.json`` included).
        num_classes: outputs of the model's classifier head.

    Returns:
        ``num_classes`` names, index ``i`` naming output ``i``.
    """
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
    head = imagenet_head(pretrained_cfg, num_classes)
    if head is not None:
        try:
            table = [BACKGROUND] * head.label_offset + imagenet_names(head.subset)
        except FileNotFoundError:
            table = []
        if len(table) == num_classes:  # timm maps a count to a table of that size; never cut one short
            return table
    return [f"class {i}" for i in range(num_classes)]


def _is_synset(name: Any) -> bool:
    return isinstance(name, str) and len(name) == 9 and name[0] == "n" and name[1:].isdigit()


def _synsets_to_descriptions(names: Sequence[str]) -> list[str] | None:
    from timm.data import ImageNetInfo

    try:
        info = ImageNetInfo("imagenet-22k")
        return [short_description(info.label_name_to_description(n)) for n in names]
    except Exception:
        return None
