"""One digest of a model's weights, for every cache that is keyed by them.

The ONNX graph cache (:mod:`.graph_cache`) hashes the whole state_dict, so new weights, a finetuned
head included, give a new graph. The feature cache (:mod:`.feature_cache`) leaves the classifier
head out, so a retrained head still finds the backbone features it extracted before. Both call
:func:`state_digest`; only what they leave out differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: BLAKE2b digest size in bytes (160 bits: 40 hex characters).
DIGEST_SIZE = 20


def state_digest(model: torch.nn.Module, exclude: Iterable[str] = ()) -> str:
    """A hex digest of the tensors in ``model.state_dict()``: each one's name, dtype, shape and bytes.

    Tensors are read in state_dict order, moved to the CPU and hashed as their raw bytes (bfloat16
    too), so equal weights give equal digests and a change to any included tensor, its shape or its
    dtype gives another. The graph cache's keys depend on this exact byte stream: changing it makes
    every cached graph a miss (bump ``graph_cache.CACHE_FORMAT`` with it).

    Args:
        model: any ``torch.nn.Module``.
        exclude: submodule names whose tensors are left out, e.g. ``["fc"]`` drops ``fc.weight`` and
            ``fc.bias`` (a name matches itself and everything below it, never a mere prefix: ``"fc"``
            keeps ``fc2.weight``).

    Returns:
        40 hex characters (BLAKE2b, 20 bytes).
    """
    import torch

    skip = tuple(exclude)
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for name, t in model.state_dict().items():
        if any(name == p or name.startswith(p + ".") for p in skip):
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()
