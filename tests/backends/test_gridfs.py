"""GridFS specifics: buckets, file documents, revisions, races and failures, checked in the database.

Each test runs on mongomock, and on a real MongoDB when FLASK_FS_MONGO_URL is set (skipped otherwise),
except the dead-server test, which needs real pymongo sockets and no server at all.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import socket
import threading
import time

import gridfs
import pymongo
import pymongo.errors
import pytest

import flask_fs as fs
from tests.backends.conftest import backend_settings
from tests.conftest import make_app

MIB = 1024 * 1024


@pytest.fixture(params=["gridfs-mongomock", "gridfs-mongodb"])
def settings(request, monkeypatch):
    settings = backend_settings(request, request.param)
    if request.param == "gridfs-mongomock":
        # Each mongomock client is its own in-memory server: make all of them share one, as the
        # clients of a real server do, so storages and raw clients see the same databases.
        import mongomock.store

        monkeypatch.setattr(
            pymongo, "MongoClient", functools.partial(pymongo.MongoClient, _store=mongomock.store.ServerStore())
        )
    return settings


@pytest.fixture
def app(settings, tmp_path):
    return make_app(tmp_path, **settings)


@pytest.fixture
def files(app):
    """Storage ``files`` on GridFS; its database is dropped afterwards (it is a fresh one per test)."""
    storage = fs.Storage("files", fs.ALL)
    fs.init_app(app, storage)
    with app.app_context():
        yield storage
        storage.backend.client.drop_database(storage.backend.database_name)


def documents(storage, bucket="files"):
    """The raw file documents of a bucket, straight from the database."""
    return list(storage.backend.database[f"{bucket}.files"].find({}))


def chunk_count(storage, bucket="files"):
    return storage.backend.database[f"{bucket}.chunks"].count_documents({})


def test_one_bucket_per_storage_and_bucket_setting(settings, tmp_path):
    app = make_app(tmp_path, **settings, PHOTOS_FS_BUCKET="pictures")
    files, avatars, photos = fs.Storage("files", fs.ALL), fs.Storage("avatars", fs.ALL), fs.Storage("photos", fs.ALL)
    fs.init_app(app, files, avatars, photos)
    with app.app_context():
        files.write("a.txt", b"in files")
        avatars.write("a.txt", b"in avatars")
        photos.write("b.txt", b"in photos")
        db = files.backend.database
        try:
            collections = set(db.list_collection_names())
            assert {"files.files", "files.chunks", "avatars.files", "avatars.chunks"} <= collections
            assert {"pictures.files", "pictures.chunks"} <= collections and "photos.files" not in collections
            assert [d["filename"] for d in db["avatars.files"].find({})] == ["a.txt"]
            assert files.read("a.txt") == b"in files" and avatars.read("a.txt") == b"in avatars"
            assert list(photos.list_files()) == ["b.txt"]
        finally:
            files.backend.client.drop_database(files.backend.database_name)


def test_file_document_holds_type_and_sha256_and_plain_gridfs_reads_it(files):
    files.check()  # reachable, bucket readable
    content = os.urandom(300 * 1024)  # two GridFS chunks
    files.write("docs/report.pdf", content)
    [doc] = documents(files)
    assert doc["filename"] == "docs/report.pdf" and doc["length"] == len(content)
    assert doc["metadata"]["contentType"] == "application/pdf"
    assert doc["metadata"]["sha256"] == hashlib.sha256(content).hexdigest()
    bucket = gridfs.GridFSBucket(files.backend.database, bucket_name="files")
    assert bucket.open_download_stream_by_name("docs/report.pdf").read() == content
    files.save(io.BytesIO(b"a,b"), "export.bin", headers={"Content-Type": "text/csv"})
    assert files.metadata("export.bin")["mime"] == "text/csv"
    assert files.backend.files.find_one({"filename": "export.bin"})["metadata"]["contentType"] == "text/csv"


def test_file_stored_by_another_tool_is_read_checksummed_and_not_replaced(files):
    bucket = gridfs.GridFSBucket(files.backend.database, bucket_name="files")
    bucket.upload_from_stream("legacy.bin", io.BytesIO(b"old data"))  # no metadata at all
    meta = files.metadata("legacy.bin")
    assert meta["checksum"] == "md5:" + hashlib.md5(b"old data").hexdigest()  # what Flask-FS reported
    assert meta["size"] == 8 and meta["mime"] == "application/octet-stream"
    files.backend.files.update_one({"filename": "legacy.bin"}, {"$set": {"md5": "0" * 32}})  # pymongo 3 stored one
    assert files.metadata("legacy.bin")["checksum"] == "md5:" + "0" * 32
    with pytest.raises(fs.FileExists):
        files.write("legacy.bin", b"new data")
    assert files.read("legacy.bin") == b"old data" and len(documents(files)) == 1


def test_overwrite_leaves_exactly_one_revision(files):
    for i in range(3):
        files.write("f.bin", bytes([i]) * (300 * 1024), overwrite=True)
    [doc] = documents(files)
    assert files.read("f.bin") == bytes([2]) * (300 * 1024)
    assert chunk_count(files) == 2  # only the chunks of the surviving revision


def test_concurrent_exclusive_saves_exactly_one_wins(app, files, monkeypatch):
    """Eight threads save one name without overwrite, in the worst interleaving: every upload ends
    (stored or refused by the server) before any looks for other revisions, and all have looked
    before any acts on it. One must win, the others get FileExists; the winner's content is intact."""
    backend, threads_count = files.backend, 8
    upload, has_other_revision = backend._upload, backend._has_other_revision
    lock, all_uploaded, all_checked = threading.Lock(), threading.Event(), threading.Event()
    count = {"uploads": 0, "stored": 0, "checks": 0}

    def counted_upload(*args, **kwargs):
        stored = False
        try:
            file_id = upload(*args, **kwargs)
            stored = True
            return file_id
        finally:
            with lock:
                count["uploads"] += 1
                count["stored"] += stored
                if count["uploads"] == threads_count:
                    all_uploaded.set()

    def late_check(*args, **kwargs):
        assert all_uploaded.wait(timeout=30)
        result = has_other_revision(*args, **kwargs)
        with lock:
            count["checks"] += 1
            if count["checks"] == count["stored"]:
                all_checked.set()
        assert all_checked.wait(timeout=30)
        return result

    monkeypatch.setattr(backend, "_upload", counted_upload)
    monkeypatch.setattr(backend, "_has_other_revision", late_check)
    contents = [bytes([i]) * (300 * 1024 + i) for i in range(threads_count)]
    outcome: dict[int, object] = {}

    def save(i):
        with app.app_context():
            try:
                files.save(io.BytesIO(contents[i]), "race.bin")
                outcome[i] = "saved"
            except Exception as exc:  # recorded and checked below
                outcome[i] = exc

    threads = [threading.Thread(target=save, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, result in outcome.items() if result == "saved"]
    assert len(winners) == 1, outcome
    assert all(isinstance(result, fs.FileExists) for i, result in outcome.items() if i not in winners), outcome
    assert files.read("race.bin") == contents[winners[0]]
    assert len(documents(files)) == 1 and chunk_count(files) == 2  # the losers left no chunks


def test_exclusive_save_loses_to_a_concurrent_overwrite(app, files, monkeypatch):
    """A save without overwrite whose upload ends while a save with overwrite stores the same name
    gives way: FileExists, and only the overwriting content remains."""
    backend = files.backend
    has_other_revision = backend._has_other_revision

    def overwrite_lands_first(*args, **kwargs):
        monkeypatch.setattr(backend, "_has_other_revision", has_other_revision)
        files.write("f.txt", b"overwrite", overwrite=True)
        return has_other_revision(*args, **kwargs)

    monkeypatch.setattr(backend, "_has_other_revision", overwrite_lands_first)
    with pytest.raises(fs.FileExists):
        files.write("f.txt", b"exclusive")
    assert files.read("f.txt") == b"overwrite" and len(documents(files)) == 1 and chunk_count(files) == 1


def test_failed_upload_leaves_no_file_and_no_chunks(files):
    """GridFS writes the file document last: mid-upload, chunks exist but no file; after the error, nothing."""
    block = os.urandom(MIB)
    seen = {}

    class Failing(io.RawIOBase):  # 50 MiB: GridIn buffers up to 48 MB of chunks before writing them
        sent = 0

        def readable(self):
            return True

        def read(self, size=-1):
            if self.sent == 50:
                seen["chunks"] = chunk_count(files)
                seen["exists"] = files.exists("big.bin")
                raise ConnectionResetError("client went away")
            self.sent += 1
            return block

    with pytest.raises(ConnectionResetError):
        files.save(Failing(), "big.bin")
    assert seen["chunks"] > 0 and seen["exists"] is False
    assert not files.exists("big.bin") and documents(files) == [] and chunk_count(files) == 0


def test_move_renames_on_the_server(files):
    files.write("a.txt", b"A")
    files.write("b.txt", b"B")
    [before] = [d for d in documents(files) if d["filename"] == "a.txt"]
    files.move("a.txt", "dir/c.txt")
    [after] = [d for d in documents(files) if d["filename"] == "dir/c.txt"]
    assert after["_id"] == before["_id"]  # same document and chunks, nothing copied
    with pytest.raises(fs.FileExists):
        files.move("dir/c.txt", "b.txt")
    assert files.read("b.txt") == b"B" and files.read("dir/c.txt") == b"A"
    files.move("dir/c.txt", "b.txt", overwrite=True)
    assert files.read("b.txt") == b"A" and sorted(files.list_files()) == ["b.txt"]
    assert chunk_count(files) == 1


def test_mongo_db_comes_from_the_url_or_is_required(tmp_path):
    storage = fs.Storage("files", fs.ALL)
    app = make_app(tmp_path, FS_BACKEND="gridfs", FS_GRIDFS_MONGO_URL="mongodb://localhost/fromurl")
    fs.init_app(app, storage)
    with app.app_context():
        assert storage.backend.database_name == "fromurl"
    app = make_app(tmp_path, FS_BACKEND="gridfs", FS_GRIDFS_MONGO_URL="mongodb://localhost")
    with pytest.raises(fs.ConfigurationError, match="MONGO_DB"):
        fs.init_app(app, storage)


def test_dead_server_gives_backend_error_quickly(tmp_path):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(
        tmp_path,
        FS_BACKEND="gridfs",
        FS_GRIDFS_MONGO_URL=f"mongodb://127.0.0.1:{port}/db",
        FS_GRIDFS_SERVER_SELECTION_TIMEOUT_MS=300,
    )
    storage = fs.Storage("files", fs.ALL)
    fs.init_app(app, storage)
    with app.app_context():
        calls = [
            lambda: storage.write("a.txt", b"x"),
            lambda: storage.read("a.txt"),
            lambda: storage.exists("a.txt"),
            lambda: list(storage.list_files()),
            lambda: storage.metadata("a.txt"),
            lambda: storage.delete("a.txt"),
            storage.check,
        ]
        for call in calls:
            start = time.monotonic()
            with pytest.raises(fs.BackendError) as error:
                call()
            assert time.monotonic() - start < 3
            assert isinstance(error.value.__cause__, pymongo.errors.ServerSelectionTimeoutError)


def test_close_closes_the_mongo_client_and_its_threads(tmp_path):
    # Real pymongo (its monitoring threads start with the client); no server is needed for that.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    before = set(threading.enumerate())
    app = make_app(tmp_path, FS_BACKEND="gridfs", FS_GRIDFS_MONGO_URL=f"mongodb://127.0.0.1:{port}/db")
    storage = fs.Storage("files", fs.ALL)
    fs.init_app(app, storage)
    with app.app_context():
        client = storage.backend.client
        assert set(threading.enumerate()) - before
        fs.init_app(app, storage)  # configured again: the old backend's client is closed
        deadline = time.monotonic() + 10
        while set(threading.enumerate()) - before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(threading.enumerate()) - before == set()
        with pytest.raises(pymongo.errors.InvalidOperation):  # a closed client refuses new work
            client.db.files.find_one()
        assert storage.backend.client is not client
        fs.close(app)
