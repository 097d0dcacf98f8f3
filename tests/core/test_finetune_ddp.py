"""Deep finetuning under torchrun (issue 18): 2 gloo processes on the CPU against 1 process with the same
global batch, each started by ``python -m torch.distributed.run`` on a free 127.0.0.1 port.

tests/core/ddp_worker.py runs the finetune in each process and reports a digest of the trainable
parameters after every update and every write it made under the output or checkpoint folder.
A tiny timm model (test_resnet, 32 px) and 40 generated images keep it to seconds of training.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from safetensors.torch import load_file

from squeezelens.core.finetune.distributed import DistEnv, detect, val_shard

WORKER = Path(__file__).with_name("ddp_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(nproc: int, data: Path, out: Path, base: Path, report: Path, batch: int, cache: Path) -> list[dict]:
    report.mkdir()
    env = {**os.environ, "SQUEEZELENS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           str(WORKER), str(data), str(out), str(base), str(report), str(batch), "2"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((report / f"rank{r}.json").read_text()) for r in range(nproc)]


@pytest.fixture(scope="module")
def tiny(shapes_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import timm

    from squeezelens.core.saved_model import save_model

    root = tmp_path_factory.mktemp("ddp")
    data = shapes_module.make_dataset(root / "data", per_class=10, size=48, seed=1)  # 32 train, 8 val
    torch.manual_seed(0)
    base = save_model(timm.create_model("test_resnet", num_classes=4), root / "base", ["a", "b", "c", "d"])
    return data, base


def test_detect_reads_torchruns_variables() -> None:
    assert detect({}) is None
    assert detect({"RANK": "3", "WORLD_SIZE": "4"}) is None  # LOCAL_RANK missing: not torchrun
    env = detect({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert env == DistEnv(3, 4, 1) and not env.is_main


@pytest.mark.parametrize("n, world", [(8, 2), (7, 3), (2, 4), (0, 2)])
def test_validation_shards_partition_the_images(n: int, world: int) -> None:
    shards = [val_shard(n, r, world) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))  # each image once, none padded


@pytest.mark.slow
def test_two_gloo_processes_match_one_and_only_rank_0_writes(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    data, base = tiny
    two = torchrun(2, data, tmp_path / "out2", base, tmp_path / "rep2", 4, tmp_path / "cache2")
    one = torchrun(1, data, tmp_path / "out1", base, tmp_path / "rep1", 8, tmp_path / "cache1")

    # identical parameters on both ranks after every update (2 epochs x 32 images / global batch 8)
    assert len(two[0]["digests"]) == 8 and two[0]["digests"] == two[1]["digests"]
    # the saved model is within float rounding of one process with the same global batch
    a, b = load_file(tmp_path / "out1" / "model.safetensors"), load_file(tmp_path / "out2" / "model.safetensors")
    assert a.keys() == b.keys()
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert diff < 1e-5, diff
    assert two[0]["history"] == pytest.approx(one[0]["history"], abs=1e-5)
    # only rank 0 wrote the checkpoint and the model: rank 1's attempts would be in its audit list
    assert two[1]["writes"] == [] and two[1]["version"] is None
    assert any("finetune-checkpoints" in w for w in two[0]["writes"])
    assert any(str(tmp_path / "out2") in w for w in two[0]["writes"])
    assert two[0]["version"] == 1
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["config.json", "model.safetensors", "versions"]
    assert not list((tmp_path / "cache2" / "finetune-checkpoints").glob("*/*"))  # removed after the save
