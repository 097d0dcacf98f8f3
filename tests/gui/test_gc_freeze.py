"""The GUI's model-stack import freezes what the imports made out of garbage collection, and a model that
was frozen with them is still freed when the app drops it (core.model_stack.freeze_imported_objects).

Each runs in a fresh interpreter: freezing this test process's objects would change the rest of the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys

CODE = r"""
import gc, json, sys, weakref
from squeezelens.core.engine import Classifier
from squeezelens.gui.worker import default_stack_importer

clf = Classifier.load("seresnext26d_32x4d", device="cpu", backend="torch", allow_download=False)
model = weakref.ref(clf.model)
tracked_before = len(gc.get_objects())
imported = default_stack_importer()
frozen, tracked_after = gc.get_freeze_count(), len(gc.get_objects())
gc.disable()  # from here on, only reference counting frees anything
del clf
print(json.dumps({"imported": imported, "tracked_before": tracked_before, "frozen": frozen,
                  "tracked_after": tracked_after, "model_freed": model() is None}))
"""


def test_stack_import_freezes_its_objects_and_a_dropped_model_is_still_freed() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"torch", "timm", "onnxruntime"} <= set(facts["imported"])
    # everything alive at the import is frozen: a later full collection scans almost nothing
    assert facts["frozen"] >= facts["tracked_before"] > 100_000
    assert facts["tracked_after"] < 1_000
    # the classifier loaded before the freeze (the cached-ONNX start loads one first) is not kept by it
    assert facts["model_freed"]
