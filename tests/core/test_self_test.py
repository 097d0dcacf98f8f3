"""``squeezelens --self-test``, its Qt-free half: the checks and the runner, in-process (through the
command line: tests/cli/test_self_test_cli.py; a passing run from source, in a fresh process, is
tests/gui/test_self_test_process.py)."""

from __future__ import annotations

import io

from squeezelens.core import self_test


def test_a_check_that_raises_anything_is_one_fail_line() -> None:
    def broken() -> str:
        raise ImportError("libQt6Multimedia.so.6: cannot open shared object file")

    out = io.StringIO()
    assert self_test.run([("Qt multimedia backend", broken)], out=out) == self_test.EXIT_FAILED
    assert ("  FAIL  Qt multimedia backend: ImportError: libQt6Multimedia.so.6: cannot open shared object file"
            in out.getvalue())
    assert "Traceback" not in out.getvalue()
