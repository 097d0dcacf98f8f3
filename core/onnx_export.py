"""Exporting a model to ONNX once, checked against torch before anything uses it.

:func:`export_graph` writes the graph into :mod:`.graph_cache` (scratch folder, check, atomic
rename). The exporter is torch's TorchScript-based one first, then the torch.export-based one where
the first is missing or fails; the first is several times faster (docs/PERFORMANCE.md, "First-time
export"). Every export is compared with torch on a fixed random batch (:func:`verify_graph`).
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import graph_cache
from .errors import ExportError
from .runners import OrtRunner, softmax

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "input", "logits"
#: ONNX opset of the TorchScript exporter (17 has every op timm's ResNe(X)t family needs).
OPSET = 17
#: An exported graph is used only if its probabilities stay this close to torch's on a random batch.
VERIFY_ATOL = 1e-4
#: One export at a time in this process: torch.onnx.export keeps process-wide state (its GLOBALS, the
#: tracer) and warnings.catch_warnings is not thread-safe, and a quick finetune's or the review queue's
#: features graph can be exported while the app's classifier exports its logits graph.
_EXPORT_LOCK = threading.Lock()


def export_onnx(model: torch.nn.Module, input_size: Sequence[int], path: Path, *,
                output_name: str = OUTPUT_NAME) -> str:
    """Write ``model`` (CPU, eval) to ``path`` as ONNX with a dynamic batch axis.

    Args:
        model: the torch module, on the CPU in eval mode.
        input_size: (3, H, W) of one input.
        path: the ``.onnx`` file to write.
        output_name: the graph output's name (``logits``; ``features`` for :mod:`.feature_graph`).

    Returns:
        The exporter that managed it: ``"torchscript"`` or ``"torch.export"``.

    Raises:
        ExportError: no exporter managed it (the reasons of each are in the message).

    Exports in other threads of this process wait for this one (:data:`_EXPORT_LOCK`).
    """
    import torch

    x = torch.zeros((1, *input_size))
    params = inspect.signature(torch.onnx.export).parameters
    reasons = []
    with _EXPORT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation and tracer notices
        try:
            kw: dict[str, Any] = {"dynamo": False} if "dynamo" in params else {}
            with torch.inference_mode(False), torch.no_grad():
                torch.onnx.export(
                    model, (x,), str(path), input_names=[INPUT_NAME], output_names=[output_name],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, output_name: {0: "batch"}},
                    opset_version=OPSET, do_constant_folding=True, **kw,
                )
            return "torchscript"
        except Exception as e:
            reasons.append(f"TorchScript exporter: {type(e).__name__}: {str(e)[:200]}")
            path.unlink(missing_ok=True)
        if "dynamo" in params:
            try:
                batch = torch.export.Dim("batch", min=1, max=4096)
                with torch.inference_mode(False), torch.no_grad():
                    torch.onnx.export(
                        model, (x,), str(path), dynamo=True, input_names=[INPUT_NAME],
                        output_names=[output_name], dynamic_shapes=({0: batch},), external_data=False,
                        verbose=False,
                    )
                return "torch.export"
            except Exception as e:
                reasons.append(f"torch.export exporter: {type(e).__name__}: {str(e)[:200]}")
                path.unlink(missing_ok=True)
    raise ExportError("; ".join(reasons))


def verify_graph(runner: OrtRunner, model: torch.nn.Module, input_size: Sequence[int]) -> float:
    """Largest probability difference between the graph and ``model`` on a fixed random batch of 2.

    Args:
        runner: the exported graph, opened.
        model: the torch module it was exported from (CPU).
        input_size: (3, H, W).

    Returns:
        The largest absolute difference of any class probability, at most :data:`VERIFY_ATOL`.

    Raises:
        ExportError: the difference is larger than :data:`VERIFY_ATOL` (or NaN).
    """
    import torch

    x = np.random.default_rng(0).standard_normal((2, *input_size), dtype=np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).float().softmax(dim=-1).numpy()
    diff = float(np.abs(softmax(runner.logits(x)) - ref).max())
    if not diff <= VERIFY_ATOL:  # also catches NaN
        raise ExportError(f"the exported graph disagrees with torch (probabilities differ by up to {diff:.2e})")
    return diff


def export_graph(model: torch.nn.Module, key: str, meta: Mapping[str, Any], *,
                 copy_model: bool = False) -> graph_cache.GraphInfo:
    """Export ``model`` into the graph cache as graph ``key``, verified against torch; returns it.

    The graph is written in a scratch folder and renamed into place (:func:`.graph_cache.publish`),
    so a crash or a second process never leaves a half-written graph behind.

    Args:
        model: the torch module (CPU, eval).
        key: :func:`.graph_cache.graph_key` of the model.
        meta: :func:`.graph_cache.model_meta` of the model (its ``data_config`` gives the input size).
        copy_model: export a deep copy, for when another thread may run ``model`` meanwhile.

    Raises:
        ExportError: the export failed, disagrees with torch, or could not be written (any failure
            of the export tool chain comes out as this, with the reason).
    """
    src = copy.deepcopy(model) if copy_model else model
    return export_verified(src, src, key, meta)


def export_verified(module: torch.nn.Module, reference: Any, key: str, meta: Mapping[str, Any], *,
                    output_name: str = OUTPUT_NAME,
                    verify: Callable[[OrtRunner, Any, Sequence[int]], float] = verify_graph) -> graph_cache.GraphInfo:
    """Export ``module`` into the graph cache as graph ``key`` once ``verify(runner, reference, input_size)``
    accepts it: written in a scratch folder, checked, then renamed into place (:func:`.graph_cache.publish`).
    The one pipeline of the logits graph (:func:`export_graph`) and the features graph (:mod:`.feature_graph`).

    Args:
        module: what is exported (CPU, eval).
        reference: the torch model ``verify`` compares the graph with (``module`` itself for logits).
        key: the graph's :func:`.graph_cache.graph_key`.
        meta: the graph's description; its ``data_config`` gives the input size, ``name`` the log line.
        output_name: the graph output's name.
        verify: returns the largest difference it measured, or raises :class:`ExportError`.

    Raises:
        ExportError: the export failed, disagrees with torch, or could not be written (any failure
            of the export tool chain comes out as this, with the reason).
    """
    input_size = meta["data_config"]["input_size"]
    try:
        with graph_cache.scratch_dir(key) as tmp:
            t0 = time.perf_counter()
            exporter = export_onnx(module, input_size, tmp / graph_cache.GRAPH_FILE, output_name=output_name)
            export_s = time.perf_counter() - t0
            runner = OrtRunner(tmp / graph_cache.GRAPH_FILE)
            diff = verify(runner, reference, input_size)
            del runner
            graph = graph_cache.publish(tmp, key, {**meta, "exporter": exporter, "export_seconds": round(export_s, 3),
                                                   "verify_max_diff": diff})
    except ExportError:
        raise
    except Exception as e:  # any failure of the export tool chain: a reason for the log, never a crash
        raise ExportError(f"{type(e).__name__}: {e}") from e
    log.info("exported the %s graph of %s with the %s exporter in %.2f s", output_name, meta["name"], exporter,
             export_s)
    return graph
