"""Starting the desktop app: QApplication, the main window, then the model in the worker thread."""

from __future__ import annotations

import os
import sys
import threading
from importlib.resources import files

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from squeezelens.core.errors import SqueezeLensError

from .dev_tools import StartupProbe
from .main_window import MainWindow
from .settings import APPLICATION, ORGANIZATION, AppSettings
from .worker import InferenceClient


def app_icon() -> QIcon:
    icon = QIcon()
    res = files("squeezelens.resources")
    for name in ("icon.svg", "icon-256.png"):
        path = res / name
        if path.is_file():
            icon.addFile(str(path))
    return icon


def create_app() -> QApplication:
    """The QApplication with names (for QSettings), icon and desktop-file name set."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("SqueezeLens")
    app.setDesktopFileName("squeezelens")
    app.setWindowIcon(app_icon())
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    return app  # type: ignore[return-value]


def check_display() -> None:
    """On Linux without X11 or Wayland, Qt would abort the process; say what to do instead."""
    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        raise SqueezeLensError(
            "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop app cannot open; "
            "use `squeezelens classify IMAGE...` on the command line, or QT_QPA_PLATFORM=offscreen")


def run(images: list[str]) -> int:
    """Show the window at once; the worker imports torch and loads the model behind it."""
    check_display()
    app = create_app()
    client = InferenceClient()
    window = MainWindow(client, AppSettings(), StartupProbe.from_env(quit=lambda: QTimer.singleShot(0, window.close)))
    window.show()
    window.start(images)
    code = app.exec()
    if client.running or _other_threads_alive():
        # The worker is inside something it cannot leave quickly (importing torch, one long forward), or
        # core is still exporting the ONNX graph in the background (written atomically: an export cut off
        # here is simply redone next time). Settings are saved; end the process now rather than keep a
        # closed window's process alive.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _other_threads_alive() -> bool:
    """Non-daemon Python threads that would keep the interpreter waiting at exit."""
    main = threading.main_thread()
    return any(t.is_alive() and not t.daemon and t is not main for t in threading.enumerate())
