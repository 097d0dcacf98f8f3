"""The Qt half of ``squeezelens --self-test``: platform plugin, image formats, multimedia, charts.

The entry point (``squeezelens.__main__``) hands :func:`qt_checks` to core's runner, which never imports
Qt. A platform plugin that is missing, or cannot connect to its display, makes Qt abort the process, so
the plugin is looked for (and loaded as a library, which also finds missing system libraries such as
libxcb-cursor) before any application object is made, and Qt is first started on it in a child process
(:func:`probe_main`; the same executable, frozen or not), whose failure becomes a FAIL line. With no
display at all the native plugin is only loaded, and the rest runs on ``offscreen``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QLibrary, QLibraryInfo, QLoggingCategory

from squeezelens.core.self_test import Check, SelfTestFailure, sample_image

from .wording import plural

#: What the app's display loader and file dialogs rely on (JPEG, GIF, WebP, TIFF and SVG are plugins).
IMAGE_FORMATS = ("jpeg", "png", "gif", "webp", "tiff", "bmp", "svg")

_app = None  # the QApplication the later checks need, made by check_platform

#: Set in the child that tries to start Qt; the frozen app's entry point (packaging/entry.py) runs
#: :func:`probe_main` when it sees it, since a frozen executable has no ``-c``.
PROBE_ENV = "SQUEEZELENS_QT_PROBE"
HEADLESS_PLATFORMS = ("offscreen", "minimal")  # nothing to connect to: no child needed


def plugins_dir() -> Path:
    return Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))


def native_platform() -> str:
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "cocoa"
    return "wayland" if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY") else "xcb"


def has_display() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _plugin_file(kind: str, name: str) -> Path:
    folder = plugins_dir() / kind
    found = sorted(folder.glob(f"*q{name}.*")) if folder.is_dir() else []
    if not found:
        have = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise SelfTestFailure(f"Qt {kind} plugin {name!r} not found in {folder} (there: {', '.join(have) or 'none'})")
    return found[0]


def _load_library(path: Path) -> None:
    lib = QLibrary(str(path))
    if not lib.load():
        raise SelfTestFailure(f"{path.name} does not load: {lib.errorString()}")


def asked_platforms(value: str | None) -> list[str]:
    """The plugin names in a ``QT_QPA_PLATFORM`` value: ``"wayland;xcb"`` is a list Qt tries in order, and
    each entry may carry options after a colon (``"xcb:nograb"``)."""
    return [entry.split(":", 1)[0].strip() for entry in (value or "").split(";") if entry.split(":", 1)[0].strip()]


def probe_main() -> int:
    """The child's part: start Qt as the app would (same environment) and say on which platform."""
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    print(app.platformName(), flush=True)
    return 0


def _probe_command() -> list[str]:
    if getattr(sys, "frozen", False):  # sys.executable is the app itself; entry.py honours PROBE_ENV
        return [sys.executable]
    return [sys.executable, "-c", "import sys; from squeezelens.gui.self_test_qt import probe_main; "
                                  "sys.exit(probe_main())"]


