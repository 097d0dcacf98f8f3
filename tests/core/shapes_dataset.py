"""A made-up finetuning dataset: coloured shapes and textures, random positions, sizes and noise.

Used by the finetune tests and by ``bench/finetune.py`` (loaded by file path; tests are no package).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("checkerboard", "green_stripes", "blue_squares", "red_circles")


def make_image(cls: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """One picture of class ``cls``: a noisy grey background with the class's shape or texture."""
    bg = int(rng.integers(90, 170))
    arr = np.full((size, size, 3), bg, np.float32)
    img = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(img)
    s = size
    if cls == "red_circles":
        for _ in range(int(rng.integers(1, 4))):
            r = int(rng.integers(s // 10, s // 4))
            x, y = rng.integers(r, s - r, 2)
            d.ellipse([x - r, y - r, x + r, y + r], fill=(int(rng.integers(180, 256)), int(rng.integers(0, 60)), 30))
    elif cls == "blue_squares":
        for _ in range(int(rng.integers(1, 4))):
            a = int(rng.integers(s // 8, s // 3))
            x, y = rng.integers(0, s - a, 2)
            d.rectangle([x, y, x + a, y + a], fill=(30, int(rng.integers(0, 80)), int(rng.integers(170, 256))))
    elif cls == "green_stripes":
        period = int(rng.integers(4, 12))
        offset = int(rng.integers(0, period))
        green = (20, int(rng.integers(150, 240)), 40)
        vertical = bool(rng.integers(0, 2))
        for k in range(-period, s + period, period):
            a = k + offset
            box = [a, 0, a + period // 2, s] if vertical else [0, a, s, a + period // 2]
            d.rectangle(box, fill=green)
    elif cls == "checkerboard":
        cell = int(rng.integers(4, 12))
        ox, oy = rng.integers(0, cell, 2)
        dark, light = int(rng.integers(0, 60)), int(rng.integers(200, 256))
        yy, xx = np.mgrid[0:s, 0:s]
        board = (((xx + ox) // cell + (yy + oy) // cell) % 2).astype(np.float32)
        grey = dark + board * (light - dark)
        img = Image.fromarray(np.repeat(grey[..., None], 3, axis=2).astype(np.uint8))
    else:
        raise ValueError(cls)
    noisy = np.asarray(img, np.float32) + rng.normal(0, 12, (s, s, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def make_dataset(root: Path, per_class: int = 40, size: int = 64, seed: int = 0,
                 classes: tuple[str, ...] = CLASSES) -> Path:
    """``root/<class>/<class>_NNN.png``, ``per_class`` images each."""
    rng = np.random.default_rng(seed)
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(cls, rng, size).save(root / cls / f"{cls}_{i:03d}.png")
    return root
