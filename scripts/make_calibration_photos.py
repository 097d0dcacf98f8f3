"""Write resources/calibration/: a dozen small real photos from scikit-image's bundled data.

Used to calibrate int8 graphs and to check a reduced-precision mode against fp32
(core/precision.py). Each is resized to 256 px on the shorter side (timm's resize for a
224 input at crop 0.875) and saved as JPEG quality 88. Licences (from skimage.data's
docstrings): astronaut, rocket, hubble_deep_field, moon: public domain (NASA/SpaceX);
coffee, chelsea, camera, coins, brick, grass, gravel, clock, immunohistochemistry: CC0 /
public domain.

Run once (dev only, needs scikit-image):  python scripts/make_calibration_photos.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

NAMES = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera", "coins",
         "moon", "brick", "grass", "gravel", "clock", "immunohistochemistry"]
SIDE = 256


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "resources" / "calibration"
    out.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        arr = getattr(data, name)()
        if isinstance(arr, tuple):
            arr = arr[0]
        img = Image.fromarray(np.asarray(arr)).convert("RGB")
        scale = SIDE / min(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        img.save(out / f"{name}.jpg", quality=88)
        print(name, img.size)


if __name__ == "__main__":
    main()
