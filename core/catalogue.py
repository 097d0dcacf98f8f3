"""The SE-ResNeXt variants timm knows, with their pretrained configs.

Everything here is read from timm's registry and ``pretrained_cfg``; nothing is copied by hand.
timm is imported inside the functions, so the constants are cheap to import (CLI help, app start).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

DEFAULT_MODEL = "seresnext26d_32x4d"
#: The variants of the original model card, shown first.
SEED_MODELS = ("seresnext26d_32x4d", "seresnext26t_32x4d", "seresnext50_32x4d")
FAMILY_PATTERN = "seresnext*"


@dataclass(frozen=True)
class PretrainedTag:
    """One set of published weights for an architecture (``arch.tag`` in timm)."""

    name: str  # "seresnext26d_32x4d.bt_in1k"
    tag: str
    hf_hub_id: str | None
    input_size: tuple[int, int, int]
    crop_pct: float
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    license: str | None


@dataclass(frozen=True)
class ModelInfo:
    """An architecture and its pretrained tags; the first tag is timm's default."""

    architecture: str
    tags: tuple[PretrainedTag, ...] = field(default_factory=tuple)

    @property
    def default(self) -> PretrainedTag:
        return self.tags[0]


def _tag_from_cfg(name: str) -> PretrainedTag:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:  # pragma: no cover - timm lists only names it has configs for
        raise KeyError(name)
    channels, height, width = cfg.input_size  # timm types it Tuple[int, ...]; it is always (C, H, W)
    return PretrainedTag(
        name=name,
        tag=cfg.tag or "",
        hf_hub_id=cfg.hf_hub_id,
        input_size=(int(channels), int(height), int(width)),
        crop_pct=float(cfg.crop_pct),
        interpolation=str(cfg.interpolation),
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
        num_classes=int(cfg.num_classes),
        license=cfg.license,
    )


@lru_cache(maxsize=1)
def list_variants() -> tuple[ModelInfo, ...]:
    """All SE-ResNeXt architectures with pretrained weights, seed variants first."""
    import timm

    by_arch: dict[str, list[PretrainedTag]] = {}
    for name in timm.list_models(FAMILY_PATTERN, pretrained=True):
        arch = name.split(".", 1)[0]
        by_arch.setdefault(arch, []).append(_tag_from_cfg(name))
    order = [a for a in SEED_MODELS if a in by_arch] + [a for a in by_arch if a not in SEED_MODELS]
    return tuple(ModelInfo(a, tuple(by_arch[a])) for a in order)


def find(name: str) -> tuple[ModelInfo, PretrainedTag]:
    """Look up ``arch`` or ``arch.tag``; the bare architecture gives timm's default tag.

    Raises:
        KeyError: not an SE-ResNeXt name with pretrained weights.
    """
    arch, _, tag = name.partition(".")
    for info in list_variants():
        if info.architecture != arch:
            continue
        if not tag:
            return info, info.default
        for t in info.tags:
            if t.tag == tag:
                return info, t
    raise KeyError(name)


def is_known_architecture(name: str) -> bool:
    """True for any timm SE-ResNeXt architecture, with or without pretrained weights."""
    import timm

    return name.split(".", 1)[0] in timm.list_models(FAMILY_PATTERN)
