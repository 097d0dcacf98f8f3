"""What both finetune modes share: timm's optimiser and per-update cosine schedule, and deep mode's
AMP dtype, which must be the one inference picks (native bfloat16 only)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from squeezelens.core import cuda_path
from squeezelens.core.finetune.last_stage import amp_settings
from squeezelens.core.finetune.training import class_weights, create_optimizer_and_scheduler, warmup_updates


def emulated_bf16_only(including_emulation: bool = True) -> bool:
    """``torch.cuda.is_bf16_supported`` on a GPU that only emulates bfloat16 (e.g. a Turing card)."""
    return including_emulation


def test_deep_mode_amp_dtype_is_inferences_when_bf16_is_only_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulated_bf16_only)
    # the expression deep mode used before counts emulated bfloat16 as supported ...
    assert (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) == torch.bfloat16
    # ... inference does not, and training now asks the same function
    amp = amp_settings("cuda")
    assert amp.dtype == cuda_path.autocast_dtype(torch) == torch.float16
    assert amp.enabled and amp.use_scaler  # float16 needs the GradScaler


def test_amp_dtype_with_a_stand_in_torch() -> None:
    fake = SimpleNamespace(bfloat16="bf16", float16="fp16",
                           cuda=SimpleNamespace(is_bf16_supported=emulated_bf16_only))
    assert amp_settings("cuda", fake).dtype == cuda_path.autocast_dtype(fake) == "fp16"

    fake.cuda.is_bf16_supported = lambda including_emulation=True: True  # native bfloat16 (Ampere and later)
    amp = amp_settings("cuda", fake)
    assert amp.dtype == cuda_path.autocast_dtype(fake) == "bf16"
    assert amp.enabled and not amp.use_scaler  # bfloat16 has float32's range: no scaling


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_no_amp_and_no_scaler_off_cuda(device: str) -> None:
    amp = amp_settings(device)
    assert not amp.enabled and not amp.use_scaler


def test_optimizer_is_timm_adamw_with_warmup_then_cosine() -> None:
    head = torch.nn.Linear(8, 3)
    optimizer, scheduler = create_optimizer_and_scheduler(head, lr=1e-3, weight_decay=1e-4, total_updates=100)
    assert isinstance(optimizer, torch.optim.AdamW)
    decay = {g["weight_decay"]: [tuple(p.shape) for p in g["params"]] for g in optimizer.param_groups}
    assert decay == {0.0: [(3,)], 1e-4: [(3, 8)]}  # timm leaves biases out of weight decay

    def lr_after(n: int) -> float:
        scheduler.step_update(n)
        return float(optimizer.param_groups[0]["lr"])

    assert warmup_updates(100) == 10
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)  # warm-up starts at lr / 100
    assert lr_after(5) == pytest.approx(1e-5 + 5 * (1e-3 - 1e-5) / 10)  # linear
    assert lr_after(10) == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * 10 / 100)) / 2)
    assert lr_after(50) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2)  # half-way down the cosine
    assert lr_after(100) == pytest.approx(1e-5)  # ends at lr / 100
    assert warmup_updates(50_000) == 200  # warm-up is capped


def test_frozen_parameters_are_not_optimised() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    optimizer, _ = create_optimizer_and_scheduler(model, lr=1e-3, weight_decay=0.05, total_updates=10)
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert optimised == {id(p) for p in model[1].parameters()}


def test_balanced_class_weights() -> None:
    w = class_weights([0, 0, 0, 1], 3, balanced=True)
    assert w is not None and w.tolist() == pytest.approx([4 / 9, 4 / 3, 4 / 3])  # an empty class counts as 1
    assert class_weights([0, 1], 2, balanced=False) is None
