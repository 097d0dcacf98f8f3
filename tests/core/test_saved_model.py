"""Saved models: timm's local-dir layout both ways, atomic replacement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch

from squeezelens import Classifier
from squeezelens.core.errors import OutputError, SqueezeLensError, UsageError
from squeezelens.core.saved_model import save_model

LABELS = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def small_model() -> torch.nn.Module:
    torch.manual_seed(1)
    model = timm.create_model("seresnext26d_32x4d", num_classes=3).eval()
    with torch.no_grad():
        model.fc.weight.mul_(50)
    return model


def test_saved_model_round_trip_with_timm(tmp_path: Path, small_model, photo_dir: Path) -> None:
    out = save_model(small_model, tmp_path / "colours", LABELS)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architecture"] == "seresnext26d_32x4d"
    assert cfg["num_classes"] == 3 and cfg["label_names"] == LABELS
    assert "pretrained_cfg" in cfg

    # plain timm loads what we saved ...
    reloaded = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(reloaded(x), small_model(x))

    # ... and SqueezeLens gives the same predictions as timm on real photos
    clf = Classifier.load(str(out), device="cpu", fast_decode=False, backend="torch")
    assert clf.labels == LABELS and not clf.untrained
    files = sorted(photo_dir.iterdir())
    ours = clf.classify(files, top_k=3)
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=reloaded))
    from PIL import Image

    for f, r in zip(files, ours):
        with torch.no_grad():
            p = reloaded(transform(Image.open(f).convert("RGB")).unsqueeze(0)).softmax(-1)[0]
        assert r.top[0].index == int(p.argmax())
        assert r.top[0].label == LABELS[r.top[0].index]
        assert [t.prob for t in r.top] == pytest.approx(sorted(p.tolist(), reverse=True), abs=1e-5)


def test_squeezelens_loads_what_timm_saves(tmp_path: Path, small_model) -> None:
    from timm.models import save_for_hf

    save_for_hf(small_model, str(tmp_path / "timm_saved"), model_config={"label_names": LABELS},
                safe_serialization=True)
    clf = Classifier.load(str(tmp_path / "timm_saved"), device="cpu", backend="torch")
    assert clf.labels == LABELS
    assert clf.loaded.weights.kind == "dir"


def test_failed_save_keeps_previous_model(tmp_path: Path, small_model, monkeypatch) -> None:
    out = save_model(small_model, tmp_path / "m", LABELS)
    before = (out / "model.safetensors").read_bytes()

    def broken_save(model, directory, **kwargs):
        Path(directory, "model.safetensors").write_bytes(b"half written")
        raise OSError("disk full")

    monkeypatch.setattr("timm.models.save_for_hf", broken_save)
    with pytest.raises(OutputError, match="disk full"):  # a person's message, not the library's exception
        save_model(small_model, out, LABELS)
    assert (out / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temp folders left behind


def test_label_count_must_match(tmp_path: Path, small_model) -> None:
    with pytest.raises(UsageError, match="2 label names"):
        save_model(small_model, tmp_path / "x", ["a", "b"])
    assert not (tmp_path / "x").exists()


def test_weights_may_name_a_saved_folder(tmp_path: Path, small_model) -> None:
    out = save_model(small_model, tmp_path / "m", LABELS)
    clf = Classifier.load("seresnext26d_32x4d", weights=out, device="cpu", backend="torch")
    assert clf.labels == LABELS and clf.loaded.weights.kind == "dir"
    (tmp_path / "plain").mkdir()
    with pytest.raises(SqueezeLensError, match="without config.json"):
        Classifier.load("seresnext26d_32x4d", weights=tmp_path / "plain", device="cpu")
