"""The command line's contract: output formats, --output, exit codes, errors without tracebacks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from squeezelens import cli


@pytest.fixture()
def mixed_dir(tmp_path: Path, photo_dir: Path) -> Path:
    d = tmp_path / "mixed"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "cat.jpg").write_bytes((photo_dir / "chelsea.jpg").read_bytes())
    (d / "a_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (d / "z_coffee.png").write_bytes((photo_dir / "coffee.png").read_bytes())
    (d / "notes.txt").write_text("not an image, and not picked up")
    return d


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_mixed_folder_exit_1(capsys, mixed_dir: Path, confident_weights: Path) -> None:
    code, out, err = run(capsys, "classify", str(mixed_dir), "--weights", str(confident_weights),
                         "--format", "json", "--top-k", "3")
    assert code == 1
    data = json.loads(out)
    assert [Path(r["path"]).name for r in data] == ["a_broken.jpg", "cat.jpg", "z_coffee.png"]
    assert "error" in data[0] and "top" not in data[0]
    assert "damaged" in data[0]["error"]
    for r in data[1:]:
        assert r["model"] == "seresnext26d_32x4d"
        assert r["untrained"] is False
        assert len(r["top"]) == 3
        assert {"index", "label", "prob"} <= set(r["top"][0])
        probs = [t["prob"] for t in r["top"]]
        assert probs == sorted(probs, reverse=True)
    assert "1 of 3 inputs could not be classified" in err


def test_csv_and_output_file(capsys, tmp_path: Path, photo_dir: Path, confident_weights: Path) -> None:
    target = tmp_path / "out.csv"
    code, out, _ = run(capsys, "classify", str(photo_dir / "chelsea.jpg"), str(tmp_path / "missing.jpg"),
                       "--weights", str(confident_weights), "--format", "csv", "--output", str(target),
                       "--backend", "torch")
    assert code == 1
    assert out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 6  # 5 ranks + 1 error row
    assert [r["rank"] for r in rows[:5]] == ["1", "2", "3", "4", "5"]
    assert all(r["untrained"] == "false" for r in rows)
    assert "not found" in rows[5]["error"]
    assert not list(tmp_path.glob(".out.csv.tmp"))


def test_table_untrained_everywhere(capsys, photo_dir: Path) -> None:
    code, out, err = run(capsys, "classify", str(photo_dir / "chelsea.jpg"), "--offline")
    assert code == 0
    assert "UNTRAINED" in out and "[untrained]" in out
    assert "running untrained" in err
    code, out, _ = run(capsys, "classify", str(photo_dir / "chelsea.jpg"), "--offline", "--format", "json")
    assert json.loads(out)[0]["untrained"] is True
    code, out, _ = run(capsys, "classify", str(photo_dir / "chelsea.jpg"), "--offline", "--format", "csv")
    assert {r["untrained"] for r in csv.DictReader(io.StringIO(out))} == {"true"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["classify"], "the following arguments are required"),
        (["classify", "x.jpg", "--format", "xml"], "invalid choice"),
        (["classify", "x.jpg", "--model", "resnet9000", "--offline"], "unknown model"),
        (["classify", "x.jpg", "--top-k", "0"], "--top-k must be at least 1"),
        (["classify", "x.jpg", "--backend", "onnxruntime", "--device", "mps"], "ONNX Runtime does not run on mps"),
    ],
)
def test_bad_usage_exit_2(capsys, args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in err


def test_bad_weights_file_is_usage_error(capsys, tmp_path: Path, photo_dir: Path) -> None:
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "classify", str(photo_dir / "chelsea.jpg"), "--weights", str(bad))
    assert code == 2
    assert "not a readable weights file" in err


def test_empty_folder_is_one_error(capsys, tmp_path: Path, photo_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out, _ = run(capsys, "classify", str(tmp_path / "empty"), str(photo_dir / "coffee.png"),
                       "--offline", "--format", "json", "--backend", "torch")
    assert code == 1
    data = json.loads(out)
    assert "no images found" in data[0]["error"]
    assert "top" in data[1]


def test_models_lists_catalogue_and_cache_state(capsys, hf_env) -> None:
    from huggingface_hub import constants

    code, out, _ = run(capsys, "models", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["architecture"] for r in rows[:3]] == ["seresnext26d_32x4d", "seresnext26t_32x4d", "seresnext50_32x4d"]
    assert not any(r["cached"] for r in rows)  # the test's Hugging Face cache is empty

    # lay out one cached snapshot the way huggingface_hub does: refs/main -> snapshots/<commit>/file
    repo = Path(constants.HF_HUB_CACHE) / "models--timm--seresnext50_32x4d.racm_in1k"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    # a real (tiny) safetensors file: a damaged one counts as not cached (issue 15)
    import numpy as np
    from safetensors.numpy import save

    (repo / "snapshots" / commit / "model.safetensors").write_bytes(save({"x": np.zeros(1, np.float32)}))
    code, out, _ = run(capsys, "models", "--format", "json")
    assert [r["name"] for r in json.loads(out) if r["cached"]] == ["seresnext50_32x4d.racm_in1k"]
    code, out, _ = run(capsys, "models")
    assert "seresnext26d_32x4d.bt_in1k *" in out
    line = next(line for line in out.splitlines() if line.startswith("seresnext50_32x4d.racm_in1k"))
    assert line.endswith("cached") and "needs download" not in line


def test_unexpected_error_is_one_line(capsys, monkeypatch, photo_dir: Path) -> None:
    def boom(*a, **k):
        raise RuntimeError("CUDA error: device-side assert")

    monkeypatch.setattr("squeezelens.core.engine.Classifier.load", boom)
    code, _, err = run(capsys, "classify", str(photo_dir / "coffee.png"))
    assert code == 3
    assert err.strip() == ("squeezelens: internal error: RuntimeError: CUDA error: device-side assert "
                           "(set SQUEEZELENS_DEBUG=1 for details)")
    monkeypatch.setenv("SQUEEZELENS_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["classify", str(photo_dir / "coffee.png")])


def test_cancelled_is_exit_130(capsys, monkeypatch, photo_dir: Path) -> None:
    from squeezelens.core.errors import DownloadCancelled

    def cancelled(*a, **k):
        raise DownloadCancelled("download cancelled")

    monkeypatch.setattr("squeezelens.core.engine.Classifier.load", cancelled)
    code, out, err = run(capsys, "classify", str(photo_dir / "coffee.png"))
    assert (code, out, err) == (130, "", "squeezelens: download cancelled\n")


@pytest.mark.parametrize(
    ("args", "kind", "message"),
    [
        (["--top-k", "0"], "UsageError", "--top-k must be at least 1"),
        (["--batch-size", "0"], "UsageError", "--batch-size must be at least 1"),
        (["-o", "."], "UsageError", "--output . is a folder; give a file name"),
        (["-o", "nowhere/r.csv"], "OutputError", "--output nowhere/r.csv: folder nowhere does not exist"),
    ],
)
def test_option_errors_are_their_kind(monkeypatch, tmp_path: Path, args: list[str], kind: str, message: str) -> None:
    from squeezelens.cli import build_parser, classify

    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception) as info:
        classify.run(build_parser().parse_args(["classify", "x.jpg", *args]))
    assert type(info.value).__name__ == kind and str(info.value) == message


def test_cli_warnings_print_once_when_a_library_configured_the_root_logger(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime's tools call logging.basicConfig when the int8 quantizer imports them; the frozen app
    then printed every SqueezeLens warning twice, once as 'WARNING:squeezelens.core.precision:...'."""
    import io
    import logging

    from squeezelens.cli.progress import log_warnings_to_stderr

    monkeypatch.setattr(logging.getLogger("squeezelens"), "handlers", [])  # not an earlier test's closed stderr
    root_stream = io.StringIO()
    root_handler = logging.StreamHandler(root_stream)
    logging.getLogger().addHandler(root_handler)
    try:
        log_warnings_to_stderr()
        logging.getLogger("squeezelens.core.precision").warning("int8 precision refused: %s of 104 photos", "95.2%")
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert capsys.readouterr().err == "squeezelens: warning: int8 precision refused: 95.2% of 104 photos\n"
    assert root_stream.getvalue() == ""
