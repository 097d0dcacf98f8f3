"""Reading what the user drops or pastes: files, folders, image data, or paths as text."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage

from squeezelens.core.errors import ImageLoadError
from squeezelens.core.images import MAX_PIXELS, image_extensions, open_image_bytes, walk_extensions

#: ``data:image/png;base64,....``: image data inside a URL (image searches, screenshot tools).
DATA_URL = re.compile(rb"^data:(image/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,", re.IGNORECASE)
#: The most bytes a data: URL may carry: a file's pixel limit at 4 bytes a pixel (the same guard as
#: files; the decoded image's own size is then checked like a file's).
MAX_DATA_BYTES = MAX_PIXELS * 4


@dataclass
class DropContent:
    """Usable inputs from a drop or paste, and a friendly line for each thing that was not usable."""

    paths: list[str] = field(default_factory=list)  # image files and folders
    image: QImage | None = None  # image data without a file
    rejected: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.paths and self.image is None

    @property
    def is_batch(self) -> bool:
        """A folder or several files: the results table, not the single-image view."""
        return len(self.paths) > 1 or any(Path(p).is_dir() for p in self.paths)


def classify_path(path: Path) -> str | None:
    """None when ``path`` is an image file or a folder; otherwise why it cannot be used."""
    try:
        if path.is_dir():
            return None
        if not path.exists():
            return f"{path.name}: file not found"
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        return f"{path.name}: cannot be opened ({getattr(e, 'strerror', None) or e})"
    if path.suffix.lower() not in image_extensions():
        if path.suffix.lower() in walk_extensions():  # a photo this installation cannot read: core says why
            return None
        return f"{path.name} is not an image SqueezeLens can read"
    return None


def _add_path(content: DropContent, path: Path) -> None:
    problem = classify_path(path)
    if problem:
        content.rejected.append(problem)
    else:
        content.paths.append(str(path))


def _paths_from_text(text: str) -> tuple[list[Path], list[str]]:
    """The existing files and folders named in ``text`` (one absolute path or ``file://`` URI a line),
    and a "file not found" line for each ``file://`` URI that names nothing (prose is skipped)."""
    paths: list[Path] = []
    missing: list[str] = []
    for line in text.splitlines():
        line = line.strip().strip('"')
        if not line:
            continue
        if line.startswith("data:"):
            continue  # read_mime decodes a pasted data: URL
        is_uri = line.startswith("file://")
        if is_uri:
            line = file_url_path(line.encode("utf-8", "surrogateescape"))
        try:
            p = Path(line).expanduser()
            found = p.is_absolute() and p.exists()
        except (OSError, ValueError, RuntimeError):  # too long a name, a NUL, "~nobody": prose, not a path
            continue
        if found:
            paths.append(p)
        elif is_uri and p.is_absolute():
            missing.append(f"{p.name or p}: file not found")
    return paths, missing


def file_url_path(url: bytes) -> str:
    """The local path of a ``file://`` URL, its %-escapes decoded as *bytes* (a Latin-1 name stays the
    file's own bytes, as ``os.fsdecode`` gives them), not as UTF-8 text."""
    return os.fsdecode(unquote_to_bytes(urlsplit(url).path))


def decode_data_url(url: bytes) -> tuple[QImage | None, str | None]:
    """The image inside a ``data:image/...;base64,`` URL, or (None, why not) for a person.

    The bytes go through core's loader (:func:`squeezelens.core.images.open_image_bytes`): the same
    format list, size guard and reasons as a file, colour profile converted, HEIC included.
    """
    m = DATA_URL.match(url)
    if m is None or m.group(1) is None:
        return None, "the dropped data is not an image"
    payload = url[m.end():]
    if len(payload) > MAX_DATA_BYTES * 4 // 3 + 4:
        return None, "the dropped image is too large"
    try:
        data = base64.b64decode(unquote_to_bytes(payload), validate=False) if m.group(3) else unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return None, "the dropped image data is damaged (bad base64)"
    try:
        img = open_image_bytes(data, "dropped image")
    except ImageLoadError as e:
        return None, f"the dropped image cannot be used: {e.reason}"
    rgb = img.tobytes()
    image = QImage(rgb, img.width, img.height, img.width * 3, QImage.Format.Format_RGB888).copy()
    return image, None


def _add_data_url(content: DropContent, url: bytes) -> None:
    image, problem = decode_data_url(url)
    if image is not None and content.image is None:
        content.image = image
    elif problem:
        content.rejected.append(problem)


def read_mime(mime: QMimeData, *, accept_text: bool = True) -> DropContent:
    """What a drop or paste carries: local files/folders first, else image data (a ``data:`` URL
    included), else paths typed as text."""
    content = DropContent()
    if mime.hasUrls():
        web: list[str] = []
        for url in mime.urls():
            encoded = bytes(url.toEncoded().data())
            if url.isLocalFile():
                _add_path(content, Path(file_url_path(encoded)))
            elif url.scheme() == "data":
                _add_data_url(content, encoded)
            else:
                web.append(f"{_short(url)}: web addresses cannot be classified; save the image first")
        # an image dragged out of a browser carries its web address *and* its pixels: use the pixels
        if content.image is not None and not content.paths:
            return content
        if content.paths or content.rejected or (web and not mime.hasImage()):
            content.rejected.extend(web)
            return content
    if mime.hasImage():
        data = mime.imageData()
        image = data if isinstance(data, QImage) else QImage(data) if data is not None else QImage()
        if not image.isNull():
            content.image = image
            return content
        content.rejected.append("the dropped image data could not be read")
        return content
    if accept_text and mime.hasText() and mime.text().lstrip().startswith("data:"):
        _add_data_url(content, mime.text().strip().encode("ascii", "replace"))
        return content
    if accept_text and mime.hasText():
        paths, missing = _paths_from_text(mime.text())
        for p in paths:
            _add_path(content, p)
        content.rejected.extend(missing)
        if content.empty and not content.rejected:
            content.rejected.append("the clipboard holds text, not an image or a file path")
        return content
    content.rejected.append("nothing usable: drop image files, a folder, or image data")
    return content


def can_accept(mime: QMimeData) -> bool:
    """Whether a drag may be dropped here (decided on enter, before the drop)."""
    return mime.hasUrls() or mime.hasImage()


def _short(url: QUrl) -> str:
    text = url.toDisplayString()
    return text if len(text) <= 60 else text[:57] + "..."
