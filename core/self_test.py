"""``squeezelens --self-test``: does this installation work? The Qt-free checks, and the runner.

It classifies the bundled sample photo and checks that the class names load; the entry point adds the
Qt checks (platform plugin, image formats, multimedia backend: ``squeezelens.gui.self_test_qt``), since
core never imports Qt. It checks that the pipeline works, not that the answer is right: without weights
the model is untrained, which the output says, and that is not a failure. Works from source and in the
frozen app (packaging/), where a missing data file or plugin is the usual way a bundle breaks.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib.resources import as_file, files
from typing import TextIO

from . import catalogue

#: One check: a name, and a function that returns a one-line detail or raises with what is missing.
Check = tuple[str, Callable[[], str]]

SAMPLE_IMAGE = "sample.jpg"  # squeezelens.resources; Chelsea the cat, CC0 (resources/sample-LICENSE.txt)
EXIT_PASSED, EXIT_FAILED = 0, 1


class SelfTestFailure(Exception):
    """A check failed; the message says what is missing or wrong, for a user."""


def sample_image() -> str:
    """The bundled sample photo's path (a real file: it is package data, not zipped)."""
    res = files("squeezelens.resources") / SAMPLE_IMAGE
    if not res.is_file():
        raise SelfTestFailure(f"the sample image {SAMPLE_IMAGE} is missing from squeezelens.resources")
    with as_file(res) as path:
        return str(path)


def check_sample_image() -> str:
    from PIL import Image

    path = sample_image()
    with Image.open(path) as im:
        im.load()
        return f"{path} ({im.width}x{im.height} {im.format})"


def check_class_names() -> str:
    """timm's ImageNet tables are data files: the first thing a bundle forgets."""
    from .labels import imagenet_names

    try:
        names = imagenet_names("imagenet-1k")
    except FileNotFoundError as e:
        raise SelfTestFailure("timm's ImageNet class names did not load (timm/data/_info is missing)") from e
    if len(names) != 1000:
        raise SelfTestFailure(f"timm's ImageNet-1k table has {len(names)} classes, not 1000")
    return f"{len(names)} ImageNet classes from timm (#281 = {names[281]!r}, #999 = {names[999]!r})"


def check_classify() -> str:
    """The whole pipeline on the sample: weights lookup (no download), model, backend, top-5."""
    from .engine import Classifier

    t0 = time.perf_counter()
    clf = Classifier.load(catalogue.DEFAULT_MODEL, allow_download=False, export="wait")
    pred = clf.classify([sample_image()], top_k=5)[0]
    if not pred.ok:
        raise SelfTestFailure(f"the sample image could not be classified: {pred.error}")
    if len(pred.top) != 5 or not all(t.label and not t.label.startswith("class ") for t in pred.top):
        raise SelfTestFailure(f"the top-5 has no class names: {[t.label for t in pred.top]}")
    top = ", ".join(f"{t.label} {t.prob:.1%}" for t in pred.top[:3])
    weights = (f"UNTRAINED: {clf.loaded.untrained_reason or 'no weights'}, so the answer is random"
               if clf.untrained else f"weights: {clf.loaded.weights.detail}")
    return (f"{clf.name} on {clf.backend_note} in {time.perf_counter() - t0:.1f} s: {top}... "
            f"[{weights}]")


def check_photo_formats() -> str:
    """HEIC (pillow-heif) and AVIF (Pillow) round-trips through the loader, and LittleCMS for colour
    profiles: the plugins a bundle most easily leaves out (issue 13)."""
    import io

    from PIL import Image

    from .image_formats import format_support
    from .images import open_image

    support = format_support()
    missing = [f"{fmt} ({hint})" for fmt, hint in (("HEIC", "pillow-heif is missing: pip install pillow-heif"),
                                                    ("AVIF", "this Pillow has no AVIF plugin: pillow>=11.3"))
               if not support[fmt]]
    if missing:
        raise SelfTestFailure("cannot read " + ", ".join(missing))
    picture = Image.new("RGB", (32, 32), (200, 40, 40))
    for fmt in ("HEIF", "AVIF"):
        buf = io.BytesIO()
        picture.save(buf, fmt, quality=90)
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            pixel = open_image(im).getpixel((16, 16))
        red = pixel[0] if isinstance(pixel, tuple) else -1
        if abs(red - 200) > 16:
            raise SelfTestFailure(f"a {fmt} image decoded with the wrong colours (red {red}, not 200)")
    from PIL import features

    if not features.check("littlecms2"):
        raise SelfTestFailure("this Pillow has no LittleCMS: colour profiles cannot be converted")
    return f"HEIC and AVIF read; colour profiles converted with LittleCMS {features.version('littlecms2')}"


