"""read_mime / can_accept / DropContent on real QMimeData objects."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QColor, QImage

from squeezelens.gui.drop_input import DropContent, can_accept, classify_path, read_mime


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    img = tmp_path / "cat.png"
    Image.new("RGB", (4, 3), (10, 20, 30)).save(img)
    jpg = tmp_path / "Dog Photo.JPG"  # upper-case ending, a space in the name
    Image.new("RGB", (4, 3), (1, 2, 3)).save(jpg, format="JPEG")
    folder = tmp_path / "album"
    folder.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    return {"img": img, "jpg": jpg, "folder": folder, "text": text, "missing": tmp_path / "gone.png"}


def mime_with_urls(*urls: QUrl) -> QMimeData:
    mime = QMimeData()
    mime.setUrls(list(urls))
    return mime


def local(p: Path) -> QUrl:
    return QUrl.fromLocalFile(str(p))


def red_image() -> QImage:
    image = QImage(5, 4, QImage.Format.Format_RGB32)
    image.fill(QColor(255, 0, 0))
    return image


def test_local_image_file(files: dict[str, Path]) -> None:
    content = read_mime(mime_with_urls(local(files["img"])))
    assert content.paths == [str(files["img"])]
    assert content.rejected == [] and content.image is None
    assert not content.empty and not content.is_batch


def test_upper_case_extension_and_space_in_name(files: dict[str, Path]) -> None:
    content = read_mime(mime_with_urls(local(files["jpg"])))
    assert content.paths == [str(files["jpg"])]


def test_folder_is_a_batch(files: dict[str, Path]) -> None:
    content = read_mime(mime_with_urls(local(files["folder"])))
    assert content.paths == [str(files["folder"])]
    assert content.is_batch


def test_several_files_are_a_batch_and_bad_ones_are_rejected(files: dict[str, Path]) -> None:
    mime = mime_with_urls(local(files["img"]), local(files["text"]), local(files["jpg"]), local(files["missing"]))
    content = read_mime(mime)
    assert content.paths == [str(files["img"]), str(files["jpg"])]
    assert content.is_batch
    assert content.rejected == ["notes.txt is not an image SqueezeLens can read", "gone.png: file not found"]


def test_only_non_images_give_no_inputs(files: dict[str, Path]) -> None:
    content = read_mime(mime_with_urls(local(files["text"])))
    assert content.empty
    assert content.rejected == ["notes.txt is not an image SqueezeLens can read"]


def test_web_address_is_rejected_kindly() -> None:
    content = read_mime(mime_with_urls(QUrl("https://example.com/pictures/cat.jpg")))
    assert content.empty
    assert len(content.rejected) == 1
    assert content.rejected[0].startswith("https://example.com/pictures/cat.jpg: web addresses cannot be classified")


def test_long_web_address_is_shortened() -> None:
    url = "http://example.com/" + "a" * 200 + ".png"
    content = read_mime(mime_with_urls(QUrl(url)))
    shown = content.rejected[0].split(": web addresses")[0]
    assert shown.endswith("...") and len(shown) == 60


def test_web_address_with_image_data_uses_the_pixels() -> None:
    """A browser drag carries the picture's URL and its pixels: the pixels are usable."""
    mime = mime_with_urls(QUrl("https://example.com/cat.jpg"))
    mime.setImageData(red_image())
    content = read_mime(mime)
    assert content.image is not None and content.image.size().width() == 5
    assert content.rejected == []


def test_local_and_web_urls_together(files: dict[str, Path]) -> None:
    content = read_mime(mime_with_urls(QUrl("http://example.com/x.png"), local(files["img"])))
    assert content.paths == [str(files["img"])]
    assert len(content.rejected) == 1 and "web addresses" in content.rejected[0]


def test_image_data() -> None:
    mime = QMimeData()
    mime.setImageData(red_image())
    content = read_mime(mime)
    assert content.paths == [] and content.rejected == []
    assert content.image is not None
    assert (content.image.width(), content.image.height()) == (5, 4)
    assert QColor(content.image.pixel(2, 2)) == QColor(255, 0, 0)
    assert not content.is_batch and not content.empty


def test_null_image_data_is_rejected() -> None:
    mime = QMimeData()
    mime.setImageData(QImage())
    content = read_mime(mime)
    assert content.image is None
    assert content.rejected == ["the dropped image data could not be read"]


def test_files_win_over_image_data(files: dict[str, Path]) -> None:
    mime = mime_with_urls(local(files["img"]))
    mime.setImageData(red_image())
    content = read_mime(mime)
    assert content.paths == [str(files["img"])] and content.image is None


def test_text_with_absolute_paths_and_file_uris(files: dict[str, Path]) -> None:
    uri = QUrl.fromLocalFile(str(files["jpg"])).toString(QUrl.ComponentFormattingOption.FullyEncoded)
    assert "%20" in uri  # the space is percent-encoded, as a file manager writes it
    mime = QMimeData()
    mime.setText(f'  "{files["img"]}"  \n\n{uri}\n{files["folder"]}\n')
    content = read_mime(mime)
    assert content.paths == [str(files["img"]), str(files["jpg"]), str(files["folder"])]
    assert content.rejected == []
    assert content.is_batch


