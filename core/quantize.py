"""int8 quantization of an exported ONNX graph, with ONNX Runtime's own tool (static QDQ, per channel).

:func:`quantize_int8` is the one entry point (issues 17 and 19 both use it): ONNX Runtime's
``quantize_static`` with QuantizeLinear/DequantizeLinear pairs around every convolution and matrix
product, weights quantized per output channel (signed int8, symmetric) and activations per tensor
(unsigned int8), the activation ranges calibrated on real preprocessed images. ONNX Runtime's
CPU provider fuses each QDQ pair into an integer convolution (MLAS u8s8 kernels: AVX2 ``vpmaddubsw``
here, VNNI where the CPU has it).

Importing this module imports neither onnxruntime nor torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError

#: Calibration batches used at most (each may hold several images): more costs time, not accuracy.
MAX_CALIBRATION_BATCHES = 64


def _reader(input_name: str, calibration: Iterable[np.ndarray]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader  # type: ignore[import-untyped]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(calibration)
            self._n = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self._n >= MAX_CALIBRATION_BATCHES:
                return None
            batch = next(self._it, None)
            if batch is None:
                return None
            self._n += 1
            arr = np.ascontiguousarray(batch, dtype=np.float32)
            return {input_name: arr[None] if arr.ndim == 3 else arr}

    return Reader()


def quantize_int8(src_onnx: Path, dst_onnx: Path, calibration: Iterable[np.ndarray]) -> None:
    """Write an int8 (static QDQ, per-channel weights) version of the float graph ``src_onnx`` to ``dst_onnx``.

    Args:
        src_onnx: a float32 ONNX graph with one image input (N, 3, H, W).
        dst_onnx: where the quantized graph goes (written through a temporary file in the same
            folder, then renamed, so a reader never sees half a graph).
        calibration: preprocessed float32 batches of shape (N, 3, H, W) (or single (3, H, W)
            images), e.g. real photos through the model's eval transform; the activation ranges
            come from these (ONNX Runtime's MinMax calibration). At most
            :data:`MAX_CALIBRATION_BATCHES` are read.

    Raises:
        ExportError: ``calibration`` is empty, or ONNX Runtime's quantizer failed (with its reason).
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process  # type: ignore[import-untyped]

    src_onnx, dst_onnx = Path(src_onnx), Path(dst_onnx)
    input_name = onnx.load(str(src_onnx), load_external_data=False).graph.input[0].name
    batches = [b for b, _ in zip(calibration, range(MAX_CALIBRATION_BATCHES))]
    if not batches:
        raise ExportError("int8 quantization needs at least one calibration image", str(src_onnx))
    dst_onnx.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".quantize.", dir=dst_onnx.parent))
    try:
        pre = work / "pre.onnx"
        try:  # shape inference + folding first, as ONNX Runtime's quantization guide advises
            quant_pre_process(str(src_onnx), str(pre), skip_symbolic_shape=True)
        except Exception:
            shutil.copyfile(src_onnx, pre)
        out = work / "int8.onnx"
        quantize_static(
            str(pre), str(out), _reader(input_name, batches),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        os.replace(out, dst_onnx)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"int8 quantization failed: {type(e).__name__}: {str(e)[:300]}", str(src_onnx)) from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
