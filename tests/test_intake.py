"""The upload intake: names, extension policy, size limits while streaming, content checks."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from flask_fs.intake import content_matches, sniff
from tests.conftest import make_app

HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(out, fmt)
    return out.getvalue()


class OneWay(io.RawIOBase):
    """A stream that can only be read forward, like a request body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.fixture
def make(tmp_path):
    """Factory: a storage on a fresh app (in an app context) with the given extensions and settings."""
    contexts = []

    def factory(extensions=fs.IMAGES, name="uploads", **config):
        app = make_app(tmp_path / f"app{len(contexts)}", **config)
        storage = fs.Storage(name, extensions)
        fs.init_app(app, storage)
        context = app.app_context()
        context.push()
        contexts.append(context)
        return storage

    yield factory
    for context in reversed(contexts):
        context.pop()


@pytest.mark.parametrize(
    ("content", "filename", "expected"),
    [
        (image("JPEG"), "a.jpg", True),
        (image("JPEG"), "a.JPEG", True),
        (image("PNG"), "a.png", True),
        (image("GIF"), "a.gif", True),
        (image("WEBP"), "a.webp", True),
        (image("GIF"), "a.jpg", False),  # a GIF named as a JPEG
        (HTML, "a.jpg", False),  # a page named as an image
        (SVG, "a.png", False),
        (SVG, "a.svg", True),
        (b"", "a.png", False),  # nothing is not a PNG
        (b"just some words", "a.png", False),
        (b"just some words", "a.txt", True),  # text has no signature to check...
        (b"a,b\n1,2\n", "a.csv", True),
        (HTML, "a.txt", False),  # ...but must not be an HTML document
        (HTML, "a.html", True),
        (b"%PDF-1.4\n%...", "a.pdf", True),
        (HTML, "a.pdf", False),
        (image("PNG"), "noextension", True),  # no declared type: only active content is refused
        (HTML, "noextension", False),
    ],
)
def test_content_matches_the_declared_type(content, filename, expected):
    assert content_matches(content[:8192], filename) is expected


def test_sniff_names_what_it_found():
    assert ("gif", "image/gif") in sniff(image("GIF"))
    assert sniff(b"") == []
    assert sniff(b"plain words") == []


def test_image_storages_check_content_by_default(make):
    images = make(fs.IMAGES)
    assert images.save(io.BytesIO(image("JPEG")), "photo.jpg") == "photo.jpg"
    for content, name in ((image("GIF"), "fake.jpg"), (HTML, "page.jpg"), (SVG, "vector.png")):
        with pytest.raises(fs.ContentMismatch, match=name.replace(".", r"\.")):
            images.save(FileStorage(io.BytesIO(content), filename=name))
    assert list(images.list_files()) == ["photo.jpg"]


def test_the_check_is_an_upload_refusal(make):
    images = make(fs.IMAGES)
    with pytest.raises(fs.UploadNotAllowed):
        images.save(io.BytesIO(HTML), "x.jpg")


def test_other_storages_check_content_when_asked(make):
    documents = make(fs.DOCUMENTS + ["pdf", "txt"], name="documents")
    assert documents.save(io.BytesIO(HTML), "page.txt") == "page.txt"  # off by default
    checked = make(fs.DOCUMENTS + ["pdf", "txt"], name="documents", DOCUMENTS_FS_CHECK_CONTENT=True)
    with pytest.raises(fs.ContentMismatch):
        checked.save(io.BytesIO(HTML), "page2.txt")
    with pytest.raises(fs.ContentMismatch):
        checked.save(io.BytesIO(HTML), "report.pdf")
    assert checked.save(io.BytesIO(b"%PDF-1.4\n..."), "report.pdf") == "report.pdf"


def test_the_check_can_be_turned_off(make):
    images = make(fs.IMAGES, UPLOADS_FS_CHECK_CONTENT="false")
    assert images.save(io.BytesIO(image("GIF")), "fake.jpg") == "fake.jpg"


def test_one_way_streams_are_checked_and_stored_whole(make):
    images = make(fs.IMAGES)
    data = image("PNG") + b"\0" * 50_000  # longer than what the check reads
    assert images.save(OneWay(data), "big.png") == "big.png"
    assert images.read("big.png") == data
    with pytest.raises(fs.ContentMismatch):
        images.save(OneWay(image("GIF")), "one-way.png")
    assert not images.exists("one-way.png")


def test_bytes_and_text_are_accepted(make):
    files = make(fs.ALL, name="files")
    assert files.save(b"raw", "a.bin") == "a.bin"
    assert files.save("tést", "b.txt") == "b.txt"
    assert files.read("a.bin") == b"raw"
    assert files.read("b.txt") == "tést".encode()
    with pytest.raises(TypeError, match="int"):
        files.save(42, "c.txt")


def test_max_size_holds_for_save_write_and_open(make):
    files = make(fs.ALL, name="files", FILES_FS_MAX_SIZE=10)
    files.write("kept.txt", b"0123456789")
    with pytest.raises(fs.FileTooLarge, match="10 bytes"):
        files.save(io.BytesIO(b"x" * 11), "big.txt")
    with pytest.raises(fs.FileTooLarge):
        files.write("big.txt", b"x" * 11)
    with pytest.raises(fs.FileTooLarge):
        files.write("kept.txt", "x" * 11, overwrite=True)
    with pytest.raises(fs.FileTooLarge), files.open("big.txt", "wb") as f:
        f.write(b"12345")
        f.write(b"678901")
    with pytest.raises(fs.FileTooLarge), files.open("big.txt", "w") as f:
        f.write("x" * 11)
        f.flush()
    assert sorted(files.list_files()) == ["kept.txt"]
    assert files.read("kept.txt") == b"0123456789"  # the stored file is untouched
    with files.open("ok.txt", "w") as f:
        f.write("0123456789")
    assert files.read("ok.txt") == b"0123456789"


def test_a_writer_past_the_limit_stores_nothing_even_when_the_error_is_caught(make):
    files = make(fs.ALL, name="files", FILES_FS_MAX_SIZE=4)
    writer = files.open("caught.txt", "wb")
    writer.write(b"1234")
    with pytest.raises(fs.FileTooLarge):
        writer.write(b"5")
    writer.close()
    assert not files.exists("caught.txt")
