"""Importing the model stack's native libraries in one known place, before anything else loads its own.

Why this exists: ``import timm`` imports torchvision, which imports ``torch._dynamo``, which imports
triton when it is installed; ``triton._C.libtriton`` carries its own statically linked LLVM. The desktop
app's camera converts video frames through Qt's RHI, which on X11 loads OpenGL: Mesa's ``swrast_dri``
and with it the system's ``libLLVM``. Loading triton's LLVM *after* Mesa's crashes the process inside
triton's module load (two LLVMs registering the same global options; seen as a segmentation fault on
Xvfb). Loaded the other way round, both work. So a caller that is about to load another native stack
(the GUI's video path) first calls :func:`import_model_stack` and waits for it.

Qt-free: the GUI calls it from a worker-side thread and waits for its answer, never in the GUI thread.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util

#: The modules whose native libraries the model side loads at some point of a session, in import order:
#: torch (libtorch), ``torch._dynamo`` (triton and its LLVM, when installed), torchvision (its C++ ops),
#: timm, safetensors, onnxruntime and onnx (the ONNX backend and export). Optional ones are skipped when
#: not installed.
MODEL_STACK: tuple[str, ...] = (
    "torch", "torch._dynamo", "torchvision", "timm", "safetensors.torch", "onnxruntime", "onnx",
)


def import_model_stack(modules: tuple[str, ...] = MODEL_STACK) -> list[str]:
    """Import ``modules`` (those installed), so their native libraries are loaded now.

    Returns:
        The names imported (already imported ones included), in order.

    Raises:
        ImportError: an installed module failed to import (a broken install); the caller says so.
    """
    done = []
    for name in modules:
        top = name.split(".")[0]
        if importlib.util.find_spec(top) is None:
            continue  # optional and not installed (onnx, onnxruntime, triton via torch)
        importlib.import_module(name)
        done.append(name)
    return done


def freeze_imported_objects() -> int:
    """Exclude every object alive now from later garbage collections (:func:`gc.freeze`); call it once the
    model stack is imported.

    Why: with torch, timm, ONNX Runtime and Qt imported a process tracks about 450,000 objects that live
    until exit (modules, functions, classes). Python's full (generation 2) collection scans all of them
    each time it runs, in whichever thread allocated last, and holds the GIL meanwhile: a model load in
    the worker then stops the GUI thread for as long (docs/PERFORMANCE.md "Garbage collection pauses",
    ``bench/gc_pause.py``). Frozen objects are still freed by reference counting when their last reference
    goes (a classifier dropped on a model switch is); only a reference cycle among them would stay.

    Returns:
        The number of objects now frozen (:func:`gc.get_freeze_count`).
    """
    gc.collect()  # garbage from the imports is freed now, not frozen
    gc.freeze()
    return gc.get_freeze_count()
