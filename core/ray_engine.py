"""``classify --engine ray``: batch classification on a Ray cluster with Ray Data (optional extra
``squeezelens[cluster]``; never in the desktop installers).

The pipeline, in input order (``preserve_order``), streamed back to the caller as it is made:

1. the input list (path texts and their position) becomes a Ray Dataset;
2. ``map_batches(read_files)`` (Ray tasks) reads each file as bytes on whichever node runs the task
   (the files must be visible there: a shared file system);
3. ``map_batches(ClassifierActor)`` (an actor pool, ``--workers`` actors, ``--gpus-per-worker`` GPUs
   each): each actor loads one :class:`~.engine.Classifier` once, spools the bytes of a batch into
   its own memory-backed temp folder and classifies them through :meth:`Classifier.classify
   <.engine.Classifier.classify>`, that is with SqueezeLens' own loader (:func:`.images.open_image`:
   EXIF orientation, colour profiles, every mode, the JPEG fast path) and the same preprocessing
   and batching code as the local engine, so the two engines give the same answers by construction;
   each prediction then gets its real path back;
4. the driver iterates the result batches and hands each prediction to ``emit`` (the CLI's writer).

An input that cannot be read on the worker is classified by its path there, so its error is the
loader's own (file not found, permission denied...), as the local engine gives it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImageLoadError, UsageError
from .predictions import Prediction, TopClass
from .result_stream import source_text

if TYPE_CHECKING:
    from .engine import ImageInput

#: CPUs each actor reserves from Ray's scheduler (torch and ONNX Runtime use a few threads each).
CPUS_PER_WORKER = 1.0


def _require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise UsageError("--engine ray needs Ray Data: pip install 'squeezelens[cluster]' "
                         "(or pip install 'ray[data]')") from e
    return ray


def read_files(batch: dict[str, Any]) -> dict[str, Any]:
    """Ray task: the bytes of each file of a batch (``b""`` and ``readable`` False when it cannot be read)."""
    data, readable = [], []
    for path, failed in zip(batch["path"], batch["failed"]):
        blob, ok = b"", False
        if not failed:
            try:
                with open(path, "rb") as f:
                    blob, ok = f.read(), True
            except OSError:
                pass
        data.append(blob)
        readable.append(ok)
    return {"i": batch["i"], "path": batch["path"], "failed": batch["failed"], "data": data, "readable": readable}


class ClassifierActor:
    """One :class:`~.engine.Classifier` per Ray actor; ``__call__`` classifies one batch of file bytes.

    Args:
        load_kwargs: :meth:`Classifier.load <.engine.Classifier.load>`'s arguments.
        top_k: classes per prediction.
        batch_size: inputs per forward pass inside the actor.
        colour_manage: False uses the pixels as stored (``--no-colour-management``); None, the default.
    """

    def __init__(self, load_kwargs: dict[str, Any], top_k: int, batch_size: int,
                 colour_manage: bool | None = None) -> None:
        from .engine import Classifier

        self.clf = Classifier.load(**load_kwargs, export="wait")
        if colour_manage is not None:
            self.clf.colour_manage = colour_manage
        self.top_k, self.batch_size = top_k, batch_size
        shm = Path("/dev/shm")
        self.spool = Path(tempfile.mkdtemp(prefix="squeezelens-ray-", dir=shm if shm.is_dir() else None))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        sources: list[Any] = []
        spooled: list[Path] = []
        for n, (path, failed, data, readable) in enumerate(
                zip(batch["path"], batch["failed"], batch["data"], batch["readable"])):
            if failed:
                sources.append(ImageLoadError(str(failed), str(path)))
            elif not readable:
                sources.append(path)  # the loader says why, as it would locally
            else:
                tmp = self.spool / f"{n}{Path(str(path)).suffix}"
                tmp.write_bytes(bytes(data))
                spooled.append(tmp)
                sources.append(tmp)
        try:
            preds = self.clf.classify(sources, top_k=self.top_k, batch_size=self.batch_size, workers=0)
        finally:
            for tmp in spooled:
                tmp.unlink(missing_ok=True)
        out = []
        for path, pred in zip(batch["path"], preds):
            pred.source = str(path)
            if pred.error is not None and pred.error_reason is not None:
                pred.error = f"{path}: {pred.error_reason}"
            out.append(json.dumps(asdict(pred)))
        return {"i": batch["i"], "pred": out}

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "spool", ""), ignore_errors=True)


def prediction_from_json(text: str) -> Prediction:
    """A :class:`Prediction` back from an actor's JSON (``dataclasses.asdict``)."""
    d = json.loads(text)
    d["top"] = [TopClass(**t) for t in d["top"]]
    return Prediction(**d)


