"""One digest of a model's weights, shared by the ONNX graph cache and the feature cache."""

from __future__ import annotations

import copy

import torch

from squeezelens.core.feature_cache import backbone_digest
from squeezelens.core.state_digest import state_digest


def tiny(seed: int) -> torch.nn.Module:
    """timm's test_resnet (4 classes), its head ``fc``, with random weights from ``seed``."""
    import timm

    torch.manual_seed(seed)
    return timm.create_model("test_resnet", num_classes=4).eval()


def test_equal_weights_give_equal_digests() -> None:
    a, b = tiny(0), tiny(0)
    assert a is not b
    assert state_digest(a) == state_digest(b)
    assert backbone_digest(a) == backbone_digest(b)
    other = tiny(1)
    assert state_digest(other) != state_digest(a) and backbone_digest(other) != backbone_digest(a)


def test_every_tensor_counts_and_only_the_head_is_left_out_of_the_backbone_digest() -> None:
    model = tiny(0)
    assert model.pretrained_cfg["classifier"] == "fc"
    whole, backbone = state_digest(model), backbone_digest(model)
    assert backbone == state_digest(model, exclude=["fc"]) != whole
    names = list(model.state_dict())
    assert any(n.startswith("fc.") for n in names) and any(n.endswith("num_batches_tracked") for n in names)
    for name, t in model.state_dict().items():  # the state_dict's tensors share the model's storage
        before = t.clone()
        with torch.no_grad():
            t.reshape(-1)[-1] += 1  # one element of one tensor, a BatchNorm's step counter too
        assert state_digest(model) != whole, name
        if name.startswith("fc."):
            assert backbone_digest(model) == backbone, name  # a retrained head keeps its features
        else:
            assert backbone_digest(model) != backbone, name
        with torch.no_grad():
            t.copy_(before)
    assert (state_digest(model), backbone_digest(model)) == (whole, backbone)


def test_dtype_counts_even_when_the_values_are_equal() -> None:
    """A bfloat16 model and its exact float32 copy compute different features: they must not share a cache
    entry (the feature cache's own digest upcast bfloat16 before hashing and gave both the same digest)."""
    m32 = tiny(0)
    with torch.no_grad():
        for t in m32.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.to(torch.bfloat16).float())  # values a bfloat16 holds exactly
    m16 = copy.deepcopy(m32).to(torch.bfloat16)
    assert all(torch.equal(a.float(), b.float()) for a, b in zip(m16.state_dict().values(), m32.state_dict().values()))
    assert state_digest(m16) != state_digest(m32)
    assert backbone_digest(m16) != backbone_digest(m32)


def test_exclude_matches_whole_module_names() -> None:
    m = torch.nn.Module()
    m.fc = torch.nn.Linear(2, 2)
    m.fc2 = torch.nn.Linear(2, 2)
    kept = state_digest(m, exclude=["fc"])
    with torch.no_grad():
        m.fc.weight += 1
    assert state_digest(m, exclude=["fc"]) == kept
    with torch.no_grad():
        m.fc2.weight += 1
    assert state_digest(m, exclude=["fc"]) != kept


def test_the_byte_stream_is_pinned() -> None:
    """Graph-cache keys hash this digest: the value for known tensors is the one the cache used before
    the digest was shared (the former onnx_backend.state_hash), so graphs cached by earlier versions are still found."""
    m = torch.nn.Module()
    m.register_buffer("w", torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7)
    m.register_buffer("b", torch.tensor([1.5, -2.0]).to(torch.bfloat16))
    m.register_buffer("n", torch.tensor(3))
    m.register_buffer("e", torch.zeros(0))
    m.register_buffer("m", torch.tensor([True, False]))
    assert state_digest(m) == "e2e7e484741b652a2ca37ac3fcc0299fd80402c4"
