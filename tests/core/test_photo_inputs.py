"""Every photo a user has (issue 13): odd EXIF, colour profiles, HEIC, odd modes and bit depths,
unreadable paths, warnings per file, no change to Pillow's globals. Every file is built here."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import squeezelens_tests_photo_files as _odd  # loaded by tests/conftest.py
from PIL import Image, ImageCms, ImageOps

from squeezelens.core.errors import ImageLoadError
from squeezelens.core.image_formats import format_support
from squeezelens.core.images import expand_inputs, iter_image_files, open_image, to_rgb

bad_exif_jpeg, cmyk_photo, cmyk_profile = _odd.bad_exif_jpeg, _odd.cmyk_photo, _odd.cmyk_profile
exif_block, photo, profile_bytes = _odd.exif_block, _odd.photo, _odd.profile_bytes


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())


# -- one file never ends a run ------------------------------------------------------------------
def test_exif_with_text_resolution_is_rotated_by_its_orientation_tag(tmp_path: Path) -> None:
    path = bad_exif_jpeg(tmp_path / "bad_exif.jpg")
    with Image.open(path) as im, pytest.raises(TypeError):
        ImageOps.exif_transpose(im)  # what the loader called before: a TypeError ended the run
    img = open_image(path)
    assert img.size == (20, 40)  # orientation 6 applied, the rest of the EXIF ignored


def test_unparsable_exif_means_no_rotation_and_one_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "garbage_exif.png"
    photo((30, 10)).save(path, exif=b"Exif\x00\x00" + b"\x13\x37garbage" * 4)
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        img = open_image(path)
    assert img.size == (30, 10)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) <= 1 and all(line.startswith(str(path)) for line in lines)


def test_orientation_as_a_long_still_rotates(tmp_path: Path) -> None:
    exif = exif_block([(0x0112, 4, 1, (8).to_bytes(4, "little"))])  # LONG instead of SHORT
    path = tmp_path / "long.jpg"
    Image.new("RGB", (40, 20), (10, 200, 10)).save(path, exif=exif)
    assert open_image(path).size == (20, 40)


def test_any_exception_while_decoding_becomes_that_files_error(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.png"
    photo().save(path)

    def explode(self, *a, **k):
        raise ZeroDivisionError("a plugin bug")

    monkeypatch.setattr(Image.Image, "load", explode)
    with pytest.raises(ImageLoadError) as info:
        open_image(path)
    assert info.value.reason == "damaged or truncated image" and info.value.path == str(path)
    monkeypatch.setenv("SQUEEZELENS_DEBUG", "1")
    with pytest.raises(ImageLoadError, match="a plugin bug"):
        open_image(path)


# -- unreadable path arguments ------------------------------------------------------------------
def test_each_unreadable_path_argument_is_its_own_error(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    photo().save(good / "a.png")
    long_name = tmp_path / ("x" * 300 + ".jpg")
    out = expand_inputs([long_name, good, tmp_path / "missing.jpg"])
    assert isinstance(out[0], ImageLoadError) and "name too long" in out[0].reason
    assert out[1] == good / "a.png"
    assert out[2] == tmp_path / "missing.jpg"  # the loader says "file not found"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_folder_without_permission_is_an_error_not_no_images(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    photo().save(locked / "a.png")
    locked.chmod(0)
    try:
        out = expand_inputs([locked])
    finally:
        locked.chmod(0o755)
    assert len(out) == 1 and isinstance(out[0], ImageLoadError) and "permission denied" in out[0].reason


def test_unreadable_subfolder_is_reported_in_the_walk(tmp_path: Path, monkeypatch) -> None:
    photo().save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    real_scandir = os.scandir

    def scandir(p):
        if str(p).endswith("sub"):
            raise PermissionError(13, "Permission denied", str(p))
        return real_scandir(p)

    monkeypatch.setattr(os, "scandir", scandir)
    out = expand_inputs([tmp_path])
    assert out[0] == tmp_path / "a.png"
    assert isinstance(out[1], ImageLoadError) and out[1].path == str(tmp_path / "sub")


# -- colour profiles ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["display_p3", "adobe_rgb", "prophoto"])
def test_rgb_profiles_converted_like_imagecms(tmp_path: Path, name: str) -> None:
    icc = profile_bytes(name)
    path = tmp_path / f"{name}.png"
    photo().save(path, icc_profile=icc)
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    with Image.open(path) as im:
        ref = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), renderingIntent=0)
    assert mean_diff(open_image(path), ref) < 1.0
    assert mean_diff(open_image(path, colour_manage=False), ref) > 5.0  # what users got before
    jpeg = tmp_path / f"{name}.jpg"
    photo().save(jpeg, icc_profile=icc, quality=95)
    with Image.open(jpeg) as im:
        ref = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), renderingIntent=0)
    assert mean_diff(open_image(jpeg, fast_min_side=48), ref) < 1.0


def test_cmyk_jpeg_with_profile_converted_like_imagecms(tmp_path: Path) -> None:
    icc = cmyk_profile()
    path = tmp_path / "print.jpg"
    cmyk_photo().save(path, icc_profile=icc, quality=100)
    with Image.open(path) as im:
        ref = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                        ImageCms.createProfile("sRGB"), renderingIntent=0, outputMode="RGB")
    assert mean_diff(open_image(path), ref) < 1.0
    assert mean_diff(open_image(path, colour_manage=False), ref) > 5.0


def test_grey_profile_and_alpha(tmp_path: Path) -> None:
    icc = profile_bytes("prophoto")
    rgba = photo().convert("RGBA")
    rgba.putalpha(128)
    path = tmp_path / "alpha.png"
    rgba.save(path, icc_profile=icc)
    converted = ImageCms.profileToProfile(photo(), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                          ImageCms.createProfile("sRGB"), renderingIntent=0)
    expect = np.round((np.asarray(converted, np.float64) * 128 + 255 * 127) / 255)
    assert float(np.abs(np.asarray(open_image(path), np.float64) - expect).mean()) < 1.0


def test_damaged_profile_is_ignored_with_a_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "odd.png"
    photo().save(path, icc_profile=b"not a profile at all" * 10)
    with caplog.at_level(logging.WARNING, logger="squeezelens"):
        img = open_image(path)
    assert mean_diff(img, photo()) == 0
    assert [r.getMessage() for r in caplog.records] == [f"{path}: colour profile ignored: it cannot be read (OSError)"]


def test_colour_management_env_switch(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "p3.png"
    photo().save(path, icc_profile=profile_bytes("display_p3"))
    monkeypatch.setenv("SQUEEZELENS_COLOUR_MANAGEMENT", "0")
    assert mean_diff(open_image(path), photo()) == 0  # timm's pixels exactly


# -- formats, modes, bit depths -----------------------------------------------------------------
def test_ico_is_read_as_ico_not_tga(tmp_path: Path) -> None:
    path = tmp_path / "favicon.ico"
    Image.new("RGB", (32, 32), (0, 200, 0)).save(path)
    assert open_image(path).getpixel((5, 5)) == (0, 200, 0)


@pytest.mark.parametrize("mode", ["La", "RGBa", "PA", "LA", "1", "I;16", "I;16B", "I", "F", "RGBX", "YCbCr",
                                  "HSV", "LAB", "CMYK", "P", "L"])
def test_every_mode_becomes_rgb(mode: str) -> None:
    base = photo((8, 8)).convert("RGBA")
    if mode == "La":
        img = base.convert("LA").convert("La")
    elif mode == "RGBa":
        img = base.convert("RGBa")
    elif mode == "PA":
        img = base.convert("P").convert("PA") if "PA" in Image.MODES else base.convert("P")
    elif mode in ("I;16", "I;16B"):
        img = Image.fromarray(np.full((8, 8), 40000, np.uint16)).convert(mode) if mode == "I;16" else \
            Image.frombytes("I;16B", (8, 8), np.full((8, 8), 40000, ">u2").tobytes())
    else:
        img = base.convert("RGB").convert(mode) if mode not in ("I", "F") else base.convert("L").convert(mode)
    out = to_rgb(img)
    assert out.mode == "RGB" and out.size == (8, 8)


def test_premultiplied_la_tiff_opens(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 2), np.uint8)
    pixels[..., 0], pixels[..., 1] = 50, 128  # grey 50 premultiplied by alpha 128
    path = _odd.grey_tiff(tmp_path / "la.tif", pixels, bits=8, samples=2, extra_samples=1)  # associated alpha
    with Image.open(path) as im:
        assert im.mode == "La"
    assert open_image(path).getpixel((1, 1)) == (177, 177, 177)  # 99.6 at alpha 128 over white


def test_12_bit_tiff_scaled_by_its_bit_depth(tmp_path: Path) -> None:
    path = tmp_path / "camera12.tif"
    arr = np.full((8, 8), 4095, np.uint16)
    arr[0, 0] = 2048
    Image.fromarray(arr).save(path, tiffinfo={281: 4095})  # MaxSampleValue: 12 bits in 16-bit samples
    img = open_image(path)
    assert img.getpixel((1, 1)) == (255, 255, 255)
    assert img.getpixel((0, 0))[0] == 2048 * 255 // 4095


def test_signed_16_bit_tiff_full_brightness(tmp_path: Path) -> None:
    arr = np.full((4, 4), 32767)
    arr[0, 0] = -5
    path = _odd.grey_tiff(tmp_path / "signed.tif", arr, signed=True)
    img = open_image(path)
    assert img.getpixel((1, 1)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == (0, 0, 0)


def test_mpo_and_unreadable_photo_formats_are_walked(tmp_path: Path, monkeypatch) -> None:
    from PIL import MpoImagePlugin  # noqa: F401  registers MPO saving

    frames = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (64, 48), (30, 200, 30))]
    frames[0].save(tmp_path / "phone.mpo", format="MPO", save_all=True, append_images=frames[1:])
    (tmp_path / "raw.nef").write_bytes(b"II*\x00 not really a raw file")
    names = [p.name for p in iter_image_files(tmp_path)]
    assert names == ["phone.mpo", "raw.nef"]
    assert open_image(tmp_path / "phone.mpo").getpixel((1, 1))[0] > 150
    with pytest.raises(ImageLoadError) as info:
        open_image(tmp_path / "raw.nef")
    assert info.value.reason.startswith("camera raw images cannot be read by this installation")


# -- HEIC / AVIF --------------------------------------------------------------------------------
def test_heic_reads_like_its_png_twin(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    img = photo((128, 96))
    heic = tmp_path / "IMG_0001.HEIC"
    pillow_heif.from_pillow(img).save(str(heic), quality=-1)  # lossless
    png = tmp_path / "IMG_0001.png"
    img.save(png)
    assert [p.name for p in iter_image_files(tmp_path)] == ["IMG_0001.HEIC", "IMG_0001.png"]
    assert mean_diff(open_image(heic), open_image(png)) < 3.0
    assert format_support()["HEIC"]


def test_heic_without_the_plugin_names_the_format_and_the_fix(tmp_path: Path, monkeypatch) -> None:
    from squeezelens.core import images

    heic = tmp_path / "IMG_0002.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1" + b"\0" * 64)
    monkeypatch.setattr(images, "readable_formats", lambda: ("JPEG", "PNG"))
    with pytest.raises(ImageLoadError) as info:
        open_image(heic)
    assert "HEIC/HEIF images cannot be read by this installation" in info.value.reason
    assert "pillow-heif" in info.value.reason


# -- no global side effects ---------------------------------------------------------------------
def test_import_leaves_pillow_globals_alone() -> None:
    code = ("from PIL import Image, ImageFile; Image.MAX_IMAGE_PIXELS = 123; ImageFile.LOAD_TRUNCATED_IMAGES = True\n"
            "import squeezelens, squeezelens.core.images, squeezelens.core.engine\n"
            "print(Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["123", "True"]
