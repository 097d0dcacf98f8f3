"""The CUDA path's out-of-memory handling, with fakes (no GPU here): retry smaller, then move to the CPU."""

from __future__ import annotations

import logging

import pytest
import torch

from squeezelens.core import cuda_path
from squeezelens.core.cuda_path import GpuOutOfMemory, OomRetry, is_out_of_memory


def fake_forward(fits: int, calls: list[int]):
    """A forward that runs out of memory on batches larger than ``fits``."""

    def forward(chunk):
        calls.append(len(chunk))
        if len(chunk) > fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in chunk]

    return forward


def test_oom_retries_in_halves_and_remembers_the_size() -> None:
    freed: list[bool] = []
    retry = OomRetry(free_memory=lambda: freed.append(True))
    calls: list[int] = []
    assert retry.run(fake_forward(3, calls), list(range(10))) == [x * 10 for x in range(10)]
    assert calls == [10, 5, 2, 2, 2, 2, 2]  # 10 fails, 5 fails, then pieces of 2 (5 // 2)
    assert retry.limit == 2 and len(freed) == 2

    calls.clear()
    assert retry.run(fake_forward(3, calls), list(range(5))) == [x * 10 for x in range(5)]
    assert calls == [2, 2, 1]  # the next batch starts at the size that worked


def test_oom_on_a_single_input_gives_up_and_other_errors_pass() -> None:
    retry = OomRetry(free_memory=lambda: None)
    with pytest.raises(GpuOutOfMemory, match="single image"):
        retry.run(fake_forward(0, []), [1, 2, 3])

    def broken(chunk):
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError, match="not a memory problem"):
        retry.run(broken, [1, 2])


def test_is_out_of_memory() -> None:
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))  # what older torch raised
    assert not is_out_of_memory(RuntimeError("CUDA error: device-side assert triggered"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_no_nvidia_driver_means_no_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(cuda_path.ctypes, "CDLL", no_library)
    monkeypatch.setattr(cuda_path.sys, "platform", "linux")
    assert cuda_path.cuda_driver_device_count() == 0
    assert cuda_path.accelerator_may_exist() is False


def test_classifier_moves_to_cpu_when_the_gpu_is_full(photo_dir, caplog: pytest.LogCaptureFixture) -> None:
    """A GPU runner that cannot fit even one image: the batch is redone on the CPU, and it says so."""
    import timm

    from squeezelens.core.engine import Classifier, TorchRunner
    from squeezelens.core.labels import label_names_for
    from squeezelens.core.model_loader import LoadedModel
    from squeezelens.core.weights import WeightsSource

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=7).eval()
    loaded = LoadedModel(net, "tiny", "test_resnet", dict(net.pretrained_cfg), label_names_for({}, 7),
                         WeightsSource("file", None, "test"))
    reference = Classifier(loaded, "cpu").classify(sorted(photo_dir.iterdir()), top_k=3)

    class FullGpu(TorchRunner):
        def top_k(self, items, k):
            calls.append(len(items))
            retry = OomRetry(free_memory=lambda: None)
            return retry.run(fake_forward(0, []), items)

    calls: list[int] = []
    clf = Classifier(loaded, "cpu", runner=FullGpu(net, "cpu"))
    clf._runner.device = "cuda"  # as if it had been loaded on a GPU
    assert clf.device == "cuda"
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        out = clf.classify(sorted(photo_dir.iterdir()), top_k=3, batch_size=2)
    assert calls == [2]  # the first batch failed on the "GPU"; everything after ran on the CPU
    assert clf.device == "cpu" and clf.backend == "torch"
    assert "ran out of memory" in caplog.text and "CPU" in caplog.text
    assert "moved off the GPU" in clf.backend_note
    for a, b in zip(out, reference):
        assert [t.index for t in a.top] == [t.index for t in b.top]
        assert [t.prob for t in a.top] == pytest.approx([t.prob for t in b.top], abs=1e-6)
