"""PyInstaller runtime hook: let torchvision import where its C++ ops cannot load.

torchvision's compiled ops (``torchvision/_C``) are built against one torch build. The CPU bundle made
where the PyTorch CPU index is unreachable pairs the CPU wheel of torch with PyPI's torchvision, whose
ops link against CUDA torch; torchvision then fails at import, because it registers fake kernels for
``torchvision::nms``/``qnms`` whatever happens. SqueezeLens never calls those ops (timm uses torchvision
only for its transforms), so this hook declares their schemas when the real ops are missing. It runs
on the first ``import torchvision`` (in the worker thread), not at start-up, so the window still shows
before torch is imported.

The spec adds this hook only where the ops failed to load in the build environment (and then leaves
them out of the bundle); with a matching torchvision (the CPU index's ``+cpu`` build, or the CUDA
flavour, where a mismatch stops the build) the ops are bundled and the hook is not. ``SQUEEZELENS_DEBUG=1``
prints why an op library did not load.
"""

import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path

_libraries: list = []  # a torch.library.Library deregisters its definitions when collected


def _declare_missing_ops() -> None:
    import torch

    spec = importlib.machinery.PathFinder.find_spec("torchvision")
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    for ext in sorted(folder.glob("_C.*")) if folder else ():
        try:
            torch.ops.load_library(str(ext))
            return  # the real ops
        except OSError as e:
            if os.environ.get("SQUEEZELENS_DEBUG"):
                print(f"squeezelens: torchvision ops {ext.name} do not load ({e}); declaring stand-ins",
                      file=sys.stderr)
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _libraries.append(lib)


class _OnTorchvisionImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201
        if name == "torchvision":
            sys.meta_path.remove(self)
            _declare_missing_ops()
        return None  # the usual finders import it


sys.meta_path.insert(0, _OnTorchvisionImport())
