"""Building a timm model with its weights: a catalogue name, a saved-model folder, or a file."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from . import catalogue
from .errors import ModelNotFoundError, WeightsError
from .labels import label_names_for
from .saved_model import check_finite, recover_interrupted_save
from .weights import ProgressFn, WeightsSource, load_state_dict_file, resolve_weights

if TYPE_CHECKING:
    import torch

#: Seed for the random initialisation used when no weights exist, so "untrained" runs repeat.
UNTRAINED_SEED = 0


@dataclass
class LoadedModel:
    """A ready model (eval mode, on CPU) and what the app needs to describe it."""

    model: torch.nn.Module
    name: str  # what the user asked for, for display ("seresnext26d_32x4d", a folder name)
    architecture: str
    pretrained_cfg: dict[str, Any]
    labels: list[str]
    weights: WeightsSource
    untrained_reason: str | None = None
    license: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def untrained(self) -> bool:
        return self.weights.untrained


class DeferredLoadedModel(LoadedModel):
    """A :class:`LoadedModel` whose torch module is built on first use of ``.model``.

    A start from a cached ONNX graph knows the model's description from the graph cache and never
    needs the module; code that asks for it still gets it (``loader`` runs once, importing torch).
    """

    def __init__(self, loader: Callable[[], LoadedModel], *, name: str, architecture: str,
                 pretrained_cfg: dict[str, Any], labels: list[str], weights: WeightsSource,
                 untrained_reason: str | None = None, license: str | None = None) -> None:
        self._loader: Callable[[], LoadedModel] | None = loader
        self._model: torch.nn.Module | None = None
        # model=None: the dataclass __init__ hands it to the setter below ("not built yet")
        super().__init__(None, name, architecture, pretrained_cfg, labels, weights,  # type: ignore[arg-type]
                         untrained_reason, license)

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None and self._loader is not None:
            self._model = self._loader().model
            self._loader = None
        assert self._model is not None
        return self._model

    @model.setter
    def model(self, value: torch.nn.Module | None) -> None:
        self._model = value

    def __repr__(self) -> str:
        return f"LoadedModel(name={self.name!r}, architecture={self.architecture!r}, weights={self.weights!r})"


def is_saved_model_dir(path: str | os.PathLike[str]) -> bool:
    """A folder in timm's local-dir layout (``config.json`` beside the weights)."""
    p = Path(path)
    return p.is_dir() and (p / "config.json").is_file()


