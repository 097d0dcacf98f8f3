"""Why this class? Grad-CAM heatmaps on the last stage of a timm model, mapped back onto the image.

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017, eq. 1-2): with ``A`` the last stage's feature maps (timm's
``forward_features``: (1, C, h, w), before pooling) and ``y_c`` the class's logit (timm's
``forward_head``), the weights are the spatial mean of ``dy_c/dA`` per channel and the map is
``ReLU(sum_k w_k A_k)``, divided by its maximum to lie in 0..1. A dozen lines against timm's own
split of the network, so no library (``grad-cam``, ``torchcam``) is needed for it.

The (h, w) map covers the model's input, i.e. the centre crop of the resized image; it is mapped
back through the eval transform (:func:`cam_to_image`) onto the upright picture (EXIF orientation
applied, as :func:`.images.open_image` gives it), zero outside the crop. torch is imported only by
:func:`grad_cam`, so the GUI can use :func:`overlay` without it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .errors import UsageError
from .numpy_transform import DEFAULT_CROP_PCT

if TYPE_CHECKING:
    import torch

#: Overlay colours from cold (0) to hot (1): blue, cyan, green, yellow, red (a "jet"-like ramp).
_RAMP = np.array([[0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]], np.float32)
#: Default opacity of the overlay's hottest pixels.
DEFAULT_OPACITY = 0.6


@dataclass(frozen=True)
class Heatmap:
    """A class's heatmap on one image.

    Attributes:
        map: (H, W) float32 in 0..1, the upright image's own height and width.
        cam: (h, w) float32 in 0..1 on the model's feature grid (7 x 7 for a 224 px SE-ResNeXt).
        class_index: the class explained.
        label: its name.
        prob: its probability on this image.
    """

    map: np.ndarray
    cam: np.ndarray
    class_index: int
    label: str
    prob: float


def grad_cam(model: torch.nn.Module, x: torch.Tensor, class_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of one input on ``model``'s last stage.

    Args:
        model: a timm classifier (``forward_features`` and ``forward_head``), in eval mode.
        x: (3, H, W) or (1, 3, H, W) float32, already preprocessed; moved to the model's device.
        class_index: the class to explain; ``None``: the top-1.

    Returns:
        ``(cam, probs)``: cam (h, w) float32 in 0..1 (all zero when no feature speaks for the
        class), probs (classes,) float64 softmax of the logits.

    Raises:
        UsageError: the model has no ``forward_features``/``forward_head`` split, or a bad class index.
    """
    import torch

    if not (hasattr(model, "forward_features") and hasattr(model, "forward_head")):
        raise UsageError("this model does not expose its last stage (timm's forward_features); no heatmap")
    net: Any = model  # timm's methods, which nn.Module's typing does not declare
    param = next(model.parameters())
    x = x.reshape(1, *x.shape[-3:]).to(param.device, param.dtype)
    with torch.inference_mode(False), torch.enable_grad():
        feats = net.forward_features(x.clone())
        if not feats.requires_grad:
            feats.requires_grad_(True)
        logits = net.forward_head(feats)
        probs = logits.detach().float().softmax(-1)[0].double().cpu().numpy()
        c = int(np.argmax(probs)) if class_index is None else int(class_index)
        if not 0 <= c < probs.shape[0]:
            raise UsageError(f"class index {c} out of range (0..{probs.shape[0] - 1})")
        (grads,) = torch.autograd.grad(logits[0, c], feats)
    weights = grads[0].float().mean(dim=(1, 2))  # (C,)
    cam = torch.relu((weights[:, None, None] * feats[0].detach().float()).sum(0)).cpu().numpy()
    top = float(cam.max())
    return (cam / top if top > 0 else np.zeros_like(cam)).astype(np.float32), probs


def _axis_weights(n_img: int, n_resized: int, offset: int, n_crop: int, n_cam: int) -> np.ndarray:
    """(n_img, n_cam) linear-interpolation weights taking a cam axis to an image axis.

    Image pixel centre ``i + 0.5`` lies at ``(i + 0.5) * n_resized / n_img`` in the resized image,
    ``- offset`` in the crop, and at ``that * n_cam / n_crop - 0.5`` in cam cells (pixel-centre
    convention, as ``align_corners=False``); rows outside the crop are zero.
    """
    u = (np.arange(n_img) + 0.5) * n_resized / n_img - offset
    inside = (u >= 0) & (u < n_crop)
    c = np.clip(u * n_cam / n_crop - 0.5, 0, n_cam - 1)
    lo = np.floor(c).astype(int)
    hi = np.minimum(lo + 1, n_cam - 1)
    frac = (c - lo).astype(np.float32)
    w = np.zeros((n_img, n_cam), np.float32)
    rows = np.arange(n_img)
    w[rows, lo] += 1 - frac
    w[rows, hi] += frac
    w[~inside] = 0
    return w


