"""The same speed in every path: each way SqueezeLens runs a model, per image, against the bare runner.

One Classifier (``--precision``, default ``auto``) serves every in-process path, as in the app:

- ``bare runner``: ``runner.top_k([x])`` on an already preprocessed input (the reference);
- ``GUI single image``: the worker's call, ``clf.classify([path])`` (Qt left out: the worker adds
  only a signal);
- ``GUI batch``: ``clf.classify(paths, batch_size=16)`` as the batch window's worker job does;
- ``camera``: ``clf.classify([pil_frame])`` per frame, as the live worker does;
- ``CLI classify``: a ``squeezelens classify FOLDER --format json`` process, its own ``inference`` times;
- ``finetune feature pass (onnxruntime fp32)``: ``core.feature_cache.extract_features`` with the
  runner finetuning's quick mode and the review use (``core.feature_graph``: the features graph,
  ``forward_head(pre_logits=True)``, on ONNX Runtime; batches of 16, ONNX Runtime runs of 4);
- ``finetune feature pass (torch)``: the same call on eager torch fp32 (what it was before, and the
  fallback without ONNX Runtime);
- ``exported model``: the file ``squeezelens export`` writes (``core.model_export.export_model``,
  fp32), run as a user of that file runs it: ``core/onnx_reference.py``'s ONNX Runtime session
  (its defaults), one preprocessed image per ``session.run``;
- ``bare runner (fp32 graph)``: only when the classifier runs a reduced precision: the fp32 graph's
  runner, the fair reference for the fp32 feature pass.

The model part of each path is the ``infer_ms`` the path itself records (for the feature pass, the
whole call minus decoding, measured apart); its ratio to the bare runner is the number to watch
(issue 19's target: within 1.10). Paths take turns round by round; medians.

Run:  python bench/paths.py [--model seresnext26d_32x4d] [--precision auto] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.10


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="seresnext26d_32x4d")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-cli", action="store_true", help="leave out the CLI process (slow on a busy machine)")
    ap.add_argument("--no-export", action="store_true", help="leave out the exported-model file")
    args = ap.parse_args(argv)

    from PIL import Image

    from squeezelens.core import precision
    from squeezelens.core.engine import Classifier
    from squeezelens.core.feature_cache import extract_features
    from squeezelens.core.feature_graph import open_feature_runner
    from squeezelens.core.runners import OrtRunner

    photos = precision.photo_paths()
    t0 = time.perf_counter()
    clf = Classifier.load(args.model, device="cpu", allow_download=False, export="wait", precision=args.precision)
    load_s = time.perf_counter() - t0
    runner = clf._current()
    xs = [clf.preprocess(p) for p in photos]
    pils = [Image.open(p).convert("RGB") for p in photos]
    times: dict[str, list[float]] = {}

    def add(name: str, ms: float) -> None:
        times.setdefault(name, []).append(ms)

    def bare() -> None:
        for x in xs:
            t = time.perf_counter()
            runner.top_k([x], 5)
            add("bare runner", (time.perf_counter() - t) * 1000)

    def single() -> None:
        for p in photos:
            add("GUI single image", clf.classify([p], top_k=5)[0].infer_ms)

    def batch() -> None:
        for pred in clf.classify(photos * 2, top_k=5, batch_size=16):
            add("GUI batch (16)", pred.infer_ms)

    def camera() -> None:
        for im in pils:
            add("camera frame", clf.classify([im], top_k=5)[0].infer_ms)

    from squeezelens.core.preprocess import eval_transform

    torch_model = clf.model.eval()
    tf = eval_transform(clf.data_config)
    t0 = time.perf_counter()
    feature_runner = open_feature_runner(torch_model, clf.data_config, "cpu", on_warning=print)
    features_open_s = time.perf_counter() - t0
    fp32_bare = None
    if clf.precision != "fp32" and getattr(runner, "path", None) is not None:
        fp32_bare = OrtRunner(runner.path.with_name("model.onnx"))

    def bare_fp32() -> None:
        if fp32_bare is None:
            return
        for x in xs:
            t = time.perf_counter()
            fp32_bare.top_k([x], 5)
            add("bare runner (fp32 graph)", (time.perf_counter() - t) * 1000)

    def feature_pass(name: str, feature_runner) -> None:
        t = time.perf_counter()
        decoded = [tf(Image.open(p).convert("RGB")) for p in photos]
        decode_s = time.perf_counter() - t
        del decoded
        t = time.perf_counter()
        extract_features(torch_model, photos, tf, None, batch_size=16, runner=feature_runner)
        add(name, ((time.perf_counter() - t) - decode_s) * 1000 / len(photos))

    def features() -> None:
        feature_pass(f"finetune feature pass ({feature_runner.engine} {feature_runner.precision})", feature_runner)

    def features_torch() -> None:
        feature_pass("finetune feature pass (torch)", None)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for p in photos:
            (folder / p.name).write_bytes(p.read_bytes())

        exported = None
        if not args.no_export:
            from squeezelens.core import onnx_reference
            from squeezelens.core.model_export import export_model

            t0 = time.perf_counter()
            export_dir = Path(tempfile.mkdtemp(prefix="squeezelens-bench-export-"))  # not in the CLI's folder
            summary = export_model(args.model, export_dir / "model.onnx", allow_download=False)
            session = onnx_reference.open_session(str(summary.path))
            meta = onnx_reference.read_metadata(session)
            exported_xs = [onnx_reference.preprocess(onnx_reference.load_rgb(str(p)),
                                                     meta[onnx_reference.PREPROCESSING_KEY])[None] for p in photos]
            exported = (session, session.get_inputs()[0].name, exported_xs)
            print(f"exported {summary.path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")

        def exported_file() -> None:
            if exported is None:
                return
            session, input_name, inputs = exported
            for x in inputs:
                t = time.perf_counter()
                onnx_reference.softmax(session.run(None, {input_name: x})[0])
                add("exported model (onnx_reference session)", (time.perf_counter() - t) * 1000)

        def cli() -> None:
            proc = subprocess.run(
                [sys.executable, "-m", "squeezelens", "classify", str(folder), "--model", args.model, "--offline",
                 "--format", "json", "--precision", args.precision],
                capture_output=True, text=True, timeout=600, env={**os.environ},
            )
            if proc.returncode != 0:
                print(proc.stderr[-1000:])
                return
            for r in json.loads(proc.stdout):
                add("CLI classify", r["time_ms"]["inference"])

        rounds = [bare, bare_fp32, single, batch, camera, features, features_torch, exported_file]
        rounds += [] if args.no_cli else [cli]
        for f in rounds:  # warm-up (the torch module is built on first use)
            f()
        times.clear()
        for _ in range(args.rounds):
            for f in rounds:
                f()

    print(f"model {clf.name}: precision asked {args.precision}, running {clf.precision} on {clf.backend} "
          f"({clf.precision_note}); load {load_s:.1f} s; features runner {feature_runner.identity} "
          f"opened in {features_open_s:.1f} s")
    ref = statistics.median(times["bare runner"])
    fp32_ref = statistics.median(times["bare runner (fp32 graph)"]) if "bare runner (fp32 graph)" in times else None
    print(f"{'path':<44} {'model ms/image':>14} {'x bare':>7}  within {TARGET:.2f}?"
          + ("  x fp32 bare" if fp32_ref else ""))
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<44} {med:14.1f} {med / ref:7.2f}  {'yes' if med / ref <= TARGET else 'NO ':<5}"
              + (f"  {med / fp32_ref:11.2f}" if fp32_ref else ""))
    if "finetune feature pass (torch)" in times:
        onnx = [n for n in times if n.startswith("finetune feature pass (onnxruntime")]
        for n in onnx:
            print(f"{n} / finetune feature pass (torch): "
                  f"{statistics.median(times[n]) / statistics.median(times['finetune feature pass (torch)']):.2f}")
    clf.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