def load_model(
    model: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> LoadedModel:
    """Create ``model`` and load its weights by the documented order of precedence.

    Args:
        model: catalogue name (``arch`` or ``arch.tag``) or a saved-model folder; ``None`` means the
            default model, or the architecture of a saved folder given as ``weights``.
        weights: an explicit weights file, which wins over everything else.
        allow_download: may the Hugging Face hub be asked when the cache has nothing.
        progress: download progress callback ``(done_bytes, total_bytes)``.
        cancel: set it to stop a download; raises :class:`~squeezelens.core.errors.DownloadCancelled`.

    Raises:
        ModelNotFoundError: unknown name and not a saved-model folder.
        WeightsError: the explicit weights or folder could not be used.
    """
    for given in (model, weights):
        if given is not None and not catalogue.is_known_architecture(str(given).split(".", 1)[0]):
            recover_interrupted_save(given)  # a save killed mid-swap: put the model back first
    if model is not None and is_saved_model_dir(model):
        return _load_saved_dir(Path(model), weights)
    if weights is not None and Path(weights).is_dir():
        if not is_saved_model_dir(weights):
            raise WeightsError("a folder without config.json is not a saved model", str(weights))
        loaded = _load_saved_dir(Path(weights), None)
        if model is not None and model.split(".", 1)[0] != loaded.architecture:
            raise WeightsError(f"{weights} holds a {loaded.architecture}, not a {model}; drop --model or pick another")
        return loaded
    model = model or catalogue.DEFAULT_MODEL
    if not model.strip():
        raise ModelNotFoundError("no model name given")
    if Path(model).exists() and not catalogue.is_known_architecture(model):
        raise ModelNotFoundError("not a saved-model folder (it has no config.json)", model)
    try:
        _, tag = catalogue.find(model)
        create_name, hf_hub_id = tag.name, tag.hf_hub_id
    except KeyError:
        arch, _, wanted = model.partition(".")
        if not catalogue.is_known_architecture(arch):
            known = ", ".join(i.architecture for i in catalogue.list_variants())
            raise ModelNotFoundError(
                f"unknown model '{model}'. Choose one of: {known}; or give a saved-model folder."
            ) from None
        tags = [t.tag for i in catalogue.list_variants() if i.architecture == arch for t in i.tags]
        if wanted:
            raise ModelNotFoundError(
                f"'{arch}' has no pretrained tag '{wanted}'; its tags: {', '.join(tags) or 'none'}"
            ) from None
        create_name, hf_hub_id = arch, None

    reason = None
    if weights is not None:
        source = WeightsSource("file", Path(weights), f"file {weights}")
    else:
        source, reason = resolve_weights(
            hf_hub_id, allow_download=allow_download, progress=progress, cancel=cancel
        )
    net = _create_with_weights(create_name, source)
    cfg, num_classes = _timm_attributes(net)
    return LoadedModel(
        model=net,
        name=model,
        architecture=create_name.split(".", 1)[0],
        pretrained_cfg=cfg,
        labels=label_names_for(cfg, num_classes),
        weights=source,
        untrained_reason=reason,
        license=cfg.get("license"),
    )


def _timm_attributes(net: torch.nn.Module) -> tuple[dict[str, Any], int]:
    """A timm model's ``pretrained_cfg`` (a copy) and ``num_classes``.

    timm sets both on every model it creates; ``torch.nn.Module``'s typing knows other attributes
    only as ``Tensor | Module``, hence the casts.
    """
    return dict(cast("dict[str, Any]", net.pretrained_cfg)), int(cast(int, net.num_classes))


def _create_with_weights(create_name: str, source: WeightsSource) -> torch.nn.Module:
    import timm
    import torch

    if source.path is None:
        with torch.random.fork_rng(devices=[]):  # a fixed seed without touching the caller's RNG
            torch.manual_seed(UNTRAINED_SEED)
            return timm.create_model(create_name, pretrained=False).eval()
    sd = load_state_dict_file(source.path)
    num_classes = _num_classes_in(sd)
    head: dict[str, Any] = {"num_classes": num_classes} if num_classes else {}
    net = timm.create_model(create_name, pretrained=False, **head)
    _load_into(net, sd, f"{source.path}", create_name)
    _check_finite(net, str(source.path))
    return net.eval()


def _num_classes_in(sd: dict[str, Any]) -> int | None:
    """Outputs of the classifier head in a ResNet-family state_dict (``fc``)."""
    w = sd.get("fc.weight")
    return int(w.shape[0]) if w is not None and getattr(w, "ndim", 0) == 2 else None


def _load_into(net: torch.nn.Module, sd: dict[str, Any], where: str, arch: str) -> None:
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise WeightsError(f"these weights do not fit {arch} ({detail[:300]})", where) from e


def _check_finite(net: torch.nn.Module, where: str) -> None:
    """Refuse weights with NaN or infinite values (they would print ``nan`` for every photo)."""
    try:
        check_finite(net)
    except WeightsError as e:
        raise WeightsError(e.reason, where) from None


#: Smallest and largest input side (pixels) a saved model may ask for (6000 px took 8.7 GB and a minute).
MIN_INPUT_SIDE, MAX_INPUT_SIDE = 32, 1024
#: Interpolations timm's transforms know (timm.data.transforms' str_to_interp_mode).
INTERPOLATIONS = frozenset({"nearest", "bilinear", "bicubic", "box", "hamming", "lanczos"})
CROP_MODES = frozenset({"center", "squash", "border"})


def saved_config_problem(config: Any) -> str | None:
    """What is wrong with a saved model's ``config.json`` contents, or None.

    Checked: a JSON object; ``num_classes`` a positive integer; ``label_names`` (when present) one per
    class; in ``pretrained_cfg`` (when present) ``input_size``/``test_input_size`` three integers
    ``[3, H, W]`` with H and W in :data:`MIN_INPUT_SIDE`..:data:`MAX_INPUT_SIDE`, ``mean``/``std``
    three finite numbers with every std above 0, a known ``interpolation`` and ``crop_mode``, and a
    ``crop_pct`` in (0, 2].
    """
    import math

    def numbers(v: Any) -> bool:
        return isinstance(v, (list, tuple)) and len(v) == 3 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)

    if not isinstance(config, dict):
        return "config.json is not a JSON object"
    n = config.get("num_classes", 1000)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return f"num_classes must be a positive whole number, not {n!r}"
    pcfg = config.get("pretrained_cfg", {})
    if not isinstance(pcfg, dict):
        return "pretrained_cfg is not a JSON object"
    for where in (config, pcfg):
        names = where.get("label_names")
        if names is not None and (not isinstance(names, (list, dict)) or len(names) != n):
            count = len(names) if isinstance(names, (list, dict)) else "no list of"
            return f"label_names holds {count} names for {n} classes"
    for key in ("input_size", "test_input_size"):
        size = pcfg.get(key)
        if size is None:
            continue
        if not (isinstance(size, (list, tuple)) and len(size) == 3 and all(type(x) is int for x in size)
                and size[0] == 3):
            return f"pretrained_cfg.{key} must be [3, height, width], not {size!r}"
        if not all(MIN_INPUT_SIDE <= x <= MAX_INPUT_SIDE for x in size[1:]):
            return (f"pretrained_cfg.{key} {size[1]}x{size[2]} is outside {MIN_INPUT_SIDE}..{MAX_INPUT_SIDE} pixels")
    for key in ("mean", "std"):
        if key in pcfg and not numbers(pcfg[key]):
            return f"pretrained_cfg.{key} must be three numbers, not {pcfg[key]!r}"
    if "std" in pcfg and not all(x > 0 for x in pcfg["std"]):
        return f"pretrained_cfg.std must be above 0 (it divides the pixels), not {pcfg['std']!r}"
    interp = pcfg.get("interpolation")
    if interp not in (None, "") and interp not in INTERPOLATIONS:
        return f"pretrained_cfg.interpolation {interp!r} is not one of {', '.join(sorted(INTERPOLATIONS))}"
    mode = pcfg.get("crop_mode")
    if mode is not None and mode not in CROP_MODES:
        return f"pretrained_cfg.crop_mode {mode!r} is not one of {', '.join(sorted(CROP_MODES))}"
    crop = pcfg.get("crop_pct")
    if crop is not None and not (isinstance(crop, (int, float)) and not isinstance(crop, bool) and 0 < crop <= 2):
        return f"pretrained_cfg.crop_pct must be above 0 and at most 2, not {crop!r}"
    return None