def check_fast_engine() -> str:
    """int8 end to end on a small ONNX graph: ONNX Runtime's quantizer writes it (core/quantize.py) and the
    int8 engine runs it on the CPU (OpenVINO when installed, issue 19, else ONNX Runtime), close to
    numpy's fp32 answer. A bundle that lost the quantizer's modules, OpenVINO's CPU plugin or its ONNX
    front end fails here, not in a user's first ``--precision int8`` run."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .errors import ExportError
    from .precision import int8_engine
    from .quantize import quantize_int8
    from .runners import OrtRunner, OvRunner

    rng = np.random.default_rng(1)  # seed 0's draw happens to sit 10% off after int8; seeds 1-5: 0.6-1.1%
    weight = rng.standard_normal((8, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "self_test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what OpenVINO and ONNX Runtime both read
    x = rng.standard_normal((16, 8)).astype(np.float32)
    engine = int8_engine()
    with tempfile.TemporaryDirectory(prefix="squeezelens-self-test-") as tmp:
        fp32, int8 = Path(tmp) / "matmul.onnx", Path(tmp) / "matmul.int8.onnx"
        onnx.save(model, str(fp32))
        try:
            quantize_int8(fp32, int8, [x[i:i + 4] for i in range(0, 16, 4)])
        except ExportError as e:
            raise SelfTestFailure(f"int8 quantization does not work: {e.reason}") from e
        try:
            y = (OvRunner(int8) if engine == "openvino" else OrtRunner(int8)).logits(x)
            reference = OrtRunner(int8).logits(x)  # ONNX Runtime's reading of the same QDQ graph
        except Exception as e:  # noqa: BLE001 - any failure here is what the check reports
            raise SelfTestFailure(f"{engine} cannot run an int8 graph on this CPU: {type(e).__name__}: {e}") from e
    want = x @ weight
    # the engines may round an output one uint8 step apart (a CPU with VNNI, an ARM Mac): allow two steps
    # of the output's calibrated range; and int8 must stay near fp32 (measured 1.1% of the range here)
    step = float(want.max() - want.min()) / 255
    if np.abs(y - reference).max() > 2.5 * step or np.abs(y - want).max() > 0.05 * float(np.abs(want).max()):
        raise SelfTestFailure(f"{engine} ran the int8 test graph and got the wrong answer")
    if engine != "openvino":
        return "int8 works on ONNX Runtime (OpenVINO not installed, so slower: pip install 'squeezelens[openvino]')"
    import openvino  # type: ignore[import-untyped]  # no type information shipped

    return f"int8 quantized, and run by OpenVINO {openvino.__version__.split('-')[0]} on the CPU"


def core_checks() -> list[Check]:
    return [("sample image", check_sample_image), ("class names", check_class_names),
            ("photo formats", check_photo_formats), ("fast engine", check_fast_engine), ("classify", check_classify)]


def run(extra_checks: Sequence[Check] = (), out: TextIO | None = None) -> int:
    """Run the core checks and ``extra_checks`` in order; print one line each; 0 when all pass, else 1."""
    out = out or sys.stdout
    frozen = "frozen app" if getattr(sys, "frozen", False) else "from source"
    print(f"squeezelens self-test ({frozen}; Python {platform.python_version()}, {platform.system()} "
          f"{platform.machine()}; {sys.executable})", file=out, flush=True)
    failed: list[str] = []
    checks = [*core_checks(), *extra_checks]
    for name, fn in checks:
        try:
            detail, ok = fn(), True
        except SelfTestFailure as e:
            detail, ok = str(e), False
        except Exception as e:  # anything else is a broken installation too: say what, in one line
            detail, ok = f"{type(e).__name__}: {e}", False
        if not ok:
            failed.append(name)
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}: {detail}", file=out, flush=True)
    if failed:
        print(f"self-test FAILED: {len(failed)} of {len(checks)} checks: {', '.join(failed)}", file=out, flush=True)
        return EXIT_FAILED
    print(f"self-test passed ({len(checks)} checks)", file=out, flush=True)
    return EXIT_PASSED
