"""Fixtures of the fault-injection tests: tiny random-weight models with fixed seeds, folder snapshots."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

LABELS = ["ant", "bee", "cow", "doe"]


def tiny_net(seed: int, scale: float = 20.0):
    """timm's ``test_resnet`` with 4 classes (saves and exports in a fraction of a second), seeded."""
    import timm
    import torch

    torch.manual_seed(seed)
    net = timm.create_model("test_resnet", num_classes=len(LABELS))
    with torch.no_grad():
        net.get_classifier().weight.mul_(scale)
    return net.eval()


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (folders as ``<dir>``), symlinks not followed."""
    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = "<link>"
        elif p.is_dir():
            out[rel] = "<dir>"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(name="tiny_net", scope="session")
def _tiny_net() -> Callable[..., object]:
    return tiny_net


@pytest.fixture(name="snapshot", scope="session")
def _snapshot() -> Callable[[Path], dict[str, str]]:
    return snapshot


@pytest.fixture(name="labels", scope="session")
def _labels() -> list[str]:
    return list(LABELS)