def probe_qt_start(timeout: float = 120) -> str:
    """Start Qt in a child process; returns the platform it started on, or raises with why it did not."""
    try:
        proc = subprocess.run(_probe_command(), env=dict(os.environ, **{PROBE_ENV: "1"}), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SelfTestFailure(f"Qt did not start within {timeout:.0f} s (a child process tried)") from None
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode == 0:  # (a windowed Windows executable may have no stdout to say the platform on)
        return lines[-1] if lines else "?"
    if proc.returncode < 0:
        try:
            status = f"killed by {signal.Signals(-proc.returncode).name}"
        except ValueError:
            status = f"killed by signal {-proc.returncode}"
    else:
        status = f"exit status {proc.returncode}"
    # Qt's own message; not its hint about xcb-cursor0, which it prints whenever xcb fails, whatever the cause
    said = [line.strip() for line in proc.stderr.splitlines()
            if line.strip() and "xcb-cursor0" not in line and not line.startswith("Available platform plugins")]
    detail, hint = "; ".join(said[:2])[:300] or "no message", ""
    if "could not connect to display" in proc.stderr:
        detail = next(line for line in said if "could not connect to display" in line)
        hint = (f" (is DISPLAY={os.environ.get('DISPLAY', '')!r} a running X server this user may connect to? "
                "Without one, unset DISPLAY or set QT_QPA_PLATFORM=offscreen)")
    raise SelfTestFailure(f"Qt could not start ({status}): {detail}{hint}")


def check_platform() -> str:
    """The platform plugin the app would use is there and loads; Qt starts on it (in a child process first,
    since a failure aborts); then Qt is started here for the other checks (offscreen when it cannot)."""
    global _app
    from PySide6.QtWidgets import QApplication

    asked = asked_platforms(os.environ.get("QT_QPA_PLATFORM"))
    errors: list[str] = []
    for name in asked or [native_platform()]:  # like Qt: the first of the list that loads
        try:
            loaded = _plugin_file("platforms", name)
            _load_library(loaded)
            break
        except SelfTestFailure as e:
            errors.append(str(e))
    else:
        raise SelfTestFailure("; ".join(errors))
    note = f"{loaded.name} loads"
    if errors:  # Qt skips those too
        note += f" (before it in QT_QPA_PLATFORM: {'; '.join(errors)})"
    if not asked and not has_display():
        _load_library(_plugin_file("platforms", "offscreen"))
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        note += " (no display, so not connected; the other Qt checks run offscreen)"
    elif any(p not in HEADLESS_PLATFORMS for p in asked or [name]):
        try:
            probe_qt_start()
        except SelfTestFailure as e:
            failure = f"{note}, but {e}"
            try:  # the other checks can still run, offscreen
                _load_library(_plugin_file("platforms", "offscreen"))
                os.environ["QT_QPA_PLATFORM"] = "offscreen"
                _app = QApplication.instance() or QApplication(sys.argv[:1])
                failure += "; the other Qt checks run offscreen"
            except SelfTestFailure:
                pass
            raise SelfTestFailure(failure) from None
    _app = QApplication.instance() or QApplication(sys.argv[:1])
    return f"{note}; Qt started on {QApplication.platformName()!r}"


def _need_app() -> None:
    if _app is None:
        raise SelfTestFailure("not checked: Qt did not start (see the platform plugin line)")


def check_image_formats() -> str:
    from PySide6.QtGui import QImageReader

    _need_app()
    have = {f.toStdString() for f in QImageReader.supportedImageFormats()}
    missing = [f for f in IMAGE_FORMATS if f not in have]
    if missing:
        raise SelfTestFailure(f"Qt cannot read {', '.join(missing)} (imageformats plugins missing from "
                              f"{plugins_dir() / 'imageformats'})")
    image = QImageReader(sample_image()).read()
    if image.isNull():
        raise SelfTestFailure("Qt could not decode the sample JPEG")
    return f"{', '.join(IMAGE_FORMATS)} readable; sample decoded by Qt ({image.width()}x{image.height()})"


def check_multimedia() -> str:
    """The camera's backend: the multimedia plugin (FFmpeg on Linux and Windows) loads and can decode."""
    _need_app()
    # FFmpeg's optional hardware/pipewire helpers are dlopen'ed and may be absent: not our concern here
    QLoggingCategory.setFilterRules("qt.multimedia.symbolsresolver.warning=false")
    from PySide6.QtMultimedia import QMediaDevices, QMediaFormat, QMediaPlayer

    folder = plugins_dir() / "multimedia"
    backends = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
    if not backends:
        raise SelfTestFailure(f"no QtMultimedia backend plugin in {folder}: the camera cannot work")
    if not QMediaPlayer().isAvailable():
        raise SelfTestFailure(f"the QtMultimedia backend did not load ({', '.join(backends)})")
    formats = QMediaFormat().supportedFileFormats(QMediaFormat.ConversionMode.Decode)
    cameras = len(QMediaDevices.videoInputs())
    return f"{', '.join(backends)} loaded, {len(formats)} decodable formats; {plural(cameras, 'camera')} found"


def check_charts() -> str:
    _need_app()
    from PySide6.QtCharts import QChart, QLineSeries

    chart = QChart()
    chart.addSeries(QLineSeries())
    return "QtCharts loads (the Finetune window's curves)"


def qt_checks() -> list[Check]:
    return [("Qt platform plugin", check_platform), ("Qt image formats", check_image_formats),
            ("Qt multimedia backend", check_multimedia), ("Qt charts", check_charts)]
