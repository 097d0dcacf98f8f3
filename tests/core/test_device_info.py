"""The device indicator's text, and that naming an ONNX Runtime CPU model does not import torch."""

from __future__ import annotations

import subprocess
import sys

from squeezelens.core.device_info import device_label


def test_cpu_labels_count_threads() -> None:
    import torch

    assert device_label("cpu") == f"CPU ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})"
    assert device_label("mps") == "Apple GPU (MPS)"


def test_onnxruntime_cpu_label_needs_no_torch() -> None:
    code = ("import sys; from squeezelens.core.device_info import device_label; "
            "print(device_label('cpu', 'onnxruntime')); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    label, torch_imported = out.stdout.split("\n")[:2]
    assert label.startswith("CPU (") and "thread" in label
    assert torch_imported == "False"
