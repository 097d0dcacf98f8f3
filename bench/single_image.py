"""One 12-megapixel JPEG, end to end in one process: the seed snippet against SqueezeLens.

End to end means file on disk to top-5 classes, with the model already loaded: the seed snippet
(the model card's code: ``Image.open().convert('RGB')``, timm's transform, ``model(tensor)`` under
``torch.no_grad``, softmax, ``topk``) against ``Classifier.classify([path])`` with the default
backend (ONNX Runtime on the CPU, its graph exported beforehand) and fast JPEG decode. Random
weights for both (nothing can be downloaded here); the speed is the same. The two take turns run
by run, with a short pause before each call. Target from issue 6: at most 0.25x of the seed snippet.

Run:  python bench/single_image.py [--runs 15] [--photo FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.25
#: Pause before each timed call, so threads still spinning after the other path's last call (torch's
#: OpenMP workers, ONNX Runtime's pool) are not charged to this one.
PAUSE_S = 0.2
ARCH = "seresnext26d_32x4d"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="timed runs per path (median reported)")
    ap.add_argument("--photo", help="a JPEG to use instead of the generated 4000x3000 one")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SQUEEZELENS_CACHE_DIR"] = str(Path(tmp) / "cache")  # a fresh export, not the user's cache
        photo = Path(args.photo) if args.photo else Path(tmp) / "photo.jpg"
        if not args.photo:
            sys.path.insert(0, str(Path(__file__).parent))
            from fast_decode import make_photo

            make_photo(photo)

        import timm
        import torch
        from PIL import Image
        from timm.data import resolve_data_config
        from timm.data.transforms_factory import create_transform

        from squeezelens.core.engine import Classifier

        # the seed snippet, with random weights instead of pretrained=True
        model = timm.create_model(ARCH, pretrained=False)
        model.eval()
        config = resolve_data_config({}, model=model)
        transform = create_transform(**config)

        def seed() -> object:
            img = Image.open(photo).convert("RGB")
            tensor = transform(img).unsqueeze(0)
            with torch.no_grad():
                out = model(tensor)
            probabilities = torch.nn.functional.softmax(out[0], dim=0)
            return torch.topk(probabilities, 5)

        t0 = time.perf_counter()
        clf = Classifier.load(ARCH, device="cpu", allow_download=False, export="wait")
        load_s = time.perf_counter() - t0

        def ours() -> object:
            pred = clf.classify([photo])[0]
            assert pred.ok, pred.error
            return pred

        paths = {"seed snippet (torch eager, full decode)": seed, f"squeezelens ({clf.backend}, fast decode)": ours}
        for fn in paths.values():
            for _ in range(2):
                fn()
        times: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(args.runs):
            for name, fn in paths.items():
                time.sleep(PAUSE_S)
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1000)

    print(f"machine: {platform.machine()} cpus={os.cpu_count()} torch {torch.__version__} timm {timm.__version__}")
    print(f"photo: {args.photo or 'generated 4000x3000 JPEG q92 (skimage coffee)'}; model {ARCH}, random weights")
    print(f"squeezelens load incl. first ONNX export: {load_s:.2f} s ({clf.backend_note})")
    medians = {k: statistics.median(v) for k, v in times.items()}
    base = next(iter(medians.values()))
    print(f"{'path':<44} {'median ms':>10} {'x seed':>8}")
    for name, ms in medians.items():
        print(f"{name:<44} {ms:10.1f} {ms / base:8.3f}")
    ratio = list(medians.values())[1] / base
    print(f"squeezelens / seed = {ratio:.3f}x (target <= {TARGET}x): {'MET' if ratio <= TARGET else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
