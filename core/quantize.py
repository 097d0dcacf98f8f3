"""int8 quantization of an exported ONNX graph: ONNX Runtime's static QDQ quantizer, calibrated.

(Issue 19 owns this module; this is the minimal version issue 17 needs before the merge, with the
shared signature from the lead's notes. At the merge 19's version is kept.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError


def quantize_int8(src_onnx: Path, dst_onnx: Path, calibration: Iterable[np.ndarray]) -> None:
    """Write ``src_onnx`` quantized to int8 as ``dst_onnx`` (static, QDQ format, per-channel weights).

    ``onnxruntime.quantization.quantize_static`` with MinMax calibration (ONNX Runtime's default),
    activations and weights as signed int8 (``QInt8``), per-channel weight scales.

    Args:
        src_onnx: the float32 graph (one input).
        dst_onnx: the quantized graph to write.
        calibration: float32 NCHW batches, already preprocessed as the model expects them.

    Raises:
        ExportError: no calibration batch, or ONNX Runtime's quantizer failed (its reason in the message).
    """
    from onnxruntime.quantization import (  # type: ignore[import-untyped]  # no py.typed
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process  # type: ignore[import-untyped]

    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in calibration]
    if not batches:
        raise ExportError("int8 quantization needs at least one calibration image")

    import onnx

    input_name = onnx.load(str(src_onnx), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, Any] | None:
            b = next(self._it, None)
            return None if b is None else {input_name: b}

    try:
        # ONNX Runtime's recommended pre-processing (graph optimisation + shape inference): without it
        # the quantizer leaves Conv biases that are not initializers in float. Symbolic shape inference
        # is for transformer graphs and takes seconds; a CNN needs only ONNX's own shape inference.
        with tempfile.TemporaryDirectory(prefix="squeezelens-quant-") as tmp:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(src_onnx), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre), str(dst_onnx), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            )
    except Exception as e:  # the quantizer's own failures: one reason for a person
        raise ExportError(f"int8 quantization failed ({type(e).__name__}: {e})") from e
