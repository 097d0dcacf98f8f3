"""Issue 13 in the desktop app: the display decodes as core does (colour profile, HEIC, non-UTF-8
names), the batch table shows such names escaped, and its Export CSV keeps their bytes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from PySide6.QtCore import Qt

from squeezelens.core.engine import Prediction, TopClass
from squeezelens.gui.batch_window import BatchTableModel, BatchWindow
from squeezelens.gui.image_loader import read_for_display


def qimage_array(image) -> np.ndarray:
    image = image.convertToFormat(image.Format.Format_RGB888)
    ptr = image.constBits()
    arr = np.frombuffer(ptr, np.uint8, image.bytesPerLine() * image.height()).reshape(image.height(), -1)
    return arr[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def test_display_converts_an_embedded_profile(tmp_path: Path, qapp) -> None:
    import squeezelens_tests_photo_files as files  # loaded by tests/conftest.py
    icc = files.profile_bytes("prophoto")
    path = tmp_path / "prophoto.png"
    files.photo().save(path, icc_profile=icc)
    with Image.open(path) as im:
        ref = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                                        renderingIntent=0)
    shown = qimage_array(read_for_display(str(path))).astype(float)
    assert np.abs(shown - np.asarray(ref, float)).mean() < 1.0
    assert np.abs(shown - np.asarray(files.photo(), float)).mean() > 5.0  # Qt's reader showed the raw values


def test_display_reads_heic_and_latin1_names(tmp_path: Path, qapp) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.heic"
    pillow_heif.from_pillow(Image.new("RGB", (64, 32), (20, 200, 20))).save(os.fsdecode(raw), quality=-1)
    image = read_for_display(os.fsdecode(raw))
    assert (image.width(), image.height()) == (64, 32)
    assert abs(image.pixelColor(5, 5).green() - 200) <= 3


def test_batch_table_escapes_and_export_keeps_latin1_names(tmp_path: Path, qapp) -> None:
    name = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.png")
    other = str(tmp_path / "b.png")
    window = BatchWindow(1)
    window.start([name, other])
    pred = Prediction(name, "m", top=[TopClass(1, "cat", 0.9)])
    window.add(0, pred)
    window.add(1, Prediction(other, "m", top=[TopClass(2, "dog", 0.8)]))
    model: BatchTableModel = window.model
    assert model.data(model.index(0, 0), Qt.ItemDataRole.DisplayRole) == "caf\\xe9.png"
    out = tmp_path / "export.csv"
    window.export_csv(str(out))
    assert b"/caf\xe9.png," in out.read_bytes()
    window.close()
