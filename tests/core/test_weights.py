"""Weights resolution: explicit file > Hugging Face cache > download > none.

Downloads run against a fake hub on 127.0.0.1 (``tests/core/hubserver.py``) serving a
random-weights ``seresnext26d_32x4d``; every test gets its own empty Hugging Face cache and,
unless it says otherwise, an ``HF_ENDPOINT`` on a closed port, so nothing ever leaves the machine.
"""

from __future__ import annotations

import hashlib
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file

from squeezelens.core.errors import DownloadCancelled, ModelNotFoundError, WeightsError
from squeezelens.core.model_loader import load_model
from squeezelens.core.weights import (
    CONNECT_TIMEOUT_S,
    cached_weights,
    load_state_dict_file,
    resolve_weights,
)

ARCH = "seresnext26d_32x4d"
REPO = "timm/seresnext26d_32x4d.bt_in1k"
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class Served:
    path: Path
    data: bytes
    state_dict: dict[str, torch.Tensor]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """Random (seed 0) weights of the real architecture, as the hub would serve them (~67 MB)."""
    import timm

    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in timm.create_model(ARCH).state_dict().items()}
    path = tmp_path_factory.mktemp("served") / WEIGHTS
    save_file(sd, str(path))
    return Served(path, path.read_bytes(), sd)


@pytest.fixture(scope="session")
def _hub_server(served: Served, hubserver_module: Any) -> Iterator[Any]:
    with hubserver_module.FakeHub() as hub:
        hub.add(REPO, WEIGHTS, served.data)
        yield hub


@pytest.fixture
def hf_cache() -> Path:
    return Path(hf_constants.HF_HUB_CACHE)


@pytest.fixture
def hub(_hub_server: Any, hf_env: Callable[[str], None]) -> Iterator[Any]:
    """The fake hub, with HF_ENDPOINT on it and a clean request log."""
    _hub_server.requests.clear()
    hf_env(_hub_server.url)
    yield _hub_server
    _hub_server.chunk_delay = 0.0
    _hub_server.fail_status = None
    _hub_server.files = {k: v for k, v in _hub_server.files.items() if k[0] == REPO}


def _finished_blobs(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and "blobs" in p.parts and "incomplete" not in p.name]


# ---------------------------------------------------------------------------------------------
# download and cache


