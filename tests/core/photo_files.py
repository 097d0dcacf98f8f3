"""Builders for the odd image files users have, made from scratch (no downloaded files)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms


def exif_block(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A little-endian EXIF block (``Exif\\0\\0`` + TIFF header + one IFD) from raw entries.

    Each entry is (tag, TIFF type, count, value of at most 4 bytes): written as given, so a field can
    hold a type the standard does not allow (a resolution stored as text, as some cameras write).
    """
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in sorted(entries):
        ifd += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def bad_exif_jpeg(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    """A 40x20 JPEG whose EXIF says "rotate 90" (orientation 6) and stores XResolution and
    YResolution as ASCII text instead of rationals."""
    exif = exif_block([(0x0112, 3, 1, struct.pack("<H", 6)), (0x011A, 2, 3, b"72\0"), (0x011B, 2, 3, b"72\0")])
    Image.new("RGB", (40, 20), colour).save(path, "JPEG", exif=exif, quality=95)
    return path


def photo(size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    """A smooth, saturated RGB test picture (gradients in every channel, some noise)."""
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 1, w)[None, :]
    y = np.linspace(0, 1, h)[:, None]
    arr = np.stack([255 * x * np.ones_like(y), 255 * y * np.ones_like(x), 255 * (1 - x) * y], -1)
    arr = np.clip(arr + rng.normal(0, 4, arr.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


_D50_XYZ = np.array([0.9642, 1.0, 0.8249])  # the ICC profile connection space's white
_CPRT = b"text" + b"\0" * 4 + b"none\0"


def _s15(v: float) -> bytes:
    """ICC s15Fixed16Number."""
    return struct.pack(">i", int(round(v * 65536)))


def _xyz(v: np.ndarray) -> bytes:
    """ICC XYZType of one XYZ triple."""
    return b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in v)


def _desc(text: bytes) -> bytes:
    """ICC v2 textDescriptionType with the ASCII ``text`` (NUL-terminated) and empty Unicode/ScriptCode parts."""
    return b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 12 + b"\0" * 67


def _icc(device_class: bytes, colour_space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2.1 profile: the 128-byte header (D50 illuminant), the tag table, the tags 4-byte aligned."""
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    header = (struct.pack(">I", 128 + len(body)) + b"lcms" + struct.pack(">I", 0x02100000) + device_class
              + colour_space + pcs + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + _s15(_D50_XYZ[0]) + _s15(_D50_XYZ[1]) + _s15(_D50_XYZ[2]) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128, len(header)
    return header + body


def _matrix_profile(primaries: tuple[tuple[float, float], ...], white: tuple[float, float], gamma: float) -> bytes:
    """A minimal ICC v2 RGB display profile: rXYZ/gXYZ/bXYZ (D50-adapted), wtpt, rTRC/gTRC/bTRC."""
    wx, wy = white
    W = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    P = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    S = np.linalg.solve(P, W)
    M = P * S  # columns: XYZ of R, G, B under the white point
    # Bradford adaptation to D50 (ICC PCS)
    B = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    D50 = np.array([0.9642, 1.0, 0.8249])
    cone = np.diag((B @ D50) / (B @ W))
    A = np.linalg.inv(B) @ cone @ B
    M50 = A @ M

    curv = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", int(round(gamma * 256))) + b"\0\0"
    tags = [(b"desc", _desc(b"SqueezeLens test profile\0")), (b"cprt", _CPRT), (b"wtpt", _xyz(D50)),
            (b"rXYZ", _xyz(M50[:, 0])), (b"gXYZ", _xyz(M50[:, 1])), (b"bXYZ", _xyz(M50[:, 2])),
            (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]
    return _icc(b"mntr", b"RGB ", b"XYZ ", tags)


D65 = (0.3127, 0.3290)
D50_XY = (0.3457, 0.3585)
#: (primaries, white, gamma) of the wide-gamut spaces phones and editors write.
PROFILES = {
    "display_p3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65, 2.2),
    "adobe_rgb": (((0.640, 0.330), (0.210, 0.710), (0.150, 0.060)), D65, 563 / 256),
    "prophoto": (((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), D50_XY, 1.8),
}


def profile_bytes(name: str) -> bytes:
    primaries, white, gamma = PROFILES[name]
    icc = _matrix_profile(primaries, white, gamma)
    ImageCms.ImageCmsProfile(io.BytesIO(icc))  # LittleCMS accepts it
    return icc


def cmyk_profile(grid: int = 5) -> bytes:
    """A CMYK input profile (ICC v2, class ``prtr``, PCS Lab): one ``mft1`` A2B0 table whose grid
    holds the Lab (via ImageCms's sRGB->Lab) of an ink model with dot gain, so it differs from
    Pillow's naive CMYK->RGB."""
    steps = np.linspace(0, 1, grid)
    c, m, y, k = np.meshgrid(steps, steps, steps, steps, indexing="ij")

    def ink(v: np.ndarray) -> np.ndarray:
        return 1 - (1 - v ** 0.8)  # dot gain: mid tones print darker

    rgb = np.stack([(1 - ink(c)) * (1 - ink(k)), (1 - ink(m)) * (1 - ink(k)), (1 - ink(y)) * (1 - ink(k))], -1)
    rgb8 = np.clip(np.round(rgb.reshape(-1, 1, 3) * 255), 0, 255).astype(np.uint8)
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = np.asarray(to_lab.apply(Image.fromarray(rgb8, "RGB"))).reshape(-1, 3)
    ramp = bytes(range(256))
    ident = b"".join(struct.pack(">i", 65536 if i % 4 == 0 else 0) for i in range(9))
    mft1 = (b"mft1" + b"\0" * 4 + bytes([4, 3, grid, 0]) + ident + ramp * 4 + lab.astype(np.uint8).tobytes()
            + ramp * 3)
    tags = [(b"desc", _desc(b"SqueezeLens CMYK test profile\0")), (b"cprt", _CPRT), (b"wtpt", _xyz(_D50_XYZ)),
            (b"A2B0", mft1)]
    icc = _icc(b"prtr", b"CMYK", b"Lab ", tags)
    ImageCms.ImageCmsProfile(io.BytesIO(icc))  # LittleCMS accepts it
    return icc


def cmyk_photo(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A CMYK picture with every ink varying."""
    w, h = size
    x = np.linspace(0, 1, w)[None, :] * np.ones((h, 1))
    y = np.linspace(0, 1, h)[:, None] * np.ones((1, w))
    arr = np.stack([x, y, (1 - x) * y, 0.3 * x * (1 - y)], -1)
    return Image.fromarray(np.round(arr * 255).astype(np.uint8), "CMYK")


def grey_tiff(path: Path, values: np.ndarray, bits: int = 16, signed: bool = False,
              extra: list[tuple[int, int, int, bytes]] | None = None, samples: int = 1,
              extra_samples: int | None = None) -> Path:
    """An uncompressed little-endian TIFF written byte by byte (tags: TIFF 6.0), so fields Pillow's
    writer would not produce (signed samples, associated alpha) can be set."""
    h, w = values.shape[:2]
    data = values.astype(("<i" if signed else "<u") + str(bits // 8)).tobytes()
    entries = [
        (256, 4, 1, struct.pack("<I", w)), (257, 4, 1, struct.pack("<I", h)),
        (258, 3, 1, struct.pack("<H", bits)) if samples == 1 else (258, 3, 2, struct.pack("<HH", bits, bits)),
        (259, 3, 1, struct.pack("<H", 1)), (262, 3, 1, struct.pack("<H", 1)),
        (273, 4, 1, b"DATA"), (277, 3, 1, struct.pack("<H", samples)), (278, 4, 1, struct.pack("<I", h)),
        (279, 4, 1, struct.pack("<I", len(data))),
        (339, 3, 1, struct.pack("<H", 2 if signed else 1)) if samples == 1 else
        (339, 3, 2, struct.pack("<HH", 1, 1)),
    ]
    if extra_samples is not None:
        entries.append((338, 3, 1, struct.pack("<H", extra_samples)))
    entries += extra or []
    entries.sort()
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_size
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if value == b"DATA":
            value = struct.pack("<I", data_offset)
        ifd += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + data)
    return path
