"""Deep mode under torchrun: DistributedDataParallel over the processes ``torch.distributed.run`` starts.

torchrun (``python -m torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each
process; :func:`detect` reads them, :class:`DdpContext` joins the process group (gloo on the CPU, NCCL
on CUDA, the rendezvous torchrun set up in ``MASTER_ADDR``/``MASTER_PORT``) and holds what deep mode
changes when it runs in more than one process:

- **Batches.** ``--batch-size`` is per process; the global batch of one update is ``batch_size x
  WORLD_SIZE`` (DDP averages the processes' gradients, as timm's ``train.py`` does). The training
  images are split by torch's ``DistributedSampler`` (shuffled with ``seed``, ``set_epoch`` every
  epoch): update k uses, over all processes together, exactly the images a one-process run with the
  global batch uses in its update k. When the image count does not divide by ``WORLD_SIZE`` the
  sampler repeats a few images to even the processes out (torch's default); the gradient is the mean
  of the processes' mean losses, which equals the global mean when the batches are the same size and
  the class weights are equal (a class-weighted or uneven last batch differs slightly, as in timm).
- **Augmentation** is seeded per image (``seed``, epoch, image index), so an image gets the same
  random crop and flip whichever process and batch it lands in.
- **BatchNorm: frozen statistics.** The trained last stage's BatchNorm layers stay in eval mode (their
  pretrained running statistics normalise; their scale and shift still train), as the earlier stages'
  already do. A forward pass of one image then never depends on its batch-mates, so the result does
  not depend on the process count or the per-process batch size. SyncBatchNorm would do that too but
  costs an all-reduce per BatchNorm layer per forward pass (slow with gloo), and torch's
  SyncBatchNorm runs on CUDA only; with small per-process batches batch statistics are noisy anyway.
- **Validation** is sharded without duplicates: process r takes validation images r, r + W, r + 2W ...
  of the sorted list, and the predictions are gathered so every process holds the whole result
  (each image evaluated once; every process then agrees on the best epoch).
- **Files.** Only rank 0 writes the checkpoint, the saved model and the report and emits progress;
  the other ranks never touch the output folder or the checkpoint folder. On ``--resume`` rank 0
  reads the checkpoint and broadcasts it. The checkpoint holds the un-wrapped modules' state and is
  written at epoch ends; the sampler needs no state (its order is a function of seed and epoch), so a
  run resumes at the next epoch with any process count that keeps the same global batch.

This module imports torch: deep mode imports it when a run starts under torchrun.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

#: The environment variables torchrun sets in every process it starts.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a torchrun job: global ``rank`` (0..world_size-1), ``world_size``
    (processes over all nodes) and ``local_rank`` (its index on this node, its GPU there)."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and reports progress."""
        return self.rank == 0


def detect(environ: dict[str, str] | None = None) -> DistEnv | None:
    """The torchrun environment of this process, or None when it was not started by torchrun.

    Args:
        environ: the environment to read (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if not all(k in env for k in TORCHRUN_VARIABLES):
        return None
    return DistEnv(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))


class SeededImages(torch.utils.data.Dataset[Any]):
    """``base[i]`` with torch's CPU generator and Python's ``random`` seeded from ``(seed, epoch, i)``
    first: image i's augmentation is the same whichever process or batch draws it."""

    def __init__(self, base: torch.utils.data.Dataset[Any], seed: int) -> None:
        self.base, self.seed, self.epoch = base, seed, 0

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Any:
        s = (self.seed * 1_000_003 + self.epoch) * 10_000_019 + i  # distinct per (seed, epoch, image)
        torch.manual_seed(s % (2**63))
        random.seed(s)
        return self.base[i]


