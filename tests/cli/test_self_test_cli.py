"""``squeezelens --self-test`` through the command line, in-process: the Qt-free checks, and Qt checks
that are missing or do not import (a passing run from source, in a fresh process, is
tests/gui/test_self_test_process.py)."""

from __future__ import annotations

import io

import pytest

from squeezelens import cli
from squeezelens.core import self_test


def test_missing_class_tables_fail_with_a_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a bundle that forgot timm/data/_info: class names and the labelled top-5 both fail."""
    import timm.data

    def missing(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("timm/data/_info/imagenet_synsets.txt")

    monkeypatch.setattr(timm.data, "ImageNetInfo", missing)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    assert cli.main(["--self-test"], qt_checks=lambda: []) == self_test.EXIT_FAILED
    text = out.getvalue()
    assert "  FAIL  class names: timm's ImageNet class names did not load (timm/data/_info is missing)" in text
    assert "  FAIL  classify: the top-5 has no class names: ['class " in text
    assert "  ok    sample image: " in text
    assert text.rstrip().endswith("self-test FAILED: 2 of 5 checks: class names, classify")


def test_cli_without_qt_checks_says_they_were_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(self_test, "core_checks", lambda: [])
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    assert cli.main(["--self-test"]) == self_test.EXIT_FAILED
    assert "FAIL  Qt: not checked: this entry point gave no Qt checks" in out.getvalue()


def test_pyside6_that_does_not_import_is_a_fail_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry point imports the Qt checks (PySide6) only for --self-test: an ImportError there is a FAIL
    line and exit 1, not 'internal error' (exit 3), and the checks before it still run."""
    monkeypatch.setattr(self_test, "core_checks", lambda: [("sample image", self_test.check_sample_image)])

    def qt_checks() -> list:
        raise ImportError("libQt6Core.so.6: cannot open shared object file: No such file or directory")

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    assert cli.main(["--self-test"], qt_checks=qt_checks) == self_test.EXIT_FAILED
    text = out.getvalue()
    assert "  ok    sample image: " in text
    assert ("  FAIL  Qt: PySide6 does not import: ImportError: libQt6Core.so.6: cannot open shared object file"
            in text)
    assert text.rstrip().endswith("self-test FAILED: 1 of 2 checks: Qt")
