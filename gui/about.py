"""The About box: versions and licences (read from package metadata: no torch import)."""

from __future__ import annotations

import html
import platform
from importlib.metadata import PackageNotFoundError, version

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def about_text(model_name: str | None, weights_license: str | None, untrained: bool) -> str:
    """Rich text for the About box."""
    # a saved model's name is its folder, and a licence is free text: neither is markup
    model_name = html.escape(model_name) if model_name is not None else None
    weights_license = html.escape(weights_license) if weights_license else weights_license
    if model_name is None:
        weights = "no model loaded yet"
    elif untrained:
        weights = f"{model_name}: no weights loaded (untrained)"
    else:
        weights = f"{model_name}: {weights_license or 'licence not stated in its pretrained_cfg'}"
    rows = [
        ("SqueezeLens", _version("squeezelens"), "Apache-2.0"),
        ("timm", _version("timm"), "Apache-2.0"),
        ("PyTorch", _version("torch"), "BSD-3-Clause"),
        ("Qt", qVersion(), "LGPL-3.0"),
        ("PySide6", pyside_version, "LGPL-3.0"),
        ("Python", platform.python_version(), "PSF-2.0"),
    ]
    table = "".join(f"<tr><td>{n}</td><td>&nbsp;{v}&nbsp;</td><td>{lic}</td></tr>" for n, v, lic in rows)
    return (
        "<h3>SqueezeLens</h3>"
        "<p>Classify photos with timm's SE-ResNeXt models, and teach them your own classes.</p>"
        f"<table>{table}</table>"
        f"<p><b>Model weights</b>: {weights}</p>"
        "<p>Qt is used under the LGPL-3.0; its source is available from qt.io.</p>"
    )


def show_about(parent: QWidget, model_name: str | None, weights_license: str | None, untrained: bool) -> None:
    QMessageBox.about(parent, "About SqueezeLens", about_text(model_name, weights_license, untrained))
