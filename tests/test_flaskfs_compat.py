"""What a project moving from Flask-FS 0.6 meets first: its test doubles, backends built by hand,
module-level helpers, storage attributes, folder deletes, and the README's snippet pasted as is."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from flask_fs import files as fs_files
from flask_fs.backends.local import LocalBackend
from flask_fs.backends.mock import MockBackend
from flask_fs.storage import Config
from tests.conftest import make_app
from tests.servers import SWIFT_KEY, SWIFT_USER


def mock_app(tmp_path, storage: fs.Storage, **config) -> Flask:
    app = make_app(tmp_path, FS_BACKEND="mock", **config)
    fs.init_app(app, storage)
    return app


# -- FS_BACKEND = 'mock' and patched MockBackend ------------------------------------------------------


def test_patched_mock_backend_sees_flask_fs_calls(tmp_path, mocker):
    mocked = mocker.patch("flask_fs.backends.mock.MockBackend")
    storage = fs.Storage("test", upload_to="up")
    app = mock_app(tmp_path, storage)
    backend = mocked.return_value
    with app.test_request_context():
        backend.exists.return_value = False
        upload = FileStorage(io.BytesIO(b"x"), "photo.png")
        assert storage.save(upload, prefix="2024") == "up/2024/photo.png"
        backend.save.assert_called_with(upload, "up/2024/photo.png")  # the FileStorage itself, no other argument
        storage.write("notes.txt", "content")
        backend.write.assert_called_with("notes.txt", "content")
        with pytest.raises(fs.FileNotFound):
            storage.read("missing.txt")
        with pytest.raises(fs.FileNotFound):
            storage.open("missing.txt")
        backend.exists.return_value = True
        with pytest.raises(fs.FileExists):
            storage.write("notes.txt", "again")
        backend.read.return_value = b"data"
        assert storage.read("notes.txt") == b"data"
        backend.metadata.return_value = {"size": 4}
        assert storage.metadata("a/b.txt") == {"size": 4, "filename": "b.txt", "url": "http://localhost/test/a/b.txt"}
        backend.metadata.assert_called_with("a/b.txt")
        backend.list_files.return_value = ["one.txt"]
        assert storage.list_files() == ["one.txt"]
        backend.root = "/srv/files"
        assert storage.root == "/srv/files" and storage.path("a.txt") == "/srv/files/a.txt"
        backend.root = None
        with pytest.raises(fs.OperationNotSupported):
            storage.path("a.txt")
    backend.serve.return_value = b"served"
    response = app.test_client().get("/test/a.txt")
    assert response.status_code == 200 and response.data == b"served"
    backend.exists.return_value = False
    assert app.test_client().get("/test/a.txt").status_code == 404


def test_patching_one_mock_backend_method(tmp_path, mocker):
    save = mocker.patch.object(MockBackend, "save")
    storage = fs.Storage("test")
    app = mock_app(tmp_path, storage)
    with app.app_context():
        f = io.BytesIO(b"x")
        assert storage.save(f, "a.txt") == "a.txt"
        save.assert_called_once_with(f, "a.txt")
        storage.save(f, "a.txt", overwrite=True)  # the real MockBackend holds nothing: no FileExists either way
        assert save.call_count == 2


def test_unpatched_mock_backend_stores_nothing(tmp_path):
    storage = fs.Storage("test")
    app = mock_app(tmp_path, storage)
    with app.app_context():
        assert storage.save(io.BytesIO(b"x"), "a.txt") == "a.txt"
        assert not storage.exists("a.txt") and list(storage.list_files()) == []
        with pytest.raises(fs.FileNotFound):
            storage.read("a.txt")


# -- backends built directly ---------------------------------------------------------------------


def test_local_backend_built_directly(tmp_path):
    backend = LocalBackend("test", Config({"root": str(tmp_path)}))
    assert backend.root == str(tmp_path)
    backend.write("a.txt", "text")
    backend.write("b.bin", io.BytesIO(b"file"))
    backend.write("c.png", FileStorage(io.BytesIO(b"upload"), "c.png"))
    backend.save(FileStorage(io.BytesIO(b"saved"), "d.txt"), "d.txt")
    assert [backend.read(n) for n in ("a.txt", "b.bin", "c.png", "d.txt")] == [b"text", b"file", b"upload", b"saved"]


def test_local_backend_without_root_uses_the_app_settings(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    with app.app_context():
        assert LocalBackend("a", Config({})).root == str(tmp_path / "instance" / "fs" / "a")
        app.config["FS_ROOT"] = str(tmp_path / "root")
        assert LocalBackend("a", Config({})).root == str(tmp_path / "root" / "a")
        app.config["FS_LOCAL_ROOT"] = str(tmp_path / "local")
        assert LocalBackend("a", Config({})).root == str(tmp_path / "local" / "a")
    with pytest.raises(fs.ConfigurationError, match="give it a root"):
        LocalBackend("a", Config({}))


def test_s3_backend_built_directly_gets_its_defaults_and_bucket(moto_endpoint):
    import boto3

    from flask_fs.backends.s3 import S3Backend

    backend = S3Backend(
        "direct", Config(endpoint=moto_endpoint, region="us-east-1", access_key="testing", secret_key="testing")
    )
    assert backend.config.multipart_threshold == S3Backend.defaults["multipart_threshold"]
    assert backend.bucket == "direct"
    client = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    client.put_object(Bucket="direct", Key="x.txt", Body=b"made elsewhere")  # the bucket exists already
    assert backend.client.get_object(Bucket="direct", Key="x.txt")["Body"].read() == b"made elsewhere"
    assert backend.metadata("x.txt")["mime"] == "text/plain"  # not S3's "binary/octet-stream"


@pytest.mark.filterwarnings("ignore:GridOut property:DeprecationWarning")  # Flask-FS's name, deprecated by pymongo
def test_gridfs_backend_built_directly_has_flask_fs_attributes(use_mongomock):
    from flask_fs.backends.gridfs import GridFsBackend

    backend = GridFsBackend("things", Config({"mongo_url": "mongodb://localhost:27017", "mongo_db": "fstest"}))
    assert backend.db.name == "fstest" and backend.client.address == ("localhost", 27017)
    upload = FileStorage(io.BytesIO(b"\x89PNG..."), "a.png", content_type="image/x-custom")
    backend.write("a.png", upload)
    assert backend.fs.exists(filename="a.png")
    with backend.open("a.png", "rb") as f:
        assert f.content_type == "image/x-custom" and f.read() == b"\x89PNG..."


def test_swift_backend_creates_its_container_when_built(swift_server):
    import swiftclient

    from flask_fs.backends.swift import SwiftBackend

    config = Config({"user": SWIFT_USER, "key": SWIFT_KEY, "authurl": swift_server.auth_url})
    backend = SwiftBackend("built-directly", config)
    conn = swiftclient.Connection(user=SWIFT_USER, key=SWIFT_KEY, authurl=swift_server.auth_url)
    conn.put_object("built-directly", "x.txt", contents=b"made elsewhere")  # no 404: the container exists
    assert backend.conn.get_object("built-directly", "x.txt")[1] == b"made elsewhere"
    backend.delete("x.txt")
    conn.delete_container("built-directly")


# -- deleting a folder, on every backend ---------------------------------------------------------------


@pytest.fixture(params=["local", "s3", "gridfs"])
def any_storage(request, tmp_path):
    settings = {}
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        settings = {"FS_S3_ENDPOINT": endpoint, "FS_S3_ACCESS_KEY": "t", "FS_S3_SECRET_KEY": "t"}
    elif request.param == "gridfs":
        request.getfixturevalue("use_mongomock")
        settings = {"FS_GRIDFS_MONGO_URL": "mongodb://localhost/compat"}
    app = make_app(tmp_path, FS_BACKEND=request.param, **settings)
    storage = fs.Storage(f"compat-{request.param}-{uuid.uuid4().hex[:8]}", fs.ALL)  # servers live all session
    fs.init_app(app, storage)
    with app.app_context():
        yield storage


def test_uploads_bytes_text_and_files_on_every_backend(any_storage):
    assert any_storage.save(FileStorage(io.BytesIO(b"upload"), "up.txt")) == "up.txt"
    any_storage.write("text.txt", "text")
    any_storage.write("file.txt", io.BytesIO(b"file"))
    any_storage.write("wfs.txt", FileStorage(io.BytesIO(b"wfs"), "x.txt"))
    assert [any_storage.read(n) for n in ("up.txt", "text.txt", "file.txt", "wfs.txt")] == [
        b"upload",
        b"text",
        b"file",
        b"wfs",
    ]


def test_deleting_a_folder_deletes_its_files_only(any_storage):
    for name in ("sub/a.txt", "sub/deep/b.txt", "subway.txt", "sub.txt"):
        any_storage.write(name, name)
    any_storage.delete("sub")
    assert sorted(any_storage.list_files()) == ["sub.txt", "subway.txt"]
    any_storage.delete("sub.txt")  # a file: that file only
    assert list(any_storage.list_files()) == ["subway.txt"]


# -- module helpers and storage attributes ---------------------------------------------------------


def test_files_helpers():
    assert fs_files.mime("report.csv") == "text/csv" and fs_files.mime("noext") is None
    assert fs_files.mime("noext", default="application/octet-stream") == "application/octet-stream"
    assert fs_files.lower_extension("ARCHIVE.TAR.GZ") == "ARCHIVE.TAR.gz" and fs_files.lower_extension("FOO") == "FOO"
    assert "exe" not in fs.AllExcept("exe") and "e" in fs.AllExcept("exe") and "csv" in fs.AllExcept("exe")


def test_storage_attributes_as_in_flask_fs(tmp_path):
    files = fs.Storage("files", fs.DEFAULTS)
    assert files.backend is None and files.config == {}  # outside an app context
    app = make_app(tmp_path, FILES_FS_URL="cdn.example.com/media")
    fs.init_app(app, files)
    assert app.extensions["fs"]["files"] is files and "files" in app.extensions["fs"]
    with app.test_request_context():
        assert files.extensions is fs.DEFAULTS and files.backend_name == "local"
        assert files.root == str(tmp_path / "instance" / "fs" / "files")
        assert files.url("a.txt") == "http://cdn.example.com/media/a.txt"
    with app.test_request_context(base_url="https://localhost"):
        assert files.url("a.txt") == "https://cdn.example.com/media/a.txt"


def test_metadata_keys(storage):
    storage.write("docs/a.txt", "hello")
    meta = storage.metadata("docs/a.txt")
    assert set(meta) == {"filename", "url", "checksum", "size", "mime", "modified"}
    assert meta["filename"] == "a.txt" and meta["url"] == "http://localhost/files/docs/a.txt"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", meta["checksum"])


# -- the README's snippet, pasted into a fresh app ---------------------------------------------------


def readme_snippet() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", readme, re.S).group(1)


def png_bytes(color: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (3, 3), color).save(out, "PNG")
    return out.getvalue()


def test_readme_snippet_works_as_pasted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Flask(__name__) of an unknown module roots its instance folder here
    namespace = {"__name__": "pasted_snippet"}
    exec(compile(readme_snippet(), "README.md", "exec"), namespace)
    client = namespace["app"].test_client()
    png, other = png_bytes("red"), png_bytes("blue")
    first = client.post("/upload", data={"file": (io.BytesIO(png), "photo.png")})
    assert first.status_code == 200
    assert client.get(first.json["url"]).data == png  # the URL it returns works, in production mode too
    second = client.post("/upload", data={"file": (io.BytesIO(other), "photo.png")})
    assert second.status_code == 200 and second.json["url"] != first.json["url"]
    assert client.get(second.json["url"]).data == other
    for content, name in ((b"#!/bin/sh", "run.sh"), (b"<html><script>alert(1)</script>", "page.png")):
        refused = client.post("/upload", data={"file": (io.BytesIO(content), name)})
        assert refused.status_code == 400
