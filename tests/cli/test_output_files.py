"""Files the command line writes get the same permissions: ``classify --output`` and the ``finetune
--json`` report are both 0644 when new (as ``open(path, "w")`` gives under umask 022), or keep the
mode of the file they replace. (The report used to keep mkstemp's 0600.)"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from squeezelens.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
REPORT = {"val_accuracy": 0.5, "class_names": ["a", "b"]}


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture()
def instant_finetune(monkeypatch: pytest.MonkeyPatch) -> None:
    """A finetune that returns a result at once: these tests are about the report file, not training."""
    result = SimpleNamespace(to_dict=lambda: REPORT)
    monkeypatch.setattr("squeezelens.core.finetune.finetune", lambda config, on_event, cancel: result)
    monkeypatch.setattr("squeezelens.cli.finetune.format_summary", lambda r: "saved\n")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_both(tmp_path: Path, photo: Path, weights: Path, classified: Path, report: Path) -> None:
    (tmp_path / "data").mkdir(exist_ok=True)
    assert main(["classify", str(photo), "--weights", str(weights), "--backend", "torch", "--format", "json",
                 "-o", str(classified)]) == 0
    assert main(["finetune", str(tmp_path / "data"), "-o", str(tmp_path / "model"), "--json", str(report)]) == 0


def test_new_report_is_0644_like_classify_output(tmp_path: Path, photo_dir: Path, confident_weights: Path,
                                                 instant_finetune: None, capsys: pytest.CaptureFixture) -> None:
    classified, report = tmp_path / "classified.json", tmp_path / "report.json"
    write_both(tmp_path, photo_dir / "coffee.png", confident_weights, classified, report)
    assert mode(classified) == 0o644
    assert mode(report) == mode(classified)
    assert report.read_text(encoding="utf-8") == json.dumps(REPORT, indent=2) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classified.json", "data", "report.json"]  # no temp files


def test_replaced_files_keep_their_mode(tmp_path: Path, photo_dir: Path, confident_weights: Path,
                                        instant_finetune: None, capsys: pytest.CaptureFixture) -> None:
    classified, report = tmp_path / "classified.json", tmp_path / "report.json"
    for old in (classified, report):
        old.write_text("old")
        os.chmod(old, 0o640)
    write_both(tmp_path, photo_dir / "coffee.png", confident_weights, classified, report)
    assert mode(classified) == mode(report) == 0o640
    assert json.loads(report.read_text(encoding="utf-8")) == REPORT
    assert json.loads(classified.read_text(encoding="utf-8"))[0]["top"]


def test_unwritable_report_is_an_output_error(tmp_path: Path, instant_finetune: None,
                                              capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "data").mkdir()
    code = main(["finetune", str(tmp_path / "data"), "-o", str(tmp_path / "model"),
                 "--json", str(tmp_path / "no such folder" / "report.json")])
    assert code == 2
    assert capsys.readouterr().err.startswith("squeezelens: error: --json ")
