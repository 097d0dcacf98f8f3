"""Shared fixtures: random-weights files with fixed seeds and real photos from skimage.data."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from huggingface_hub import constants as hf_constants
from PIL import Image

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ARCH = "seresnext26d_32x4d"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def _load_helper(filename: str) -> ModuleType:
    """A helper module of tests/core, loaded by its path: --import-mode=importlib keeps test folders off sys.path."""
    name = f"squeezelens_tests_{Path(filename).stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "core" / filename)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


# the odd-photo builders (ICC profiles, CMYK, bad EXIF), imported at module level by several test files:
# `import squeezelens_tests_photo_files as pf` (this conftest runs before any test module is imported)
_load_helper("photo_files.py")


@pytest.fixture(scope="session")
def shapes_module() -> ModuleType:
    """``tests/core/shapes_dataset.py``: a made-up finetuning dataset of coloured shapes and textures."""
    return _load_helper("shapes_dataset.py")


@pytest.fixture(scope="session")
def hubserver_module() -> ModuleType:
    """``tests/core/hubserver.py``: a fake Hugging Face hub on 127.0.0.1."""
    return _load_helper("hubserver.py")


@pytest.fixture(scope="session")
def confident_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seresnext26d_32x4d state dict, seed 0, with the head scaled up so top-5 orders are not ties."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model(ARCH)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd["fc.weight"] = sd["fc.weight"] * 100.0
    path = tmp_path_factory.mktemp("weights") / f"{ARCH}-seed0.safetensors"
    save_file(sd, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init timm ``test_resnet`` saved as a model folder (seed 0): a base model for finetune and
    review tests where the SE-ResNeXt itself is not the point (its forward is ~50x cheaper)."""
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=4)
    return save_model(net, tmp_path_factory.mktemp("backbone") / "test_resnet", ["a", "b", "c", "d"])


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real photos from skimage.data, saved as JPEG and PNG."""
    from skimage import data

    d = tmp_path_factory.mktemp("photos")
    for i, name in enumerate(PHOTOS):
        arr = getattr(data, name)()
        img = Image.fromarray(arr)
        img.save(d / (f"{name}.jpg" if i % 2 == 0 else f"{name}.png"), **({"quality": 92} if i % 2 == 0 else {}))
    return d


@pytest.fixture(scope="session")
def odd_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made-up images of odd sizes and modes whose RGB conversion timm's snippet defines the same way."""
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("odd")
    Image.fromarray(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)).save(d / "one_pixel.png")
    Image.fromarray(rng.integers(0, 256, (500, 3), dtype=np.uint8), "L").save(d / "tall_gray.png")
    Image.fromarray(rng.integers(0, 256, (13, 700, 3), dtype=np.uint8)).save(d / "wide.bmp")
    Image.fromarray(rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)).convert("P").save(d / "palette.gif")
    Image.fromarray(rng.integers(0, 256, (61, 45, 4), dtype=np.uint8)).convert("CMYK").save(d / "cmyk.tiff")
    Image.fromarray(rng.integers(0, 2, (33, 77), dtype=np.uint8) * 255, "L").convert("1").save(d / "bilevel.png")
    opaque = rng.integers(0, 256, (250, 333, 4), dtype=np.uint8)
    opaque[..., 3] = 255
    Image.fromarray(opaque, "RGBA").save(d / "opaque_rgba.webp", lossless=True)
    return d


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(autouse=True)
def _squeezelens_logger_propagates() -> Iterator[None]:
    """The CLI stops the ``squeezelens`` logger propagating (its warnings print once, in its format) and
    adds its stderr handler; both undone after each test, so pytest's caplog (a root handler) sees later
    tests' records and no warning goes to an earlier test's closed stream."""
    import logging

    logger = logging.getLogger("squeezelens")
    before, handlers = logger.propagate, list(logger.handlers)
    yield
    logger.propagate = before
    logger.handlers[:] = handlers  # not the CLI's handler on this test's captured (soon closed) stderr


@pytest.fixture(autouse=True)
def hf_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Every test: an empty, private Hugging Face cache and a hub on a closed port.

    The user's own cache (which may hold real weights) and the real hub stay out of every test.
    Returns ``point_hub(url)`` for the tests that serve a fake hub.

    ``huggingface_hub`` reads its environment once, at import, into ``constants``: the cache
    folder (``try_to_load_from_cache`` / ``hf_hub_download`` use ``constants.HF_HUB_CACHE``), the
    offline flag, and ``ENDPOINT`` (its own side requests go there). So both are patched.
    """
    home = tmp_path_factory.mktemp("hf_home")
    cache = home / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HOME", str(home))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # SqueezeLens' own cache (exported graphs, feature caches): private to each test too
    monkeypatch.setenv("SQUEEZELENS_CACHE_DIR", str(tmp_path_factory.mktemp("sl_cache")))

    def point_hub(url: str) -> None:
        # as if the process had started with HF_ENDPOINT=url (hf_hub_url needs both to agree)
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setattr(hf_constants, "ENDPOINT", url)
        monkeypatch.setattr(
            hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
        )

    point_hub(_closed_port_url())
    return point_hub
