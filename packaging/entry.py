"""PyInstaller entry point of both executables: ``squeezelens`` (console: the CLI, and the app when given
no command) and, on Windows and macOS, ``squeezelens-gui`` (windowed: no console window; the .app's)."""

import multiprocessing
import os
import sys
from pathlib import Path


def windowed_self_test() -> int:
    """``squeezelens-gui.exe --self-test`` on Windows has no console to print to (stdout is None): write the
    report to a file in the temp folder and show it in a message box."""
    import ctypes
    import io
    import tempfile

    from squeezelens.__main__ import gui_main

    sys.stdout = sys.stderr = buf = io.StringIO()
    code = gui_main()
    report = Path(tempfile.gettempdir()) / "squeezelens-self-test.txt"
    report.write_text(buf.getvalue(), encoding="utf-8")
    text = buf.getvalue()[-3000:] + f"\n(the whole report: {report}; `squeezelens.exe --self-test` prints it)"
    ctypes.windll.user32.MessageBoxW(None, text, "SqueezeLens self-test", 0x40 if code == 0 else 0x10)
    return code


if __name__ == "__main__":
    multiprocessing.freeze_support()
    if os.environ.get("SQUEEZELENS_QT_PROBE"):  # the self-test's child that tries to start Qt (gui/self_test_qt.py)
        from squeezelens.gui.self_test_qt import probe_main

        sys.exit(probe_main())
    from squeezelens.__main__ import gui_main, main

    if Path(sys.executable).stem.lower().endswith("-gui"):
        if sys.platform == "win32" and sys.stdout is None and sys.argv[1:2] == ["--self-test"]:
            sys.exit(windowed_self_test())
        sys.exit(gui_main())
    sys.exit(main())
