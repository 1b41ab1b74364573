"""What the Swift backend adds to the contract, against a real Swift All-In-One: containers,
large objects (SLO), temporary URLs, credentials, server failures, token renewal and threads."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import swiftclient
from swiftclient.exceptions import ClientException

import flask_fs as fs
from flask_fs.backends import swift as swift_backend
from flask_fs.backends.swift import SwiftBackend
from flask_fs.config import resolve
from tests.backends.conftest import swift_settings
from tests.conftest import make_app
from tests.servers import start_swift

MIB = 1024 * 1024


@pytest.fixture
def open_storage(tmp_path):
    """``open_storage(server, name=..., **settings)``: a storage on its own app, in an app context."""
    contexts = []

    def open_storage(server, name="files", **settings):
        config = {**swift_settings(server), "FS_SWIFT_STARTING_BACKOFF": 0.01, **settings}
        app = make_app(tmp_path / uuid.uuid4().hex, **config)
        storage = fs.Storage(name, fs.ALL)
        fs.init_app(app, storage)
        context = app.app_context()
        context.push()
        contexts.append(context)
        return storage

    yield open_storage
    for context in reversed(contexts):
        context.pop()


@pytest.fixture
def files(swift_server, open_storage):
    """Storage ``files`` in a fresh container, with 3 MiB segments."""
    return open_storage(swift_server, FILES_FS_SEGMENT_SIZE=3 * MIB)


def raw(server) -> swiftclient.Connection:
    return swiftclient.Connection(server.auth_url, server.user, server.key, retries=0)


def names_in(server, container: str) -> list[str]:
    try:
        return [item["name"] for item in raw(server).get_container(container, full_listing=True)[1]]
    except ClientException as exc:
        if exc.http_status == 404:
            return []
        raise


class OneWay(io.RawIOBase):
    """A stream that cannot be rewound, producing ``size`` bytes of ``block`` repeated; it calls
    ``at_half()`` once, when half of it has been read."""

    def __init__(self, block: bytes, size: int, at_half=None):
        self.block, self.size, self.sent, self.at_half = block, size, 0, at_half

    def readable(self):
        return True

    def readinto(self, buffer):
        offset = self.sent % len(self.block)
        n = min(len(buffer), self.size - self.sent, len(self.block) - offset)
        if self.at_half and self.sent >= self.size // 2:
            self.at_half, at_half = None, self.at_half
            at_half()
        buffer[:n] = self.block[offset : offset + n]
        self.sent += n
        return n


def content(size: int) -> bytes:
    return os.urandom(MIB) * (size // MIB) + os.urandom(size % MIB)


# -- containers ----------------------------------------------------------------------------------


def test_container_defaults_to_storage_name_and_is_created_by_the_first_write(swift_server, open_storage):
    name = f"photos_{uuid.uuid4().hex[:8]}"
    photos = open_storage(swift_server, name=name)
    assert photos.backend.container == name
    with pytest.raises(swiftclient.ClientException):  # init_app contacts no server
        raw(swift_server).head_container(name)
    # Before the first write: reads find nothing, and the health check passes.
    assert not photos.exists("a.txt")
    assert list(photos.list_files()) == []
    for call in (photos.read, photos.metadata, lambda n: photos.open(n, "rb")):
        with pytest.raises(fs.FileNotFound):
            call("a.txt")
    photos.check()
    photos.write("a.txt", b"A")
    raw(swift_server).head_container(name)
    assert raw(swift_server).get_object(name, "a.txt")[1] == b"A"


def test_container_setting_and_listing_in_pages(swift_server, open_storage):
    container = f"elsewhere-{uuid.uuid4().hex[:8]}"
    files = open_storage(swift_server, FILES_FS_CONTAINER=container)
    files.backend.page_size = 2
    names = {"a.txt", "b/c.txt", "b/d/e.txt", "f.txt", "g.txt"}
    for name in names:
        files.write(name, name)
    assert set(files.list_files()) == names
    assert set(names_in(swift_server, container)) == names


# -- large objects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "size", "segments"),
    [("rewindable", 2 * MIB, 0), ("rewindable", 10 * MIB, 4), ("one-way", MIB // 2, 0), ("one-way", 10 * MIB, 4)],
)
def test_large_files_go_up_as_slo_with_a_true_checksum(swift_server, files, kind, size, segments):
    data = content(size)
    source = io.BytesIO(data) if kind == "rewindable" else io.BufferedReader(OneWay(data, size))
    files.save(source, "big.bin")
    headers = raw(swift_server).head_object(files.backend.container, "big.bin")
    assert (headers.get("x-static-large-object") == "True") == bool(segments)
    assert len(names_in(swift_server, files.backend.segments)) == segments
    meta = files.metadata("big.bin")
    assert meta["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert meta["size"] == size
    assert b"".join(files.read_chunks("big.bin", chunk_size=MIB)) == data
    files.delete("big.bin")
    assert not files.exists("big.bin")
    assert names_in(swift_server, files.backend.segments) == []


def test_saving_over_an_existing_large_object(swift_server, files):
    files.save(io.BytesIO(content(7 * MIB)), "big.bin")
    with pytest.raises(fs.FileExists):
        files.save(io.BufferedReader(OneWay(b"x" * MIB, 7 * MIB)), "big.bin")
    assert len(names_in(swift_server, files.backend.segments)) == 3  # the refused upload left nothing
    files.write("big.bin", b"small now", overwrite=True)
    assert files.read("big.bin") == b"small now"
    assert names_in(swift_server, files.backend.segments) == []  # the replaced object's segments are gone


def test_a_name_taken_during_a_large_upload_is_not_replaced(swift_server, files):
    container = files.backend.container
    source = OneWay(b"y" * MIB, 8 * MIB, at_half=lambda: raw(swift_server).put_object(container, "f.bin", b"other"))
    with pytest.raises(fs.FileExists):
        files.save(io.BufferedReader(source), "f.bin")
    assert files.read("f.bin") == b"other"
    assert names_in(swift_server, files.backend.segments) == []


def test_upload_past_max_size_stops_and_leaves_nothing(swift_server, open_storage):
    files = open_storage(swift_server, FILES_FS_SEGMENT_SIZE=3 * MIB, FILES_FS_MAX_SIZE=5 * MIB)
    with pytest.raises(fs.FileTooLarge):
        files.save(io.BufferedReader(OneWay(b"x" * MIB, 8 * MIB)), "big.bin")
    assert not files.exists("big.bin")
    assert names_in(swift_server, files.backend.segments) == []  # the first segment, sent, was removed
    files.write("after.txt", b"after")  # the interrupted connection was not reused
    assert files.read("after.txt") == b"after"


def test_copy_and_move_large_objects_server_side(swift_server, files):
    data = content(7 * MIB)
    files.save(io.BytesIO(data), "a.bin")
    files.copy("a.bin", "b.bin")
    assert len(names_in(swift_server, files.backend.segments)) == 6  # the copy has its own segments
    files.delete("a.bin")
    assert files.read("b.bin") == data
    files.move("b.bin", "sub/c.bin")
    assert not files.exists("b.bin")
    assert len(names_in(swift_server, files.backend.segments)) == 3  # moved, not copied
    meta = files.metadata("sub/c.bin")
    assert meta["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert b"".join(files.read_chunks("sub/c.bin")) == data
    files.write("small.txt", b"s")
    with pytest.raises(fs.FileExists):
        files.copy("small.txt", "sub/c.bin")
    files.move("small.txt", "sub/c.bin", overwrite=True)
    assert files.read("sub/c.bin") == b"s"
    assert names_in(swift_server, files.backend.segments) == []


@pytest.mark.parametrize("size", [100, 4 * MIB])
def test_headers_are_kept_with_the_object(swift_server, files, size):
    headers = {
        "Content-Type": "text/css", "Cache-Control": "max-age=60", "Content-Encoding": "gzip",
        "x-amz-acl": "public-read", "Author": "me", "X-Object-Meta-Tag": "t", "x-amz-meta-origin": "site",
    }  # fmt: skip
    data = b"a" * size
    files.save(io.BufferedReader(OneWay(data, size)), "app.css", headers=headers)  # 4 MiB: an SLO
    stored = raw(swift_server).head_object(files.backend.container, "app.css")
    assert stored["content-type"] == "text/css"
    assert stored["cache-control"] == "max-age=60" and stored["content-encoding"] == "gzip"
    assert stored["x-object-meta-author"] == "me" and stored["x-object-meta-tag"] == "t"
    assert stored["x-object-meta-origin"] == "site"
    assert not any("acl" in key for key in stored)
    assert files.metadata("app.css")["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    files.copy("app.css", "copy.css")
    assert raw(swift_server).head_object(files.backend.container, "copy.css")["cache-control"] == "max-age=60"


def test_large_plain_objects_get_their_checksum_after_one_pass(swift_server, open_storage):
    files = open_storage(swift_server, FILES_FS_SEGMENT_SIZE=64 * MIB)
    data = content(10 * MIB)  # above HASH_FIRST_SIZE, under the segment size: one PUT, then a POST

    class Counting(io.BytesIO):
        read_bytes = 0

        def read(self, n=-1):
            chunk = super().read(n)
            self.read_bytes += len(chunk)
            return chunk

    source = Counting(data)
    headers = {"Content-Type": "application/x-thing", "Cache-Control": "max-age=60", "Author": "me"}
    files.save(source, "big.bin", headers=headers)
    assert source.read_bytes == len(data)  # read once
    stored = raw(swift_server).head_object(files.backend.container, "big.bin")
    assert "x-static-large-object" not in stored
    assert stored["content-type"] == "application/x-thing" and stored["cache-control"] == "max-age=60"
    assert stored["x-object-meta-author"] == "me"  # the POST that added the checksum kept them
    assert stored["x-object-meta-sha256-etag"] == hashlib.md5(data).hexdigest()
    assert files.metadata("big.bin")["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert files.read("big.bin") == data
    # another writer replaced the content but the stale checksum came along: it is not reported
    raw(swift_server).put_object(
        files.backend.container,
        "big.bin",
        b"other",
        headers={"X-Object-Meta-Sha256": stored["x-object-meta-sha256"], "X-Object-Meta-Sha256-Etag": stored["etag"]},
    )
    assert files.metadata("big.bin")["checksum"] == "md5:" + hashlib.md5(b"other").hexdigest()
    files.save(io.BytesIO(data), "big.bin", overwrite=True)
    files.copy("big.bin", "copy.bin")  # a copy keeps the content, the ETag and so the checksum's binding
    assert files.metadata("copy.bin")["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()


def test_checksum_of_objects_written_by_others_is_their_md5(swift_server, files):
    files.write("ours.txt", b"ours")  # creates the container
    raw(swift_server).put_object(files.backend.container, "plain.txt", b"by another client")
    meta = files.metadata("plain.txt")
    assert meta["checksum"] == "md5:" + hashlib.md5(b"by another client").hexdigest()


def test_reading_from_an_offset_and_serving_ranges(swift_server, files, monkeypatch):
    data = content(3 * MIB + 5)
    files.save(io.BytesIO(data), "f.bin")
    ranges, real_get = [], files.backend._get
    monkeypatch.setattr(
        files.backend,
        "_get",
        lambda name, start=0, end=None, etag=None: ranges.append((start, end)) or real_get(name, start, end, etag),
    )
    with files.open("f.bin", "rb") as f:
        f.seek(2 * MIB + 3)
        assert f.read(10) == data[2 * MIB + 3 : 2 * MIB + 13]
        assert f.tell() == 2 * MIB + 13
        f.seek(-5, io.SEEK_END)
        assert f.read() == data[-5:]
    assert ranges == [(0, None), (2 * MIB + 3, None), (len(data) - 5, None)]  # a seek asks for the rest from there
    assert b"".join(files.read_chunks("f.bin", start=MIB, end=MIB + 100)) == data[MIB : MIB + 100]
    assert ranges[-1] == (MIB, MIB + 100)  # the server sends only the range asked for
    assert list(files.read_chunks("f.bin", start=len(data) + 10)) == []
    from flask import current_app

    response = current_app.test_client().get("/files/f.bin", headers={"Range": "bytes=3000000-3000099"})
    assert response.status_code == 206
    assert response.data == data[3000000:3000100]


# -- temporary URLs ------------------------------------------------------------------------------


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_signed_urls_are_swift_temp_urls(swift_server, files):
    files.write("dir/my file é.txt", b"secret")
    url = files.signed_url("dir/my file é.txt", expires=60)
    assert url.startswith(swift_server.endpoint + "/v1/")
    assert fetch(url) == (200, b"secret")
    signature = url.split("temp_url_sig=")[1][:8]
    tampered = url.replace(signature, "0" * 8)
    assert fetch(tampered)[0] == 401
    assert fetch(url.replace("my%20file", "other%20file"))[0] == 401  # signed for one object only
    short = files.signed_url("dir/my file é.txt", expires=1)
    time.sleep(2.1)
    assert fetch(short)[0] == 401


def test_signed_urls_need_the_temp_url_key(swift_server, open_storage):
    files = open_storage(swift_server, FS_SWIFT_TEMPURL_KEY=None)
    with pytest.raises(fs.OperationNotSupported, match="TEMPURL_KEY"):
        files.signed_url("a.txt")


# -- credentials, failures -----------------------------------------------------------------------


def test_wrong_key_is_a_backend_error_at_first_use_and_at_check(swift_server, open_storage):
    files = open_storage(swift_server, FS_SWIFT_KEY="wrong")
    for call in (
        lambda: files.write("a.txt", b"a"),
        lambda: files.read("a.txt"),
        lambda: files.exists("a.txt"),
        lambda: list(files.list_files()),
        files.check,
    ):
        with pytest.raises(fs.BackendError, match="authentication failed") as info:
            call()
        assert isinstance(info.value.__cause__, ClientException)
        assert info.value.__cause__.http_status == 401


def test_unreachable_server_is_a_backend_error(open_storage):
    class Nowhere:
        auth_url, user, key = "http://127.0.0.1:9/auth/v1.0", "test:tester", "testing"

    files = open_storage(Nowhere)
    for call in (lambda: files.exists("a.txt"), files.check, lambda: files.write("a.txt", b"a")):
        with pytest.raises(fs.BackendError, match="unreachable") as info:
            call()
        assert info.value.__cause__ is not None


@pytest.fixture(scope="module")
def private_swift():
    """A Swift of its own, for the tests that stop and restart its proxy."""
    server = start_swift()
    yield server
    server.stop()


@pytest.mark.parametrize("kind", ["rewindable", "one-way"])
def test_server_going_away_mid_upload(private_swift, open_storage, kind):
    files = open_storage(private_swift, FILES_FS_SEGMENT_SIZE=64 * MIB)
    files.write("before.txt", b"before")
    size = 24 * MIB
    if kind == "one-way":
        source = io.BufferedReader(OneWay(b"z" * MIB, size, at_half=private_swift.stop_proxy))
    else:  # hashed as it is sent (no first pass): stop the server half-way through

        class Rewindable(io.BytesIO):
            total, stopped = 0, False

            def read(self, n=-1):
                data = super().read(n)
                self.total += len(data)
                if self.total >= size // 2 and not self.stopped:
                    self.stopped = True
                    private_swift.stop_proxy()
                return data

        source = Rewindable(b"z" * size)
    with pytest.raises(fs.BackendError) as info:
        files.save(source, "big.bin")
    if kind == "one-way":
        assert "mid-upload" in str(info.value)  # it cannot be retried
    else:  # retried from the start, then given up
        assert "unreachable" in str(info.value) and info.value.__cause__ is not None
    with pytest.raises(fs.BackendError):
        files.exists("big.bin")  # the server is still away: an error, not a false "no"
    private_swift.start_proxy()
    assert not files.exists("big.bin")
    assert sorted(files.list_files()) == ["before.txt"]
    assert names_in(private_swift, files.backend.segments) == []
    files.write("after.txt", b"after")
    assert files.read("after.txt") == b"after" and files.read("before.txt") == b"before"


def test_expired_token_is_renewed_once(swift_server, files, monkeypatch):
    files.write("a.txt", b"A")
    logins = []
    real_get_auth = swiftclient.client.get_auth
    monkeypatch.setattr(swiftclient.client, "get_auth", lambda *a, **k: logins.append(1) or real_get_auth(*a, **k))
    backend = files.backend
    connection = backend.connection()
    connection.token = "AUTH_ftkgAAAAABexpired"
    backend._auth = (connection.url, connection.token)
    assert files.read("a.txt") == b"A"
    assert len(logins) == 1
    assert connection.token != "AUTH_ftkgAAAAABexpired"
    # Another thread starts from the renewed, shared token: no new login.
    results = []
    thread = threading.Thread(target=lambda: results.append(backend.read("a.txt")))
    thread.start()
    thread.join()
    assert results == [b"A"] and len(logins) == 1


def test_many_threads_share_one_storage(swift_server, files):
    from flask import current_app

    flask_app = current_app._get_current_object()  # app contexts are per thread: push one in each
    errors, per_thread = [], 8

    def work(number: int) -> None:
        try:
            with flask_app.app_context():
                for i in range(per_thread):
                    name = f"t{number}/f{i}.bin"
                    data = os.urandom(1000 + i)
                    files.save(io.BytesIO(data), name)
                    assert files.read(name) == data
                    assert files.metadata(name)["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        except Exception as exc:  # reported below, with the thread's number
            errors.append((number, exc))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(list(files.list_files())) == 8 * per_thread


# -- Keystone settings ----------------------------------------------------------------------------


def test_keystone_v3_settings_map_to_swiftclient_os_options():
    config = dict(
        authurl="https://keystone.example.com/v3", user="alice", key="s3cret", auth_version=3,
        project_name="media", user_domain_name="Default", project_domain_name="Default",
        region_name="RegionTwo", tenant_name=None, retries="4", timeout="12",
    )  # fmt: skip
    options = swift_backend.connection_options(resolve(SwiftBackend.settings, "media", config, "swift backend"))
    assert options["auth_version"] == "3"
    assert options["os_options"] == {
        "project_name": "media", "user_domain_name": "Default", "project_domain_name": "Default",
        "region_name": "RegionTwo",
    }  # fmt: skip
    assert (options["retries"], options["timeout"]) == (4, 12.0)
    connection = swiftclient.Connection(**options)  # builds without contacting anyone
    assert connection.os_options["region_name"] == "RegionTwo" and connection.auth_version == "3"


def test_keystone_auth_without_keystoneclient_is_a_configuration_error(swift_server, tmp_path):
    import importlib.util

    if importlib.util.find_spec("keystoneclient"):
        pytest.skip("python-keystoneclient is installed here")
    app = make_app(tmp_path, **swift_settings(swift_server), FS_SWIFT_AUTH_VERSION="3", FS_SWIFT_PROJECT_NAME="p")
    with pytest.raises(fs.ConfigurationError, match="python-keystoneclient"):
        fs.init_app(app, fs.Storage("files"))


def test_close_closes_every_threads_connection(swift_server, files):
    files.write("a.txt", b"hello")
    backend = files.backend
    barrier = threading.Barrier(3)

    def read(_):  # in three threads at once: three connections
        barrier.wait(timeout=10)
        return backend.read("a.txt")

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(read, range(3))) == [b"hello"] * 3
    connections = list(backend._connections)
    assert len(connections) == 4 and all(conn.http_conn for conn in connections)  # this thread too
    backend.close()
    assert all(conn.http_conn is None for conn in connections) and backend._connections == []
    assert files.read("a.txt") == b"hello"  # this thread opens a new connection
    assert len(backend._connections) == 1 and backend._connections[0] not in connections
