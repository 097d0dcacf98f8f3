"""Device and backend picking."""

from __future__ import annotations

import pytest

from squeezelens.core.backend_choice import pick_device
from squeezelens.core.errors import SqueezeLensError


def test_devices() -> None:
    import torch

    has_mps = torch.backends.mps.is_available()
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    assert pick_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(SqueezeLensError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(SqueezeLensError, match="unknown device"):
        pick_device("tpu")