def test_text_path_to_a_non_image_is_rejected(files: dict[str, Path]) -> None:
    mime = QMimeData()
    mime.setText(str(files["text"]))
    content = read_mime(mime)
    assert content.empty
    assert content.rejected == ["notes.txt is not an image SqueezeLens can read"]


def test_text_file_uri_of_a_missing_file_says_so(files: dict[str, Path]) -> None:
    mime = QMimeData()
    mime.setText(local(files["missing"]).toString())
    content = read_mime(mime)
    assert content.empty
    assert content.rejected == ["gone.png: file not found"]


@pytest.mark.parametrize("text", [
    "a cat sitting on a mat",
    "relative/path/cat.png",
    "/no/such/folder/cat.png",
    "/" + "x" * 5000,  # longer than any file name: stat() raises ENAMETOOLONG
    "~no_such_user_here/cat.png",  # expanduser() raises RuntimeError
    "/tmp/a\x00b.png",
])
def test_text_that_is_not_a_path(text: str) -> None:
    mime = QMimeData()
    mime.setText(text)
    content = read_mime(mime)
    assert content.empty
    assert content.rejected == ["the clipboard holds text, not an image or a file path"]


def test_text_ignored_when_not_accepted(files: dict[str, Path]) -> None:
    mime = QMimeData()
    mime.setText(str(files["img"]))
    content = read_mime(mime, accept_text=False)
    assert content.empty
    assert content.rejected == ["nothing usable: drop image files, a folder, or image data"]


def test_empty_mime() -> None:
    content = read_mime(QMimeData())
    assert content.empty and not content.is_batch
    assert content.rejected == ["nothing usable: drop image files, a folder, or image data"]


def test_can_accept(files: dict[str, Path]) -> None:
    assert can_accept(mime_with_urls(local(files["img"])))
    assert can_accept(mime_with_urls(QUrl("https://example.com/a.png")))  # rejected kindly on drop
    with_image = QMimeData()
    with_image.setImageData(red_image())
    assert can_accept(with_image)
    text = QMimeData()
    text.setText(str(files["img"]))
    assert not can_accept(text)
    assert not can_accept(QMimeData())


def test_is_batch_and_empty() -> None:
    assert DropContent().empty and not DropContent().is_batch
    assert not DropContent(paths=["/x/a.png"]).is_batch
    assert DropContent(paths=["/x/a.png", "/x/b.png"]).is_batch
    assert not DropContent(image=red_image()).empty
    assert DropContent(rejected=["no"]).empty


def test_classify_path(files: dict[str, Path]) -> None:
    assert classify_path(files["img"]) is None
    assert classify_path(files["folder"]) is None
    assert classify_path(files["missing"]) == "gone.png: file not found"
    assert classify_path(files["text"]) == "notes.txt is not an image SqueezeLens can read"
    assert classify_path(Path("/" + "y" * 5000)) is not None  # no OSError escapes


# -- issue 13: data: URLs and file names that are not UTF-8, through real QMimeData ------------------
def png_data_url(size: tuple[int, int] = (6, 4), colour: tuple[int, int, int] = (0, 0, 255)) -> str:
    import base64
    import io

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def test_data_url_drop_gives_the_pixels() -> None:
    mime = QMimeData()
    mime.setUrls([QUrl(png_data_url())])
    assert can_accept(mime)
    content = read_mime(mime)
    assert content.rejected == [] and content.paths == []
    assert content.image is not None and (content.image.width(), content.image.height()) == (6, 4)
    assert content.image.pixelColor(1, 1) == QColor(0, 0, 255)


def test_data_url_paste_as_text() -> None:
    mime = QMimeData()
    mime.setText(png_data_url((3, 5), (10, 200, 10)))
    content = read_mime(mime)
    assert content.image is not None and content.image.pixelColor(0, 0) == QColor(10, 200, 10)


def test_data_url_with_a_bomb_or_garbage_is_refused() -> None:
    import base64
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    for payload, why in ((base64.b64encode(bomb), "image too large"), (b"bm90IGFuIGltYWdl", "not an image")):
        mime = QMimeData()
        mime.setUrls([QUrl("data:image/png;base64," + payload.decode())])
        content = read_mime(mime)
        assert content.image is None and len(content.rejected) == 1 and why in content.rejected[0]


def test_latin1_file_url_keeps_the_names_bytes(tmp_path: Path) -> None:
    import os

    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.png"
    Image.new("RGB", (4, 4)).save(os.fsdecode(raw))
    mime = QMimeData()
    mime.setData("text/uri-list", b"file://" + raw.replace(b"\xe9", b"%E9") + b"\r\n")
    content = read_mime(mime)
    assert content.rejected == []
    assert [os.fsencode(p) for p in content.paths] == [raw]
    pasted = QMimeData()
    pasted.setText("file://" + os.fsdecode(raw).replace("\udce9", "%E9"))
    assert [os.fsencode(p) for p in read_mime(pasted).paths] == [raw]
