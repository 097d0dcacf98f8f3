"""Fixtures of the ONNX Runtime backend's tests (test_runners, test_onnx_export, test_graph_cache)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezelens.core.engine import Classifier
from squeezelens.core.paths import cache_dir
from squeezelens.core.saved_model import save_model

ARCH = "seresnext26d_32x4d"


def all_probs(preds, num_classes: int) -> np.ndarray:
    """Each prediction's full probability vector (classify with top_k = number of classes)."""
    out = np.zeros((len(preds), num_classes))
    for row, p in enumerate(preds):
        for t in p.top:
            out[row, t.index] = t.prob
    return out


def graphs() -> list[str]:
    root = cache_dir("onnx")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "requests" and not p.name.startswith("."))


def save_tiny(path: Path, seed: int) -> Path:
    """A small timm model (test_resnet, 4 classes) saved the SqueezeLens way: exports in a fraction of a second."""
    import timm

    torch.manual_seed(seed)
    net = timm.create_model("test_resnet", num_classes=4)
    with torch.no_grad():
        net.get_classifier().weight.mul_(20)
    return save_model(net, path, ["ant", "bee", "cow", "doe"])


def check_parity(torch_clf: Classifier, ort_clf: Classifier, inputs: list) -> list:
    n = len(torch_clf.labels)
    a = torch_clf.classify(inputs, top_k=n, batch_size=4)
    b = ort_clf.classify(inputs, top_k=n, batch_size=4)
    assert [p.ok for p in a] == [p.ok for p in b]
    ok = [i for i, p in enumerate(a) if p.ok]
    diff = np.abs(all_probs([a[i] for i in ok], n) - all_probs([b[i] for i in ok], n)).max()
    assert diff <= 1e-5, diff
    assert all(a[i].top[0].index == b[i].top[0].index for i in ok)
    return b


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return save_tiny(tmp_path / "tiny", seed=1)


@pytest.fixture(scope="module")
def finetuned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finetuned-style SE-ResNeXt: 3 classes, 96 px input (small, so the test is quick)."""
    import timm

    torch.manual_seed(3)
    net = timm.create_model(ARCH, num_classes=3, pretrained_cfg_overlay={"input_size": (3, 96, 96)})
    with torch.no_grad():
        net.fc.weight.mul_(30)
    return save_model(net, tmp_path_factory.mktemp("finetuned") / "birds", ["robin", "wren", "owl"])


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    p = tmp_path / "broken.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return p


# the helpers above as fixtures, for the test modules (test folders are not importable packages)
@pytest.fixture(name="all_probs")
def _all_probs() -> Callable[..., np.ndarray]:
    return all_probs


@pytest.fixture(name="graphs")
def _graphs() -> Callable[[], list[str]]:
    return graphs


@pytest.fixture(name="save_tiny")
def _save_tiny() -> Callable[[Path, int], Path]:
    return save_tiny


@pytest.fixture(name="check_parity")
def _check_parity() -> Callable[..., list]:
    return check_parity