def cam_to_image(cam: np.ndarray, image_size: tuple[int, int], data_config: Mapping[str, Any]) -> np.ndarray:
    """Map a cam on the model's input back onto the image the eval transform was given.

    The geometry is timm's eval transform for ``center`` crop mode (:mod:`.numpy_transform`): the
    shorter side resized to ``floor(size / crop_pct)``, the longer one scaled and truncated, then the
    centre ``size`` x ``size`` crop. Other crop modes are taken as a plain resize of the whole image.

    Args:
        cam: (h, w) in 0..1.
        image_size: (width, height) of the upright image, in pixels.
        data_config: timm's resolved eval data config.

    Returns:
        (height, width) float32 in 0..1; zero outside the crop.
    """
    iw, ih = image_size
    _, h, w = (int(v) for v in data_config["input_size"])
    fh, fw = cam.shape
    if data_config.get("crop_mode") in (None, "center") and h == w:
        crop_pct = data_config.get("crop_pct") or DEFAULT_CROP_PCT
        scale = math.floor(h / crop_pct)
        nw, nh = (scale, int(scale * ih / iw)) if iw <= ih else (int(scale * iw / ih), scale)
        top, left = int(round((nh - h) / 2.0)), int(round((nw - w) / 2.0))
    else:
        nw, nh, top, left = w, h, 0, 0
    wy = _axis_weights(ih, nh, top, h, fh)
    wx = _axis_weights(iw, nw, left, w, fw)
    return np.clip(wy @ cam.astype(np.float32) @ wx.T, 0.0, 1.0).astype(np.float32)


def resolve_class(spec: str | int | None, labels: Sequence[str]) -> int | None:
    """``--class`` to a class index: an index (``"3"``), a label (``"tabby"``), or ``None`` (top-1).

    Raises:
        UsageError: no class has that label, and it is not an index in range.
    """
    if spec is None:
        return None
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        i = int(spec)
        if 0 <= i < len(labels):
            return i
        raise UsageError(f"class index {i} out of range (0..{len(labels) - 1})")
    if spec in labels:
        return list(labels).index(spec)
    lowered = [x.lower() for x in labels]
    if spec.lower() in lowered:
        return lowered.index(spec.lower())
    raise UsageError(f"no class named '{spec}' in this model")


def explain(classifier: Any, source: str | os.PathLike[str] | Image.Image,
            class_index: int | None = None) -> Heatmap:
    """The Grad-CAM heatmap of ``class_index`` (default: the top-1) on one image.

    Args:
        classifier: a loaded :class:`~.engine.Classifier` (its torch model is used, built on first use).
        source: a path or PIL image; read with :func:`.images.open_image` (EXIF orientation applied).
        class_index: the class to explain, or ``None`` for the top-1.

    Returns:
        The heatmap, of the upright image's size.

    Raises:
        ImageLoadError: the image cannot be read.
        UsageError: a bad class index, or a model without a last stage to explain.
    """
    from .images import open_image
    from .preprocess import eval_transform

    img = open_image(source)
    cfg = classifier.data_config
    x = eval_transform(cfg)(img)
    model = classifier.model
    cam, probs = grad_cam(model, x, class_index)
    c = int(np.argmax(probs)) if class_index is None else class_index
    return Heatmap(cam_to_image(cam, img.size, cfg), cam, c, classifier.labels[c], float(probs[c]))


def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) in 0..1 to (H, W, 3) uint8 colours along :data:`_RAMP`."""
    t = np.clip(heat, 0, 1) * (len(_RAMP) - 1)
    lo = np.floor(t).astype(int).clip(0, len(_RAMP) - 2)
    f = (t - lo)[..., None]
    rgb = _RAMP[lo] * (1 - f) + _RAMP[lo + 1] * f
    return rgb.round().astype(np.uint8)


def overlay(image: Image.Image, heat: np.ndarray, opacity: float = DEFAULT_OPACITY) -> Image.Image:
    """``image`` with ``heat`` blended over it: each pixel's colour weight is ``opacity * heat``, so
    cold regions stay as they were and the hottest ones get ``opacity`` of the ramp's red.

    Args:
        image: the upright picture (any mode; converted to RGB).
        heat: (H, W) in 0..1, the image's height and width.
        opacity: 0 (image only) to 1.

    Raises:
        UsageError: ``heat``'s shape is not the image's.
    """
    rgb = np.asarray(image.convert("RGB"), np.float32)
    if heat.shape != rgb.shape[:2]:
        raise UsageError(f"heatmap {heat.shape} does not fit an image of {rgb.shape[1]}x{rgb.shape[0]}")
    alpha = (float(np.clip(opacity, 0, 1)) * np.clip(heat, 0, 1))[..., None]
    out = rgb * (1 - alpha) + colorize(heat).astype(np.float32) * alpha
    return Image.fromarray(out.round().astype(np.uint8), "RGB")


def mass_centre(heat: np.ndarray) -> tuple[float, float]:
    """(x, y) centre of mass of a heatmap in pixels (the image's centre when the map is all zero)."""
    total = float(heat.sum())
    h, w = heat.shape
    if total <= 0:
        return (w - 1) / 2, (h - 1) / 2
    ys, xs = np.mgrid[0:h, 0:w]
    return float((heat * xs).sum() / total), float((heat * ys).sum() / total)
