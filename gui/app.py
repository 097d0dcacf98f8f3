"""Starting the desktop app: QApplication, the main window, then the model in the worker thread."""

from __future__ import annotations

import os
import sys
from importlib.resources import files

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from squeezelens.core.errors import SqueezeLensError

from .dev_tools import StartupProbe
from .main_window import MainWindow
from .settings import APPLICATION, ORGANIZATION, AppSettings
from .tasks import install_quit_hook, running_tasks
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
    """The QApplication with names (for QSettings), icon and desktop-file name set; at quit it cancels
    and awaits the background tasks (:func:`.tasks.install_quit_hook`)."""
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("SqueezeLens")
    app.setDesktopFileName("squeezelens")
    app.setWindowIcon(app_icon())
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    install_quit_hook(app)
    return app


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
    if client.running or running_tasks():
        # Everything was cancelled and waited for within the close budget (the main window, then aboutToQuit
        # for the tasks), but some thread is still inside code that cannot be interrupted: `import torch`
        # (the worker's first load, a finetune's first step, the catalogue listing importing timm), or
        # the one batch, forward pass or ONNX export it is in the middle of. Python cannot stop a thread,
        # and returning would make the interpreter wait for it at exit (and Qt destroy a pool still running
        # Python code). Settings are saved and files are written atomically: end the process now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
