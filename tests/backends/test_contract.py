"""One behaviour for every backend: each test runs on local, s3 (moto and Swift's S3 API), swift
and gridfs (see conftest.BACKENDS)."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime

import pytest
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from tests.conftest import stream

HOSTILE = ["../x.txt", "a/../../x.txt", "/etc/passwd", "a\x00b.txt", "a\\..\\x.txt", "", "a//b", "C:x.txt"]


def test_write_read_exists_contains(any_storage):
    any_storage.write("hello.txt", "héllo")
    assert any_storage.read("hello.txt") == "héllo".encode()
    assert any_storage.exists("hello.txt")
    assert "hello.txt" in any_storage
    assert "other.txt" not in any_storage


def test_missing_file_raises_file_not_found(any_storage):
    for call in (
        any_storage.read,
        any_storage.metadata,
        lambda n: any_storage.open(n, "rb"),
        lambda n: list(any_storage.read_chunks(n)),
    ):
        with pytest.raises(fs.FileNotFound):
            call("missing.txt")
    with pytest.raises(fs.FileNotFound):
        any_storage.copy("missing.txt", "other.txt")


def test_overwrite_policy_keeps_existing_content(any_storage):
    any_storage.write("f.txt", b"first")
    with pytest.raises(fs.FileExists):
        any_storage.write("f.txt", b"second")
    with pytest.raises(fs.FileExists):
        any_storage.save(stream(b"third"), "f.txt")
    assert any_storage.read("f.txt") == b"first"
    any_storage.write("f.txt", b"second", overwrite=True)
    assert any_storage.read("f.txt") == b"second"


def test_save_upload_keeps_sanitised_name_and_content(any_storage):
    upload = FileStorage(stream(b"data"), filename="../../my photo.JPG", content_type="image/jpeg")
    name = any_storage.save(upload)
    assert name == "my_photo.JPG"
    assert any_storage.read(name) == b"data"
    assert any_storage.save(FileStorage(stream(b"x"), filename="doc.txt"), prefix="a/b") == "a/b/doc.txt"


def test_save_with_rename_never_replaces(any_storage):
    names = [any_storage.save(stream(str(i)), "same.txt", rename=True) for i in range(3)]
    assert names == ["same.txt", "same_1.txt", "same_2.txt"]
    assert [any_storage.read(n) for n in names] == [b"0", b"1", b"2"]


def test_delete_removes_exactly_that_file(any_storage):
    for name in ("f.txt", "f.txt.bak", "f.txt2", "dir/f.txt"):
        any_storage.write(name, name)
    any_storage.delete("f.txt")
    assert not any_storage.exists("f.txt")
    assert sorted(any_storage.list_files()) == ["dir/f.txt", "f.txt.bak", "f.txt2"]
    any_storage.delete("f.txt")  # deleting a missing file is not an error


def test_list_files_with_nested_names(any_storage):
    names = {"a.txt", "sub/b.txt", "sub/deeper/c.txt", "été/d.txt"}
    for name in names:
        any_storage.write(name, name)
    assert set(any_storage.list_files()) == names


def test_metadata_reports_true_checksum_size_mime_and_date(any_storage):
    content = os.urandom(3000)
    before = datetime.now(UTC).replace(microsecond=0)
    any_storage.write("sub/pic.png", content)
    meta = any_storage.metadata("sub/pic.png")
    algo, digest = meta["checksum"].split(":")
    assert digest == hashlib.new(algo, content).hexdigest()
    assert meta["size"] == 3000
    assert meta["mime"] == "image/png"
    assert meta["filename"] == "pic.png"
    assert meta["url"].endswith("sub/pic.png")
    assert meta["modified"].tzinfo is not None
    assert before.timestamp() - 5 <= meta["modified"].timestamp() <= datetime.now(UTC).timestamp() + 5


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_open_for_writing_then_reading(any_storage, mode):
    data = "some text é" if mode == "w" else b"\x00\x01binary"
    with any_storage.open("f.dat", mode) as f:
        f.write(data)
    with any_storage.open("f.dat", "r" if mode == "w" else "rb") as f:
        assert f.read() == data


def test_open_x_mode_refuses_existing_and_w_mode_replaces(any_storage):
    any_storage.write("f.txt", b"old")
    with pytest.raises(fs.FileExists), any_storage.open("f.txt", "xb") as f:
        f.write(b"new")
    assert any_storage.read("f.txt") == b"old"
    with any_storage.open("f.txt", "wb") as f:
        f.write(b"new")
    assert any_storage.read("f.txt") == b"new"


def test_failed_write_block_stores_nothing(any_storage):
    with pytest.raises(RuntimeError), any_storage.open("f.txt", "wb") as f:
        f.write(b"half")
        raise RuntimeError("client went away")
    assert not any_storage.exists("f.txt")


def test_read_chunks_and_ranges(any_storage):
    content = bytes(range(256)) * 40
    any_storage.write("f.bin", content)
    chunks = list(any_storage.read_chunks("f.bin", chunk_size=1000))
    assert b"".join(chunks) == content and max(map(len, chunks)) <= 1000
    assert b"".join(any_storage.read_chunks("f.bin", start=100, end=5000)) == content[100:5000]
    assert b"".join(any_storage.read_chunks("f.bin", start=10000)) == content[10000:]


def test_copy_and_move(any_storage):
    any_storage.write("a.txt", b"A")
    any_storage.write("b.txt", b"B")
    any_storage.copy("a.txt", "sub/c.txt")
    assert any_storage.read("sub/c.txt") == b"A" and any_storage.exists("a.txt")
    with pytest.raises(fs.FileExists):
        any_storage.move("a.txt", "b.txt")
    assert any_storage.read("b.txt") == b"B" and any_storage.exists("a.txt")
    any_storage.move("a.txt", "moved/a.txt")
    assert not any_storage.exists("a.txt") and any_storage.read("moved/a.txt") == b"A"
    any_storage.move("moved/a.txt", "b.txt", overwrite=True)
    assert any_storage.read("b.txt") == b"A"


def test_large_file_round_trip_streams(any_storage):
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()

    class Source(io.RawIOBase):  # 24 MiB produced on the fly, never held whole
        sent = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), 24 * len(block) - self.sent)
            offset = self.sent % len(block)
            n = min(n, len(block) - offset)
            buffer[:n] = block[offset : offset + n]
            self.sent += n
            return n

    any_storage.save(io.BufferedReader(Source(), 1024 * 1024), "big.bin")
    size = 0
    for chunk in any_storage.read_chunks("big.bin"):
        size += len(chunk)
        digest.update(chunk)
    assert size == 24 * 1024 * 1024
    assert digest.hexdigest() == hashlib.sha256(block * 24).hexdigest()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_everywhere(any_storage, name):
    any_storage.write("ok.txt", b"ok")
    calls = [
        lambda: any_storage.write(name, b"x"),
        lambda: any_storage.save(stream(b"x"), name),
        lambda: any_storage.read(name),
        lambda: any_storage.open(name, "rb"),
        lambda: any_storage.open(name, "wb"),
        lambda: any_storage.exists(name),
        lambda: any_storage.delete(name),
        lambda: any_storage.metadata(name),
        lambda: any_storage.copy("ok.txt", name),
        lambda: any_storage.copy(name, "ok2.txt"),
        lambda: any_storage.move(name, "ok2.txt"),
        lambda: any_storage.url(name),
        lambda: any_storage.path(name),
        lambda: any_storage.serve(name),
    ]
    for call in calls:
        with pytest.raises(fs.InvalidFileName):
            call()
    assert list(any_storage.list_files()) == ["ok.txt"]


def test_serving_with_type_etag_conditional_and_range(any_storage, backend_app):
    content = bytes(range(256)) * 4
    any_storage.write("dir/pic.png", content)
    client = backend_app.test_client()
    response = client.get("/files/dir/pic.png")
    assert response.status_code == 200
    assert response.data == content
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    assert etag and response.headers["Last-Modified"]
    assert client.get("/files/dir/pic.png", headers={"If-None-Match": etag}).status_code == 304
    partial = client.get("/files/dir/pic.png", headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.data == content[10:20]
    assert partial.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
    assert client.get("/files/dir/missing.png").status_code == 404


def test_signed_urls_or_a_clear_refusal(any_storage, backend_kind):
    any_storage.write("secret.txt", b"secret")
    if backend_kind in ("local", "gridfs-mongomock", "gridfs-mongodb"):
        with pytest.raises(fs.OperationNotSupported):
            any_storage.signed_url("secret.txt")
        return
    import urllib.request

    url = any_storage.signed_url("secret.txt", expires=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"secret"
