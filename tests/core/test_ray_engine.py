"""``classify --engine ray`` on a real local Ray cluster (``ray.init(num_cpus=2)``, not local mode):
the same answers as the local engine for every input, one row each, odd images included."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 40 generated images: JPEGs with EXIF orientations, CMYK JPEG and TIFF, grey, palette, RGBA,
    16-bit, a broken file and an empty file."""
    d = tmp_path_factory.mktemp("ray_images")
    rng = np.random.default_rng(3)
    for i in range(26):
        arr = rng.integers(0, 256, (30 + i, 60 - i, 3), dtype=np.uint8)
        img = Image.fromarray(arr)
        exif = Image.Exif()
        exif[0x0112] = 1 + i % 8  # every EXIF orientation
        img.save(d / f"photo_{i:02d}.jpg", quality=90, exif=exif.tobytes())
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (48, 40, 4), dtype=np.uint8), "CMYK").save(d / f"cmyk_{i}.jpg")
        Image.fromarray(rng.integers(0, 256, (33, 41, 4), dtype=np.uint8), "CMYK").save(d / f"cmyk_{i}.tiff")
    Image.fromarray(rng.integers(0, 256, (50, 50), dtype=np.uint8), "L").save(d / "grey.png")
    Image.fromarray(rng.integers(0, 256, (45, 35, 3), dtype=np.uint8)).convert("P").save(d / "palette.gif")
    Image.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8), "RGBA").save(d / "alpha.png")
    Image.fromarray(rng.integers(0, 65535, (40, 30), dtype=np.uint16)).save(d / "deep16.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (d / "empty.png").write_bytes(b"")
    return d


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import timm
    import torch

    from squeezelens.core.saved_model import save_model

    torch.manual_seed(2)
    net = timm.create_model("test_resnet", num_classes=4)
    with torch.no_grad():
        net.get_classifier().weight.mul_(20)
    return save_model(net, tmp_path_factory.mktemp("ray_model") / "tiny", ["ant", "bee", "cow", "doe"])


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a real cluster: raylet, workers
    yield
    ray.shutdown()


def records(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        r = json.loads(line)
        r.pop("time_ms", None)
        out.append(r)
    return out


def test_ray_equals_local(tmp_path: Path, odd_folder: Path, tiny_model: Path, cluster, capsys) -> None:
    from squeezelens import cli

    n_files = len(list(odd_folder.iterdir()))
    assert n_files >= 40
    common = ["classify", str(odd_folder), str(tmp_path / "missing.jpg"), "--model", str(tiny_model),
              "--top-k", "4", "--batch-size", "8", "--format", "jsonl", "--unknown-threshold", "0.45"]
    assert cli.main(common) == 1
    local = records(capsys.readouterr().out)
    out = tmp_path / "ray.jsonl"
    assert cli.main([*common, "--engine", "ray", "--workers", "2", "-o", str(out)]) == 1
    remote = records(out.read_text())
    assert [r["path"] for r in remote] == [r["path"] for r in local]  # one row per input, in order
    assert len(remote) == n_files + 1
    for a, b in zip(local, remote):
        assert a.keys() == b.keys(), a["path"]
        if "error" in a:
            assert a["error"] == b["error"]
            continue
        assert [t["index"] for t in a["top"]] == [t["index"] for t in b["top"]], a["path"]
        assert a["unknown"] == b["unknown"], a["path"]  # the actors apply the driver's threshold
        np.testing.assert_allclose([t["prob"] for t in a["top"]], [t["prob"] for t in b["top"]], atol=1e-6)
    assert {r["unknown"] for r in remote if "error" not in r} == {True, False}  # the threshold splits them
    errors = {Path(r["path"]).name: r["error"] for r in remote if "error" in r}
    assert set(errors) == {"broken.jpg", "empty.png", "missing.jpg"}
    assert "empty file" in errors["empty.png"] and "not found" in errors["missing.jpg"]


def test_actor_decodes_bytes_like_the_loader(odd_folder: Path, tiny_model: Path) -> None:
    """The actor in-process (no cluster): an EXIF-rotated JPEG from bytes is the local prediction."""
    from squeezelens.core.engine import Classifier
    from squeezelens.core.ray_engine import ClassifierActor, prediction_from_json

    actor = ClassifierActor({"model": str(tiny_model), "weights": None, "device": "cpu", "backend": "torch",
                             "fast_decode": True, "allow_download": False}, top_k=4, batch_size=4)
    paths = [odd_folder / "photo_05.jpg", odd_folder / "cmyk_1.jpg"]
    batch = {"i": np.arange(2), "path": np.array([str(p) for p in paths]), "failed": np.array(["", ""]),
             "data": [p.read_bytes() for p in paths], "readable": np.array([True, True])}
    got = [prediction_from_json(t) for t in actor(batch)["pred"]]
    want = Classifier.load(str(tiny_model), backend="torch", device="cpu").classify(paths, top_k=4)
    for a, b in zip(got, want):
        assert a.source == b.source
        assert [t.index for t in a.top] == [t.index for t in b.top]
        assert abs(a.top[0].prob - b.top[0].prob) < 1e-6
    assert not list(actor.spool.iterdir())  # spooled bytes are removed after each batch
    with Image.open(io.BytesIO(paths[0].read_bytes())) as im:
        assert im.getexif()[0x0112] == 6  # the file really is rotated (orientation 6)


def test_missing_ray_is_a_clear_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from squeezelens.core.errors import UsageError
    from squeezelens.core.ray_engine import _require_ray

    real_import = builtins.__import__

    def no_ray(name, *args, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UsageError, match=r"pip install 'squeezelens\[cluster\]'"):
        _require_ray()


def test_actor_follows_the_cli_options(tmp_path: Path, tiny_model: Path) -> None:
    """``--unknown-threshold`` and ``--no-colour-management`` reach every actor: a Display P3 photo
    is classified on the stored pixels, and the verdict uses the driver's threshold."""
    from squeezelens_tests_photo_files import photo, profile_bytes

    from squeezelens.core.engine import Classifier
    from squeezelens.core.ray_engine import ClassifierActor, prediction_from_json

    path = tmp_path / "p3.jpg"
    photo((96, 80), seed=3).save(path, quality=95, icc_profile=profile_bytes("display_p3"))
    kwargs = {"model": str(tiny_model), "weights": None, "device": "cpu", "backend": "torch",
              "fast_decode": True, "allow_download": False}
    batch = {"i": np.arange(1), "path": np.array([str(path)]), "failed": np.array([""]),
             "data": [path.read_bytes()], "readable": np.array([True])}

    def via_actor(colour_manage: bool | None, threshold: float | str) -> Any:
        actor = ClassifierActor({**kwargs, "unknown_threshold": threshold}, top_k=4, batch_size=4,
                                colour_manage=colour_manage)
        try:
            return prediction_from_json(actor(batch)["pred"][0])
        finally:
            actor.clf.close()
            shutil.rmtree(actor.spool, ignore_errors=True)

    with Classifier.load(str(tiny_model), backend="torch", device="cpu") as raw:
        raw.colour_manage = False
        want = raw.classify([path], top_k=4)[0]
    managed, stored = via_actor(None, "off"), via_actor(False, 0.99)
    assert abs(stored.top[0].prob - want.top[0].prob) < 1e-6 and stored.unknown is True
    assert abs(managed.top[0].prob - want.top[0].prob) > 1e-6 and managed.unknown is None