class RayClassify:
    """Classification on a Ray cluster, with the local engine's interface (``classify(..., emit)``).

    Use :meth:`start`.
    """

    def __init__(self, ray: Any, load_kwargs: dict[str, Any], workers: int, gpus_per_worker: float,
                 name: str, untrained: bool, untrained_reason: str | None, owns_ray: bool,
                 unknown_threshold: float | None = None, colour_manage: bool | None = None) -> None:
        self.ray, self.load_kwargs = ray, load_kwargs
        #: the unknown threshold every actor applies (resolved once on the driver), None for no verdict
        self.unknown_threshold = unknown_threshold
        self.colour_manage = colour_manage
        self.workers, self.gpus_per_worker = workers, gpus_per_worker
        self.name, self.untrained, self.untrained_reason = name, untrained, untrained_reason
        self._owns_ray = owns_ray

    @classmethod
    def start(cls, model: str | None, weights: str | None, *, address: str | None = None,
              workers: int | None = None, gpus_per_worker: float = 0.0, device: str = "auto",
              backend: str = "auto", fast_decode: bool = True, allow_download: bool = True,
              unknown_threshold: float | str | None = None, precision: str = "fp32",
              colour_manage: bool | None = None) -> RayClassify:
        """Join (``address``) or start a Ray cluster, and check the model loads here first.

        The model is loaded once on the driver (torch, CPU) for its name and whether it has weights,
        and so that a download lands in this machine's cache before the actors start.

        Args:
            address: a running cluster (``"auto"``, ``"ray://host:10001"``); None starts a local one
                (or uses the one this process already started with ``ray.init``).
            workers: classifier actors; default one per 4 CPUs of the cluster (at least 1).
            gpus_per_worker: GPUs each actor reserves (fractions share a GPU); 0 runs on CPUs.
            unknown_threshold, precision: as :meth:`Classifier.load <.engine.Classifier.load>`; the
                threshold is resolved here (a model's calibrated one included) and every actor gets
                the number, so all workers give the same verdict.
            colour_manage: False: every actor uses the pixels as stored (``--no-colour-management``).

        Raises:
            UsageError: Ray is not installed, ``workers`` below 1, ``gpus_per_worker`` negative.
            ModelNotFoundError, WeightsError: as :meth:`Classifier.load <.engine.Classifier.load>`.
        """
        ray = _require_ray()
        if workers is not None and workers < 1:
            raise UsageError("--workers must be at least 1")
        if gpus_per_worker < 0:
            raise UsageError("--gpus-per-worker cannot be negative")
        from .engine import Classifier

        probe = Classifier.load(model, weights, device="cpu", backend="torch", fast_decode=fast_decode,
                                allow_download=allow_download, unknown_threshold=unknown_threshold)
        name, untrained, reason = probe.name, probe.untrained, probe.loaded.untrained_reason
        threshold = probe.unknown_threshold
        probe.close()
        owns = not ray.is_initialized()
        if owns:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1) // 4))
        load_kwargs = {"model": model, "weights": weights, "device": device, "backend": backend,
                       "fast_decode": fast_decode, "allow_download": allow_download,
                       "unknown_threshold": "off" if threshold is None else threshold, "precision": precision}
        return cls(ray, load_kwargs, workers, gpus_per_worker, name, untrained, reason, owns, threshold,
                   colour_manage)

    def classify(self, inputs: Sequence[ImageInput], top_k: int, batch_size: int, cancel: threading.Event,
                 emit: Callable[[Prediction], None]) -> None:
        """Classify ``inputs`` on the cluster; ``emit`` gets each prediction in input order as its
        batch comes back. Once ``cancel`` is set no more predictions are emitted.

        Raises:
            UsageError: the inputs hold PIL images (only files travel to a cluster).
        """
        if not inputs:
            return
        ray = self.ray
        rows = []
        for n, src in enumerate(inputs):
            if not isinstance(src, (str, os.PathLike, ImageLoadError)):
                raise UsageError("--engine ray classifies files, not images in memory")
            failed = src.reason if isinstance(src, ImageLoadError) else ""
            rows.append({"i": n, "path": source_text(src), "failed": failed})
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False  # stderr is the CLI's (its own counter); Ray's logs keep the details
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // batch_size, 10_000)))
        ds = ds.map_batches(read_files, batch_size=batch_size, batch_format="numpy")
        ds = ds.map_batches(
            ClassifierActor, batch_size=batch_size, batch_format="numpy",
            fn_constructor_kwargs={"load_kwargs": self.load_kwargs, "top_k": top_k, "batch_size": batch_size,
                                   "colour_manage": self.colour_manage},
            compute=ray.data.ActorPoolStrategy(size=self.workers), num_cpus=CPUS_PER_WORKER,
            num_gpus=self.gpus_per_worker or None,
        )
        expected = 0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for i, text in zip(batch["i"], batch["pred"]):
                if cancel.is_set():
                    return
                if int(i) != expected:  # preserve_order guarantees it; never write out of order
                    raise RuntimeError(f"Ray returned input {int(i)} where {expected} was due")
                emit(prediction_from_json(str(text)))
                expected += 1

    def close(self) -> None:
        """Shut down the local Ray cluster this object started (a joined one is left running)."""
        if self._owns_ray:
            self.ray.shutdown()


__all__ = ["ClassifierActor", "RayClassify", "prediction_from_json", "read_files"]
