"""Render resources/icon.svg to the PNG sizes platforms want (run after editing the SVG)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

RESOURCES = Path(__file__).resolve().parent.parent / "resources"

if __name__ == "__main__":
    app = QGuiApplication(sys.argv)
    renderer = QSvgRenderer(str(RESOURCES / "icon.svg"))
    for size in (256,):
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        image.save(str(RESOURCES / f"icon-{size}.png"))
        print(f"wrote resources/icon-{size}.png")