def test_download_reports_progress_then_second_resolve_uses_cache(hub: Any, served: Served, hf_cache: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    source, reason = resolve_weights(REPO, progress=lambda done, total: calls.append((done, total)))

    assert (source.kind, reason, source.untrained) == ("download", None, False), reason
    assert source.path is not None and source.path.is_relative_to(hf_cache)
    assert source.path.read_bytes() == served.data
    assert hub.url in source.detail

    total = len(served.data)
    done = [d for d, _ in calls]
    assert len(calls) >= 3, calls  # several chunks of a ~67 MB file
    assert done == sorted(done) and done[-1] == total
    assert {t for _, t in calls} == {total}
    assert [r.method for r in hub.requests if r.filename == WEIGHTS].count("GET") == 1

    hub.requests.clear()
    again, reason = resolve_weights(REPO, progress=lambda *_: pytest.fail("no progress from the cache"))
    assert (again.kind, reason) == ("cache", None)
    assert again.path == source.path == cached_weights(REPO)
    assert hub.requests == []


def test_load_model_downloads_served_weights(hub: Any, served: Served) -> None:
    loaded = load_model(ARCH)

    assert loaded.untrained is False and loaded.untrained_reason is None
    assert loaded.weights.kind == "download"
    assert loaded.architecture == ARCH and len(loaded.labels) == 1000
    got = loaded.model.state_dict()
    assert got.keys() == served.state_dict.keys()
    assert all(torch.equal(got[k], v) for k, v in served.state_dict.items())
    assert len(hub.gets(WEIGHTS)) == 1


def test_cache_wins_even_offline_or_without_downloads(
    hub: Any, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = resolve_weights(REPO)
    hub.requests.clear()

    source, reason = resolve_weights(REPO, allow_download=False)
    assert (source.kind, source.path, reason) == ("cache", first.path, None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source, reason = resolve_weights(REPO)
    assert (source.kind, source.path, reason) == ("cache", first.path, None)
    assert hub.requests == []


def test_falls_back_to_pytorch_model_bin(hub: Any, tmp_path: Path) -> None:
    sd = {"w": torch.arange(6.0).reshape(2, 3)}
    torch.save(sd, tmp_path / "pytorch_model.bin")
    hub.add("someone/only-bin", "pytorch_model.bin", (tmp_path / "pytorch_model.bin").read_bytes())

    source, reason = resolve_weights("someone/only-bin")

    assert (source.kind, reason) == ("download", None)
    assert source.path is not None and source.path.name == "pytorch_model.bin"
    assert torch.equal(load_state_dict_file(source.path)["w"], sd["w"])
    heads = [r.filename for r in hub.requests if r.method == "HEAD"]
    assert heads[0] == WEIGHTS and "pytorch_model.bin" in heads


def test_repo_without_weights_gives_a_reason(hub: Any) -> None:
    hub.add("someone/no-weights", "README.md", b"nothing here")
    source, reason = resolve_weights("someone/no-weights")
    assert source.untrained and reason is not None and "no weights file" in reason


def test_model_without_hub_id_is_untrained() -> None:
    source, reason = resolve_weights(None)
    assert source.untrained and reason


# ---------------------------------------------------------------------------------------------
# cancel


def test_cancel_from_progress_callback(hub: Any, served: Served, hf_cache: Path) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int | None) -> None:
        seen.append(done)
        if done > 0:
            cancel.set()  # after the first chunk

    with pytest.raises(DownloadCancelled):
        resolve_weights(REPO, progress=progress, cancel=cancel)

    assert seen and max(seen) < len(served.data)
    assert cached_weights(REPO) is None
    assert _finished_blobs(hf_cache) == []

    source, reason = resolve_weights(REPO)  # a later, normal resolve still works
    assert (source.kind, reason) == ("download", None)
    assert source.path is not None and hashlib.sha256(source.path.read_bytes()).digest() == (
        hashlib.sha256(served.data).digest()
    )


def test_cancel_from_another_thread_while_server_is_slow(hub: Any, served: Served, hf_cache: Path) -> None:
    hub.chunk_delay = 0.02  # 1 MiB per 20 ms: the whole file would take over a second
    cancel, started = threading.Event(), threading.Event()
    outcome: list[BaseException | object] = []

    def worker() -> None:
        try:
            outcome.append(resolve_weights(REPO, progress=lambda d, _t: d and started.set(), cancel=cancel))
        except BaseException as e:  # handed to the test thread
            outcome.append(e)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    assert started.wait(10), "no progress reported"
    t0 = time.monotonic()
    cancel.set()
    t.join(10)

    assert not t.is_alive()
    assert isinstance(outcome[0], DownloadCancelled), outcome
    assert time.monotonic() - t0 < 2
    assert cached_weights(REPO) is None and _finished_blobs(hf_cache) == []


def test_cancel_set_before_start(hub: Any) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        resolve_weights(REPO, cancel=cancel)
    assert cached_weights(REPO) is None


# ---------------------------------------------------------------------------------------------
# offline


def test_unreachable_hub_gives_untrained_model_quickly() -> None:
    t0 = time.monotonic()
    loaded = load_model(ARCH)  # HF_ENDPOINT is a closed port on 127.0.0.1 (hf_env)
    elapsed = time.monotonic() - t0

    assert loaded.untrained is True
    assert loaded.weights.kind == "none"
    assert loaded.untrained_reason and "cannot reach" in loaded.untrained_reason
    assert elapsed < 5, elapsed


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_env_makes_no_request(hub: Any, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "1")
    source, reason = resolve_weights(REPO)
    assert source.untrained and reason and "OFFLINE" in reason
    assert hub.requests == []


def test_downloads_off_makes_no_request(hub: Any) -> None:
    source, reason = resolve_weights(REPO, allow_download=False)
    assert source.untrained and reason and "downloads are off" in reason
    assert hub.requests == []


def _resolve_within(seconds: float) -> tuple[Any, str | None, float]:
    """resolve_weights(REPO) in a thread, so a regression that hangs fails here instead of stalling."""
    outcome: list[Any] = []
    t0 = time.monotonic()
    worker = threading.Thread(target=lambda: outcome.append(resolve_weights(REPO)), daemon=True)
    worker.start()
    worker.join(seconds)
    elapsed = time.monotonic() - t0
    assert not worker.is_alive(), f"resolve_weights still running after {seconds} s"
    source, reason = outcome[0]
    return source, reason, elapsed


def test_hub_that_never_answers_falls_back_to_none(hf_env: Callable[[str], None]) -> None:
    """A server that accepts the TCP connection and then says nothing (a black-holing proxy)."""
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)  # connections complete in the kernel; nobody ever accepts or replies
        hf_env(f"http://127.0.0.1:{mute.getsockname()[1]}")
        # one HEAD bounded by CONNECT_TIMEOUT_S, plus huggingface_hub's once-per-process side request
        source, reason, elapsed = _resolve_within(3 * CONNECT_TIMEOUT_S + 1)

    assert source.untrained and reason and "Timeout" in reason, reason


def test_hub_that_is_down_falls_back_to_none_without_retrying(hub: Any) -> None:
    hub.fail_status = 503  # huggingface_hub alone would back off and retry for ~25 s
    source, reason, elapsed = _resolve_within(3 * CONNECT_TIMEOUT_S + 1)

    assert source.untrained and reason and "503" in reason, reason
    assert elapsed < CONNECT_TIMEOUT_S, elapsed
    assert len([r for r in hub.requests if r.filename]) == 1  # one HEAD, no retries


# ---------------------------------------------------------------------------------------------
# explicit weights files


class _Payload:
    """Pickles to "call Path.touch(marker)": what a malicious checkpoint would do with os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.fixture
def small_sd() -> dict[str, torch.Tensor]:
    return {"conv.weight": torch.randn(4, 3, 3, 3), "fc.weight": torch.randn(5, 4), "fc.bias": torch.zeros(5)}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_load_safetensors_file(tmp_path: Path, small_sd: dict[str, torch.Tensor]) -> None:
    save_file(small_sd, str(tmp_path / "w.safetensors"))
    assert _same(load_state_dict_file(tmp_path / "w.safetensors"), small_sd)


def test_safetensors_content_under_a_bin_name_loads(tmp_path: Path, small_sd: dict[str, torch.Tensor]) -> None:
    save_file(small_sd, str(tmp_path / "pytorch_model.bin"))
    assert _same(load_state_dict_file(str(tmp_path / "pytorch_model.bin")), small_sd)


def test_load_plain_torch_state_dict(tmp_path: Path, small_sd: dict[str, torch.Tensor]) -> None:
    torch.save(small_sd, tmp_path / "w.pth")
    assert _same(load_state_dict_file(tmp_path / "w.pth"), small_sd)


def test_load_training_checkpoint(tmp_path: Path, small_sd: dict[str, torch.Tensor]) -> None:
    torch.save({"state_dict": small_sd, "epoch": 3}, tmp_path / "checkpoint.pth.tar")
    assert _same(load_state_dict_file(tmp_path / "checkpoint.pth.tar"), small_sd)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, small_sd: dict[str, torch.Tensor]) -> None:
    marker = tmp_path / "pwned"
    torch.save({"state_dict": small_sd, "extra": _Payload(marker)}, tmp_path / "evil.pth")

    with pytest.raises(WeightsError, match=r"evil\.pth: refused:") as info:
        load_state_dict_file(tmp_path / "evil.pth")
    assert "safetensors" in str(info.value)
    assert not marker.exists()

    # the payload is live: an unrestricted load would have run it
    torch.load(tmp_path / "evil.pth", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_raw_pickle_is_refused(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Payload(marker), protocol=protocol))
    # protocol 2 reaches the forbidden global ("refused"); torch's safe unpickler stops protocol 4+
    # at its framing already, which reads as an unreadable file: refused either way, never run
    with pytest.warns(UserWarning) if protocol > 2 else nullcontext(), pytest.raises(WeightsError) as info:
        load_state_dict_file(tmp_path / "evil.pkl")
    assert protocol > 2 or "evil.pkl: refused:" in str(info.value)  # (the tmp path has "refused" in it)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["garbage.pth", "garbage.bin", "garbage.safetensors"])
def test_garbage_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\x80\x02" + bytes(range(256)) * 16)  # starts like a pickle
    with pytest.raises(WeightsError, match="not a (readable|valid)") as info:
        load_state_dict_file(tmp_path / name)
    assert ": refused" not in str(info.value)


@pytest.mark.parametrize("content", [b"hello world", b"PK\x03\x04" + bytes(64)])
def test_text_or_zip_that_is_no_checkpoint(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "w.pth").write_bytes(content)
    with pytest.raises(WeightsError, match="not a readable"):
        load_state_dict_file(tmp_path / "w.pth")


def test_checkpoint_without_tensors(tmp_path: Path) -> None:
    torch.save({"lr": 0.1, "epoch": 3}, tmp_path / "hparams.pth")
    with pytest.raises(WeightsError, match="not a state_dict"):
        load_state_dict_file(tmp_path / "hparams.pth")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_state_dict_file(tmp_path / "nope.safetensors")


# ---------------------------------------------------------------------------------------------
# load_model with explicit weights


def test_explicit_file_with_10_classes_wins_over_the_hub(hub: Any, served: Served, tmp_path: Path) -> None:
    torch.manual_seed(1)
    sd = dict(served.state_dict)
    sd["fc.weight"] = torch.randn(10, sd["fc.weight"].shape[1])
    sd["fc.bias"] = torch.randn(10)
    path = tmp_path / "ten.safetensors"
    save_file(sd, str(path))

    loaded = load_model(ARCH, weights=path)

    assert (loaded.weights.kind, loaded.weights.path, loaded.untrained) == ("file", path, False)
    assert loaded.model.num_classes == 10 and len(loaded.labels) == 10
    assert torch.equal(loaded.model.fc.weight, sd["fc.weight"])
    assert hub.requests == []  # an explicit file is never second-guessed by the hub


def test_weights_of_another_architecture_do_not_fit(tmp_path: Path) -> None:
    import timm

    path = tmp_path / "resnet18.safetensors"
    save_file(timm.create_model("resnet18").state_dict(), str(path))
    with pytest.raises(WeightsError, match="do not fit"):
        load_model(ARCH, weights=path)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_model(ARCH, weights=tmp_path / "nope.pth")


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_model("nonexistent_model")
    assert ARCH in str(info.value) and "seresnext50_32x4d" in str(info.value)


def test_probe_goes_through_a_configured_proxy(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from squeezelens.core.weights import hub_reachable

    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # the hub's host does not even resolve; only the proxy (here: the fake hub's socket) is reachable
    monkeypatch.setenv("HTTPS_PROXY", hub.url)
    assert hub_reachable("https://hub.invalid") is True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed}")
    assert hub_reachable("https://hub.invalid") is False
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert hub_reachable(hub.url) is True  # bypassed: straight to the host


def test_fifo_is_not_a_weights_file(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "w.pth"
    os.mkfifo(fifo)
    with pytest.raises(WeightsError, match="not a regular file"):
        load_state_dict_file(fifo)


def test_weights_file_errors_keep_the_path_apart_from_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsError) as info:
        load_state_dict_file(missing)
    assert (info.value.reason, info.value.path) == ("weights file not found", str(missing))
    assert str(info.value) == f"{missing}: weights file not found"
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError) as info:
        load_state_dict_file(junk)
    assert info.value.path == str(junk) and str(junk) not in info.value.reason
