"""Grad-CAM heatmaps (issue 17): the evidence's quadrant, the image's own size and orientation, the mapping.

The quadrant test trains a small timm ResNet for 30 steps on generated 32 px pictures whose class
is a red or a blue disc placed in one quadrant, with a green disc (in both classes, so no evidence)
in another; the heatmap's mass centre must land in the class disc's quadrant in >= 90% of new images.
The module runs torch on one thread: for a network this small more threads only add hand-over costs
(and on a shared CI box they made each Grad-CAM ~20x slower).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from squeezelens.core.errors import UsageError
from squeezelens.core.heatmap import cam_to_image, explain, mass_centre, overlay, resolve_class

SIZE = 32
COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}
CFG = {"input_size": (3, SIZE, SIZE), "crop_pct": 1.0, "crop_mode": "center", "interpolation": "bilinear",
       "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def quadrant_image(cls: str, rng: np.random.Generator, size: int = SIZE) -> tuple[Image.Image, int]:
    """A noisy grey picture with the class's disc in one quadrant (0 top-left, 1 top-right, 2, 3) and a
    green distractor disc in another; returns it and the class disc's quadrant."""
    arr = np.full((size, size, 3), float(rng.integers(100, 160))) + rng.normal(0, 10, (size, size, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    q, distractor = (int(v) for v in rng.choice(4, 2, replace=False))
    r = size // 10
    for quad, fill in ((q, COLOURS[cls]), (distractor, (40, 200, 40))):
        cx = (quad % 2) * size // 2 + int(rng.integers(size // 8, 3 * size // 8))
        cy = (quad // 2) * size // 2 + int(rng.integers(size // 8, 3 * size // 8))
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    return img, q


def quadrant_of(x: float, y: float, w: int, h: int) -> int:
    return int(x >= w / 2) + 2 * int(y >= h / 2)


@pytest.fixture(scope="module")
def quadrant_classifier():
    """A small timm ResNet (output stride 8: a 4 x 4 last stage at 32 px) trained on quadrant pictures;
    torch runs on one thread while the module's tests use it."""
    import timm.data
    from timm.models.resnet import BasicBlock, ResNet

    from squeezelens.core.engine import Classifier
    from squeezelens.core.model_loader import LoadedModel
    from squeezelens.core.weights import WeightsSource

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: threads only add hand-over costs (and contend on a shared CI box)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=2, channels=(8, 16, 32, 64), output_stride=8,
                     stem_width=16)
        transform = timm.data.create_transform(**CFG)
        rng = np.random.default_rng(0)
        data = [(quadrant_image(c, rng)[0], i) for _ in range(64) for i, c in enumerate(COLOURS)]
        x = torch.stack([transform(img) for img, _ in data])
        y = torch.tensor([label for _, label in data])
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        net.train()
        for _ in range(30):
            idx = torch.randint(0, len(x), (32,))
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    loaded = LoadedModel(model=net, name="quadrants", architecture="resnet", pretrained_cfg=dict(CFG),
                         labels=list(COLOURS), weights=WeightsSource("file", None, "trained in this test"))
    yield Classifier(loaded, "cpu", data_config=CFG)
    torch.set_num_threads(threads)


def test_heatmap_mass_centre_lies_in_the_evidence_quadrant(quadrant_classifier) -> None:
    rng = np.random.default_rng(1)
    hits = total = 0
    for _ in range(20):
        for c, cls in enumerate(COLOURS):
            img, q = quadrant_image(cls, rng)
            heat = explain(quadrant_classifier, img, c)
            assert heat.map.shape == (SIZE, SIZE) and heat.map.dtype == np.float32
            assert 0.0 <= heat.map.min() and heat.map.max() <= 1.0
            hits += quadrant_of(*mass_centre(heat.map), SIZE, SIZE) == q
            total += 1
    assert hits / total >= 0.9, f"{hits}/{total}"


def test_exif_rotated_input_gives_a_map_in_the_upright_orientation(quadrant_classifier, tmp_path: Path) -> None:
    """Evidence top-right in the upright picture, stored rotated with an EXIF orientation tag: the map
    has the upright size (H x W as a viewer shows it) and its mass in the upright top-right quadrant."""
    rng = np.random.default_rng(7)
    hits = 0
    for i in range(10):
        while True:
            upright, q = quadrant_image("red", rng, size=96)
            if q == 1:
                break
        upright = upright.resize((96, 112))  # not square: a wrong orientation would change the shape
        stored = upright.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise: orientation 6 undoes it
        exif = Image.Exif()
        exif[0x0112] = 6
        path = tmp_path / f"rotated{i}.jpg"
        stored.save(path, exif=exif, quality=95)
        heat = explain(quadrant_classifier, path, 0)
        assert heat.map.shape == (112, 96)  # (H, W) of the upright picture
        hits += quadrant_of(*mass_centre(heat.map), 96, 112) == 1
    assert hits >= 9


def test_cam_maps_back_through_resize_and_centre_crop() -> None:
    """A cam hot only in its top-left cell lands at the top-left of the *crop*, shifted by the crop offset."""
    cfg = {"input_size": (3, 224, 224), "crop_pct": 0.875, "crop_mode": "center"}
    cam = np.zeros((7, 7), np.float32)
    cam[0, 0] = 1.0
    heat = cam_to_image(cam, (512, 256), cfg)  # wide: resized to 512x256 (scale 256), crop offset x=144, y=16
    assert heat.shape == (256, 512)
    assert heat[:, :144].max() == 0 and heat[:16].max() == 0  # outside the crop: nothing
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert 144 <= x < 144 + 32 and 16 <= y < 16 + 32  # inside the first 32 px cell of the crop
    assert cam_to_image(np.ones((7, 7), np.float32), (300, 200), cfg).max() == pytest.approx(1.0)


def test_overlay_and_class_choice() -> None:
    img = Image.new("RGB", (4, 3), (10, 20, 30))
    heat = np.zeros((3, 4), np.float32)
    heat[1, 2] = 1.0
    out = np.asarray(overlay(img, heat, opacity=1.0))
    assert tuple(out[0, 0]) == (10, 20, 30)  # cold: the image as it was
    assert tuple(out[1, 2]) == (255, 0, 0)  # hottest at full opacity: the ramp's red
    with pytest.raises(UsageError):
        overlay(img, np.zeros((4, 3), np.float32))
    labels = ["tabby", "tiger cat"]
    assert resolve_class(None, labels) is None
    assert resolve_class("1", labels) == 1 and resolve_class("Tabby", labels) == 0
    with pytest.raises(UsageError, match="no class"):
        resolve_class("dog", labels)
    with pytest.raises(UsageError, match="out of range"):
        resolve_class("5", labels)