def _check_saved_config(path: Path) -> None:
    """Refuse a model folder whose ``config.json`` cannot be read or fails :func:`saved_config_problem`.

    Raises:
        WeightsError: ``path`` names the folder's ``config.json``.
    """
    import json

    where = path / "config.json"
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else f"not valid JSON ({e})"
        raise WeightsError(f"cannot load this model folder: config.json cannot be read: {reason}", str(where)) from e
    problem = saved_config_problem(config)
    if problem is not None:
        raise WeightsError(f"cannot load this model folder: {problem}", str(where))


def _load_saved_dir(path: Path, weights: str | os.PathLike[str] | None) -> LoadedModel:
    import timm

    _check_saved_config(path)
    # a timm model: pretrained_cfg and num_classes are timm's attributes, which nn.Module does not declare
    net: Any
    try:
        net = timm.create_model(f"local-dir:{path}", pretrained=weights is None)
    except Exception as e:  # timm raises many kinds for a malformed config.json or weights
        raise WeightsError(f"cannot load this model folder ({type(e).__name__}: {e})", str(path)) from e
    if weights is not None:
        _load_into(net, load_state_dict_file(weights), str(weights), path.name)
        source = WeightsSource("file", Path(weights), f"file {weights}")
    else:
        source = WeightsSource("dir", path, f"model folder {path}")
    _check_finite(net, str(weights or path))
    cfg, num_classes = _timm_attributes(net)
    arch = cfg.get("architecture") or type(net).__name__
    return LoadedModel(
        model=net.eval(),
        name=str(path),
        architecture=str(arch),
        pretrained_cfg=cfg,
        labels=label_names_for(cfg, num_classes),
        weights=source,
        license=cfg.get("license"),
    )