class DdpContext:
    """One deep-mode run's process group and what it changes (see the module notes).

    Raises:
        RuntimeError: torch could not join the process group (a rendezvous that never completes
            times out after torch's default 30 minutes).
    """

    def __init__(self, env: DistEnv, device: str) -> None:
        self.env = env
        self.backend = "nccl" if device == "cuda" else "gloo"
        if device == "cuda":
            torch.cuda.set_device(env.local_rank)  # "cuda" then means this process' GPU
        self.owns_group = not dist.is_initialized()
        if self.owns_group:
            dist.init_process_group(self.backend, rank=env.rank, world_size=env.world_size)
        self.train_sampler: torch.utils.data.DistributedSampler[Any] | None = None
        self.seeded: SeededImages | None = None

    @property
    def is_main(self) -> bool:
        return self.env.is_main

    def global_batch(self, batch_size: int) -> int:
        """Images per update over all processes: ``batch_size`` (per process) x world size."""
        return batch_size * self.env.world_size

    def loaders(self, train_dl: torch.utils.data.DataLoader[Any], val_dl: torch.utils.data.DataLoader[Any],
                seed: int) -> tuple[torch.utils.data.DataLoader[Any], torch.utils.data.DataLoader[Any]]:
        """The one-process loaders' datasets and settings, with the training set split by a seeded
        ``DistributedSampler`` (per-image seeded augmentation) and this rank's validation slice."""
        kw: dict[str, Any] = {"batch_size": train_dl.batch_size, "num_workers": train_dl.num_workers,
                              "pin_memory": train_dl.pin_memory, "persistent_workers": train_dl.num_workers > 0}
        self.seeded = SeededImages(train_dl.dataset, seed)
        self.train_sampler = torch.utils.data.DistributedSampler(
            self.seeded, num_replicas=self.env.world_size, rank=self.env.rank, shuffle=True, seed=seed,
            drop_last=False)
        train = torch.utils.data.DataLoader(self.seeded, sampler=self.train_sampler, drop_last=False, **kw)
        n_val = len(val_dl.dataset)  # type: ignore[arg-type]
        val = torch.utils.data.DataLoader(val_dl.dataset, sampler=val_shard(n_val, self.env.rank,
                                                                            self.env.world_size), **kw)
        return train, val

    def start_epoch(self, epoch: int) -> None:
        """Reshuffle the training split for ``epoch`` (``DistributedSampler.set_epoch``) and reseed augmentation."""
        if self.train_sampler is not None and self.seeded is not None:
            self.train_sampler.set_epoch(epoch)
            self.seeded.epoch = epoch

    def wrap(self, model: torch.nn.Module, device: str) -> torch.nn.Module:
        """``model`` in ``DistributedDataParallel`` (rank 0's parameters are broadcast to all)."""
        ids = [torch.cuda.current_device()] if device == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled; tensors included)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        out: list[Any] = [None] * self.env.world_size
        dist.all_gather_object(out, obj)
        return out

    def train_totals(self, loss: float, acc: float, seen: int) -> tuple[float, float, int]:
        """One epoch's training ``(mean loss, accuracy, images)`` over all ranks from this rank's."""
        parts = self.all_gather((loss * seen, acc * seen, seen))
        n = sum(p[2] for p in parts)
        return (sum(p[0] for p in parts) / n, sum(p[1] for p in parts) / n, n) if n else (0.0, 0.0, 0)

    def gather_val(self, val: Any) -> Any:
        """The whole validation result (a :class:`.last_stage.ValOutput`) from each rank's shard:
        predictions in validation-index order, loss the mean over all usable images."""
        parts = self.all_gather((val.loss * len(val.labels), sorted(val.ok), val.preds, val.confs, val.labels))
        rows = sorted((i, p, c, t) for _, ok, ps, cs, ts in parts for i, p, c, t in zip(ok, ps, cs, ts))
        out = type(val)(0.0, 0.0)
        out.ok = {r[0] for r in rows}
        out.preds, out.confs, out.labels = [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]
        if rows:
            out.loss = sum(p[0] for p in parts) / len(rows)
            out.acc = sum(int(p == t) for p, t in zip(out.preds, out.labels)) / len(rows)
        return out

    def gather_bad_files(self, bad: dict[Path, str]) -> dict[Path, str]:
        """Every rank's undecodable files (path -> reason), merged."""
        merged: dict[Path, str] = {}
        for part in self.all_gather(bad):
            merged.update(part)
        return merged

    def close(self) -> None:
        """Leave the process group (when this context joined it)."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def val_shard(n: int, rank: int, world_size: int) -> list[int]:
    """This rank's validation indices: ``rank, rank + world_size, ...`` below ``n`` (the ranks'
    shards partition ``range(n)``: no image twice, none left out, no padding)."""
    return list(range(rank, n, world_size))


def freeze_batchnorm(modules: Sequence[torch.nn.Module]) -> None:
    """Put every BatchNorm layer in ``modules`` in eval mode (running statistics used, not updated)."""
    for m in modules:
        for layer in m.modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                layer.eval()
