"""Downloads from a misbehaving hub on 127.0.0.1: every failure is the documented untrained fallback
with its reason, within a deadline, and the Hugging Face cache is never left holding a bad file."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download

from squeezelens.core import weights
from squeezelens.core.weights import cached_weights, resolve_weights

REPO = "timm/test_resnet.r1_in1k"
FILE = "model.safetensors"
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please log in</body></html>\n" * 20


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, tiny_net) -> bytes:
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("served") / FILE
    save_file({k: v.contiguous() for k, v in tiny_net(1).state_dict().items()}, str(path))
    return path.read_bytes()


@pytest.fixture
def hub(hubserver_module: Any, hf_env: Callable[[str], None]) -> Iterator[Any]:
    with hubserver_module.FakeHub() as server:
        hf_env(server.url)
        yield server


def _finished_blobs() -> list[Path]:
    cache = Path(hf_constants.HF_HUB_CACHE)
    return [p for p in cache.rglob("*") if p.is_file() and "blobs" in p.parts and not p.name.endswith(".incomplete")]


def test_an_html_page_with_hub_headers_never_enters_the_cache(hub: Any, good: bytes) -> None:
    hub.add(REPO, FILE, HTML)
    source, reason = resolve_weights(REPO)
    assert source.untrained and reason and "bad weights file" in reason, reason
    assert _finished_blobs() == [] and cached_weights(REPO) is None
    hub.add(REPO, FILE, good)  # the hub is fixed: the next run downloads the real file
    source, reason = resolve_weights(REPO)
    assert source.kind == "download" and source.path is not None and source.path.read_bytes() == good, reason


def test_a_bad_file_already_in_the_cache_is_passed_over_and_fetched_again(hub: Any, good: bytes) -> None:
    hub.add(REPO, FILE, HTML)
    poisoned = hf_hub_download(REPO, FILE, endpoint=hub.url)  # as an earlier release let it in
    assert Path(poisoned).read_bytes() == HTML
    assert cached_weights(REPO) is None  # never used, even offline
    hub.add(REPO, FILE, good)
    source, reason = resolve_weights(REPO)
    assert source.kind == "download" and source.path is not None and source.path.read_bytes() == good, reason
    assert cached_weights(REPO) == source.path


def test_a_file_cut_short_is_not_kept(hub: Any, good: bytes) -> None:
    hub.add(REPO, FILE, good[: len(good) // 2])
    source, reason = resolve_weights(REPO)
    assert source.untrained and reason and "cut short" in reason, reason
    assert _finished_blobs() == []


def test_a_server_that_stalls_mid_file_falls_back_quickly(hub: Any, good: bytes,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "STALL_TIMEOUT_S", 1.0)
    hub.add(REPO, FILE, good)
    hub.chunk_size, hub.chunk_delay = len(good) // 3, 30.0  # one third, then silence
    calls: list[tuple[int, int | None]] = []
    t0 = time.monotonic()
    source, reason = resolve_weights(REPO, progress=lambda d, t: calls.append((d, t)))
    assert time.monotonic() - t0 < 10
    assert source.untrained and reason and "stalled" in reason, reason
    assert _finished_blobs() == [] and cached_weights(REPO) is None
    assert calls and all(t == len(good) for _, t in calls)


def test_a_server_that_trickles_meets_the_overall_deadline(hub: Any, good: bytes,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "DEADLINE_BASE_S", 1.0)
    monkeypatch.setattr(weights, "MIN_RATE_BYTES_S", 100 << 20)
    hub.add(REPO, FILE, good)
    hub.chunk_size, hub.chunk_delay = 2048, 0.02  # a byte stream that never stops long enough to stall
    t0 = time.monotonic()
    source, reason = resolve_weights(REPO)
    assert time.monotonic() - t0 < 10
    assert source.untrained and reason and "too slow" in reason, reason
    assert _finished_blobs() == []
