"""The inference engine: one model, one device, batched classification of paths or PIL images."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import ImageLoadError, SqueezeLensError
from .images import open_image
from .model_loader import LoadedModel, load_model
from .preprocess import data_config, eval_transform, fast_decode_min_side
from .weights import ProgressFn

#: A path, a PIL image, or an input that already failed upstream (e.g. an empty folder).
ImageInput = str | os.PathLike | Image.Image | ImageLoadError
BACKENDS = ("auto", "torch", "onnxruntime")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TopClass:
    """One of the top-k classes of a prediction."""

    index: int
    label: str
    prob: float


@dataclass
class Prediction:
    """The result for one input: its top classes, or the error that stopped it."""

    source: str
    model: str
    top: list[TopClass] = field(default_factory=list)
    error: str | None = None
    untrained: bool = False
    load_ms: float = 0.0  # decode + preprocess of this input
    infer_ms: float = 0.0  # this input's share of its batch's forward pass

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md: path, model, untrained, top; or path, error."""
        if self.error is not None:
            return {"path": self.source, "model": self.model, "untrained": self.untrained, "error": self.error}
        return {
            "path": self.source,
            "model": self.model,
            "untrained": self.untrained,
            "top": [{"index": t.index, "label": t.label, "prob": t.prob} for t in self.top],
            "time_ms": {"load": round(self.load_ms, 2), "inference": round(self.infer_ms, 2)},
        }


def pick_device(requested: str = "auto") -> str:
    """``auto`` means CUDA if present, then Apple MPS, then CPU; an absent device is an error."""
    import torch

    if requested not in DEVICES:
        raise SqueezeLensError(f"unknown device '{requested}'; choose one of {', '.join(DEVICES)}")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise SqueezeLensError("CUDA was requested but no CUDA GPU is available here; use --device cpu")
    if requested == "mps" and not has_mps:
        raise SqueezeLensError("MPS was requested but Apple Metal is not available here; use --device cpu")
    return requested


def pick_backend(requested: str = "auto") -> str:
    """The torch backend is the one built; ``auto`` resolves to it."""
    if requested not in BACKENDS:
        raise SqueezeLensError(f"unknown backend '{requested}'; choose one of {', '.join(BACKENDS)}")
    if requested == "onnxruntime":
        raise SqueezeLensError("the ONNX Runtime backend is not available in this version; use --backend torch")
    return "torch"


class Classifier:
    """One loaded model on one device.

    Example:
        >>> clf = Classifier.load("seresnext26d_32x4d")
        >>> clf.classify(["dog.jpg"])[0].top[0].label
    """

    def __init__(self, loaded: LoadedModel, device: str = "cpu", fast_decode: bool = True) -> None:
        import torch

        self.loaded = loaded
        self.device = device
        self.backend = "torch"
        self.fast_decode = fast_decode
        self.model = loaded.model.to(torch.device(device)).eval()
        self.data_config = data_config(self.model)
        self.transform = eval_transform(self.data_config)
        self._fast_min_side = fast_decode_min_side(self.data_config)
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model: str | None = None,
        weights: str | os.PathLike | None = None,
        device: str = "auto",
        backend: str = "auto",
        *,
        fast_decode: bool = True,
        allow_download: bool = True,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Classifier:
        """Load ``model`` (name or saved-model folder; default seresnext26d_32x4d) with weights resolved as
        documented: ``weights`` file or folder > Hugging Face cache > download > none (untrained)."""
        pick_backend(backend)
        dev = pick_device(device)
        name = None if model is None else str(model)
        loaded = load_model(name, weights, allow_download=allow_download, progress=progress, cancel=cancel)
        return cls(loaded, dev, fast_decode=fast_decode)

    # -- description ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def labels(self) -> list[str]:
        return self.loaded.labels

    @property
    def untrained(self) -> bool:
        """True when no weights were found: outputs are those of a random network."""
        return self.loaded.untrained

    # -- inference -----------------------------------------------------------------------------
    def preprocess(self, source: ImageInput) -> Any:
        """One input to a normalised CHW tensor (raises :class:`ImageLoadError`)."""
        if isinstance(source, ImageLoadError):
            raise source
        img = open_image(source, self._fast_min_side if self.fast_decode else None)
        return self.transform(img)

    def classify(
        self,
        inputs: Sequence[ImageInput],
        top_k: int = 5,
        batch_size: int = 16,
        on_result: Callable[[int, Prediction], None] | None = None,
    ) -> list[Prediction]:
        """Classify every input; an input that fails gets an error, the others still run.

        Args:
            inputs: file paths or PIL images, any mix (an ``ImageLoadError`` stands for a failed input).
            top_k: classes per prediction (capped at the number of classes).
            batch_size: inputs per forward pass.
            on_result: called with (input index, prediction) as each one finishes.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        results: list[Prediction | None] = [None] * len(inputs)
        for start in range(0, len(inputs), batch_size):
            chunk = range(start, min(start + batch_size, len(inputs)))
            tensors, ready = [], []
            for i in chunk:
                src = inputs[i]
                t0 = time.perf_counter()
                try:
                    tensors.append(self.preprocess(src))
                    ready.append((i, (time.perf_counter() - t0) * 1000))
                except ImageLoadError as e:
                    results[i] = Prediction(_describe(src), self.name, error=str(e), untrained=self.untrained)
            if tensors:
                for (i, load_ms), pred in zip(ready, self._forward(tensors, top_k)):
                    pred.source, pred.load_ms = _describe(inputs[i]), load_ms
                    results[i] = pred
            if on_result is not None:
                for i in chunk:
                    on_result(i, results[i])  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def _forward(self, tensors: list[Any], top_k: int) -> list[Prediction]:
        import torch

        k = max(1, min(top_k, len(self.labels)))
        batch = torch.stack(tensors).to(self.device)
        with self._lock, torch.inference_mode():
            t0 = time.perf_counter()
            probs = self.model(batch).float().softmax(dim=-1)
            top_p, top_i = probs.topk(k, dim=-1)
            top_p, top_i = top_p.cpu().tolist(), top_i.cpu().tolist()
            per_item = (time.perf_counter() - t0) * 1000 / len(tensors)
        return [
            Prediction(
                source="",
                model=self.name,
                top=[TopClass(int(i), self.labels[i], float(p)) for i, p in zip(idx, ps)],
                untrained=self.untrained,
                infer_ms=per_item,
            )
            for idx, ps in zip(top_i, top_p)
        ]


def _describe(src: ImageInput) -> str:
    if isinstance(src, ImageLoadError):
        return src.path or ""
    if isinstance(src, Image.Image):
        return getattr(src, "filename", "") or f"<image {src.width}x{src.height}>"
    return str(Path(src))
