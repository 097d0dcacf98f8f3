"""Weights shipped with an installer (packaging/build.py --weights): looked up before the user's cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

from squeezelens.core import paths
from squeezelens.core.weights import cached_weights, resolve_weights

REPO = "timm/seresnext26d_32x4d.bt_in1k"


def put_in_cache(cache: Path, repo: str = REPO, content: bytes = b"weights", revision: str = "0123abc") -> Path:
    """A hub cache entry as huggingface_hub lays it out: refs/main names the snapshot holding the file."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    file = folder / "snapshots" / revision / "model.safetensors"
    file.parent.mkdir(parents=True)
    # a real (tiny) safetensors file, ``content`` in its metadata: a damaged one counts as not cached (issue 15)
    import numpy as np
    from safetensors.numpy import save

    file.write_bytes(save({"x": np.zeros(1, np.float32)}, metadata={"content": content.decode()}))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    return file


def test_bundled_weights_come_before_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = put_in_cache(Path(hf_constants.HF_HUB_CACHE), content=b"user")
    assert cached_weights(REPO) == user
    bundled = put_in_cache(tmp_path / "hf-hub", content=b"bundled")
    monkeypatch.setenv(paths.BUNDLED_HUB_ENV, str(tmp_path / "hf-hub"))
    assert cached_weights(REPO) == bundled
    source, reason = resolve_weights(REPO, allow_download=False)
    assert (source.kind, source.path, reason) == ("cache", bundled, None)
    assert source.detail == f"weights bundled with the app ({REPO})"


def test_user_cache_still_serves_what_the_bundle_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    put_in_cache(tmp_path / "hf-hub", repo="timm/seresnext50_32x4d.racm_in1k")
    monkeypatch.setenv(paths.BUNDLED_HUB_ENV, str(tmp_path / "hf-hub"))
    assert cached_weights(REPO) is None
    user = put_in_cache(Path(hf_constants.HF_HUB_CACHE))
    source, _ = resolve_weights(REPO, allow_download=False)
    assert (source.path, source.detail) == (user, f"Hugging Face cache ({REPO})")


def test_frozen_app_looks_in_its_own_hf_hub_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.BUNDLED_HUB_ENV, raising=False)
    assert paths.bundled_hub_cache() is None  # from source
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.bundled_hub_cache() is None  # a bundle built without --weights
    file = put_in_cache(tmp_path / "hf-hub")
    assert paths.bundled_hub_cache() == tmp_path / "hf-hub"
    assert cached_weights(REPO) == file
