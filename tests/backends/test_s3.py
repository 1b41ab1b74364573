"""S3 specifics, against real servers: moto's S3 and Swift's s3api (which checks signatures and expiry).

Fault tests stop the S3 server: they use a private Swift so the session's servers are not disturbed.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import boto3
import pytest
from botocore.config import Config as BotoConfig
from flask import current_app

import flask_fs as fs
from flask_fs.backends.s3 import S3Backend, _Presigner
from tests.backends.conftest import s3_settings, unique
from tests.conftest import make_app
from tests.servers import start_swift

MIB = 1024 * 1024
SMALL_PARTS = {"FS_S3_MULTIPART_THRESHOLD": 5 * MIB, "FS_S3_MULTIPART_CHUNKSIZE": 5 * MIB}


@pytest.fixture(params=["moto", "swift"])
def server(request):
    """(endpoint, access key, secret key) of each S3 server in turn."""
    if request.param == "moto":
        return request.getfixturevalue("moto_endpoint"), "testing", "testing"
    swift = request.getfixturevalue("swift_server")
    return swift.endpoint, swift.user, swift.key


@pytest.fixture(scope="module")
def private_swift():
    """A Swift of our own, whose proxy the fault tests stop and restart."""
    swift = start_swift()
    yield swift
    swift.stop()


@pytest.fixture
def make_storage(tmp_path):
    """Open storages on an app with the given settings: ``make_storage(settings, 'name', ...)``."""
    contexts = []

    def make(settings: dict, *names: str):
        app = make_app(tmp_path / unique("app"), **settings)
        storages = [fs.Storage(name, fs.ALL) for name in names or ("files",)]
        fs.init_app(app, *storages)
        context = app.app_context()
        context.push()
        contexts.append(context)
        return storages[0] if len(storages) == 1 else storages

    yield make
    for context in reversed(contexts):
        context.pop()


def raw_client(endpoint: str, key: str, secret: str, region: str = "us-east-1"):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=key, aws_secret_access_key=secret,
        config=BotoConfig(s3={"addressing_style": "path"}),
    )  # fmt: skip


@contextmanager
def operations(storage: fs.Storage):
    """Record the names of the S3 API calls the storage's backend makes in the block."""
    calls: list[str] = []
    events = storage.backend.client.meta.events

    def record(model, **kwargs):
        calls.append(model.name)

    events.register("before-call.s3", record, unique_id="test-ops")
    try:
        yield calls
    finally:
        events.unregister("before-call.s3", unique_id="test-ops")


class Producer(io.RawIOBase):
    """A stream that cannot seek, made on the fly; ``on_half`` is called once half of it was read."""

    def __init__(self, size: int, on_half=None) -> None:
        self.size, self.sent, self.on_half = size, 0, on_half
        self.block = os.urandom(MIB)
        self.digest = hashlib.sha256()

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.on_half and self.sent >= self.size // 2:
            self.on_half, callback = None, self.on_half
            callback()
        n = min(len(buffer), len(self.block), self.size - self.sent)
        buffer[:n] = self.block[:n]
        self.digest.update(self.block[:n])
        self.sent += n
        return n


# -- configuration --------------------------------------------------------------------------------


def test_bucket_defaults_to_the_storage_name(moto_endpoint, make_storage):
    name = unique("bucket")
    settings = s3_settings(moto_endpoint, "testing", "testing")
    del settings["FILES_FS_BUCKET"]
    storage = make_storage(settings, name)
    storage.write("a.txt", b"A")
    raw = raw_client(moto_endpoint, "testing", "testing")
    assert raw.get_object(Bucket=name, Key="a.txt")["Body"].read() == b"A"


def test_prefixes_isolate_storages_sharing_a_bucket(server, make_storage):
    endpoint, key, secret = server
    bucket = unique("shared")
    settings = {**s3_settings(endpoint, key, secret), "FS_S3_BUCKET": bucket,
                "ONE_FS_PREFIX": "one", "TWO_FS_PREFIX": "/two/sub/"}  # fmt: skip
    one, two = make_storage(settings, "one", "two")
    one.write("a.txt", b"1")
    one.write("dir/b.txt", b"1b")
    two.write("a.txt", b"2")
    assert sorted(one.list_files()) == ["a.txt", "dir/b.txt"]
    assert list(two.list_files()) == ["a.txt"]
    assert (one.read("a.txt"), two.read("a.txt")) == (b"1", b"2")
    two.delete("a.txt")
    assert one.exists("a.txt") and not two.exists("a.txt")
    keys = [obj["Key"] for obj in raw_client(endpoint, key, secret).list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["one/a.txt", "one/dir/b.txt"]


def test_create_bucket_outside_us_east_1(moto_endpoint, make_storage):
    settings = {**s3_settings(moto_endpoint, "testing", "testing"), "FS_S3_REGION": "eu-west-3"}
    storage = make_storage(settings)
    storage.write("a.txt", b"A")
    raw = raw_client(moto_endpoint, "testing", "testing", region="eu-west-3")
    location = raw.get_bucket_location(Bucket=settings["FILES_FS_BUCKET"])["LocationConstraint"]
    assert location == "eu-west-3"
    storage.check()


def test_missing_bucket_without_create_bucket_is_a_clear_error(moto_endpoint, make_storage):
    settings = {**s3_settings(moto_endpoint, "testing", "testing"), "FS_S3_CREATE_BUCKET": False}
    bucket = settings["FILES_FS_BUCKET"]
    for call in (lambda s: s.write("a.txt", b"A"), lambda s: s.exists("a.txt"), lambda s: s.check(),
                 lambda s: s.read("a.txt"), lambda s: list(s.list_files())):  # fmt: skip
        storage = make_storage(settings)
        with pytest.raises(fs.BackendError, match=f"bucket '{bucket}' does not exist.*CREATE_BUCKET"):
            call(storage)


@pytest.mark.parametrize(
    "settings, message",
    [({"FS_S3_ADDRESSING_STYLE": "sideways"}, "FS_S3_ADDRESSING_STYLE = 'sideways': must be one of 'path'"),
     ({"FS_S3_OBJECT_PARAMS": {"Body": b"x"}}, r"FS_S3_OBJECT_PARAMS: unsupported S3 upload arguments \['Body'\]"),
     ({"FS_S3_OBJECT_PARAMS": {"SSECustomerKey": "k"}}, "FS_S3_OBJECT_PARAMS: unsupported"),
     ({"FILES_FS_SECRET_KEY": ""}, "FS_S3_ACCESS_KEY and FILES_FS_SECRET_KEY go together"),
     ({"FILES_FS_MAX_ATTEMPTS": "two"}, "FILES_FS_MAX_ATTEMPTS = 'two': not an integer"),
     ({"FS_S3_ENDPOINT": "localhost:9000"}, "FS_S3_ENDPOINT = 'localhost:9000': .*write 'http://localhost:9000'")],
)  # fmt: skip
def test_bad_settings_fail_at_init_app(moto_endpoint, tmp_path, settings, message):
    app = make_app(tmp_path, **{**s3_settings(moto_endpoint, "testing", "testing"), **settings})
    with pytest.raises(fs.ConfigurationError, match=message):
        fs.init_app(app, fs.Storage("files"))


def test_credentials_from_the_default_chain(swift_server, make_storage, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", swift_server.user)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", swift_server.key)
    settings = s3_settings(swift_server.endpoint, "", "")
    storage = make_storage(settings)
    storage.write("a.txt", b"A")
    assert storage.read("a.txt") == b"A"


# -- objects -----------------------------------------------------------------------------------------


def test_content_type_and_object_params_reach_the_object(server, make_storage):
    endpoint, key, secret = server
    params = {"CacheControl": "public, max-age=60", "ContentDisposition": "inline", "Metadata": {"team": "a"}}
    settings = {**s3_settings(endpoint, key, secret), **SMALL_PARTS, "FS_S3_OBJECT_PARAMS": params}
    storage = make_storage(settings)
    storage.write("small.png", b"png")
    storage.save(io.BytesIO(os.urandom(6 * MIB)), "seekable.json")
    storage.save(io.BufferedReader(Producer(6 * MIB)), "stream.html")
    raw = raw_client(endpoint, key, secret)
    for name, mime in (("small.png", "image/png"), ("seekable.json", "application/json"), ("stream.html", "text/html")):
        head = raw.head_object(Bucket=settings["FILES_FS_BUCKET"], Key=name)
        assert head["ContentType"] == mime
        assert head["CacheControl"] == "public, max-age=60"
        assert head["ContentDisposition"] == "inline"
        assert head["Metadata"]["team"] == "a"
        assert storage.metadata(name)["mime"] == mime


def test_headers_are_stored_and_copies_keep_them(server, make_storage):
    endpoint, key, secret = server
    settings = {**s3_settings(endpoint, key, secret), **SMALL_PARTS}
    storage = make_storage(settings)
    headers = {"Content-Type": "text/csv", "cache-control": "max-age=5", "Content-Encoding": "gzip",
               "Content-Language": "fr", "X-Team": "web", "x-amz-meta-origin": "import"}  # fmt: skip
    storage.save(io.BytesIO(b"a,b"), "small.bin", headers=headers)
    storage.save(io.BufferedReader(Producer(6 * MIB)), "large.bin", headers=headers)
    storage.copy("small.bin", "small-copy.bin")
    storage.copy("small.bin", "small-replaced.bin", overwrite=True)
    storage.copy("large.bin", "large-copy.bin")
    raw = raw_client(endpoint, key, secret)
    for name in ("small.bin", "large.bin", "small-copy.bin", "small-replaced.bin", "large-copy.bin"):
        head = raw.head_object(Bucket=settings["FILES_FS_BUCKET"], Key=name)
        assert (head["ContentType"], head["CacheControl"], head["ContentEncoding"]) == ("text/csv", "max-age=5", "gzip")
        assert head["ContentLanguage"] == "fr"
        assert head["Metadata"]["x-team"] == "web" and head["Metadata"]["origin"] == "import"
        assert storage.metadata(name)["checksum"].startswith("sha256:")
    assert storage.read("small-copy.bin") == b"a,b"  # stored as given: no decoding on the way


def test_list_metadata_comes_from_the_listing(server, make_storage):
    endpoint, key, secret = server
    storage = make_storage(s3_settings(endpoint, key, secret))
    storage.write("a.txt", b"hello")
    storage.write("sub/b.txt", b"")
    with operations(storage) as calls:
        listed = dict(storage.backend.list_metadata())
    assert calls == ["ListObjectsV2"]
    assert set(listed) == {"a.txt", "sub/b.txt"}
    assert listed["a.txt"]["size"] == 5
    assert listed["a.txt"]["checksum"] == f"etag:{hashlib.md5(b'hello').hexdigest()}"  # a single PUT's ETag
    assert listed["a.txt"]["modified"].tzinfo is not None


def test_server_side_encryption_param_reaches_the_object(moto_endpoint, make_storage):
    settings = {**s3_settings(moto_endpoint, "testing", "testing"),
                "FS_S3_OBJECT_PARAMS": {"ServerSideEncryption": "AES256"}, "FS_S3_ACL": "public-read"}  # fmt: skip
    storage = make_storage(settings)
    storage.write("a.txt", b"A")
    raw = raw_client(moto_endpoint, "testing", "testing")
    bucket = settings["FILES_FS_BUCKET"]
    assert raw.head_object(Bucket=bucket, Key="a.txt")["ServerSideEncryption"] == "AES256"
    grants = raw.get_object_acl(Bucket=bucket, Key="a.txt")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") and g["Permission"] == "READ" for g in grants)


@pytest.mark.parametrize("seekable", [True, False])
def test_multipart_uploads_report_a_true_sha256(server, make_storage, seekable):
    endpoint, key, secret = server
    settings = {**s3_settings(endpoint, key, secret), **SMALL_PARTS}
    storage = make_storage(settings)
    producer = Producer(20 * MIB + 123)
    content = b"".join(iter(lambda: producer.read(MIB), b"")) if seekable else b""
    storage.write("warm.txt", b"")
    with operations(storage) as calls:
        storage.save(io.BytesIO(content) if seekable else io.BufferedReader(producer), "big.bin")
    assert calls.count("UploadPart") == 5 and "CompleteMultipartUpload" in calls  # the ETag is no MD5
    digest = producer.digest.hexdigest()
    meta = storage.metadata("big.bin")
    assert meta["checksum"] == f"sha256:{digest}"
    assert meta["size"] == 20 * MIB + 123
    assert hashlib.sha256(b"".join(storage.read_chunks("big.bin"))).hexdigest() == digest
    # whole reads, which botocore checks against the object's stored CRC32 where the server keeps one
    assert hashlib.sha256(storage.read("big.bin")).hexdigest() == digest
    raw = raw_client(endpoint, key, secret).get_object(Bucket=settings["FILES_FS_BUCKET"], Key="big.bin")
    assert hashlib.sha256(raw["Body"].read()).hexdigest() == digest


@pytest.mark.parametrize("max_size", [None, 30 * MIB])
def test_large_uploads_from_a_file_on_disk_start_at_its_position(server, make_storage, tmp_path, max_size):
    endpoint, key, secret = server
    storage = make_storage({**s3_settings(endpoint, key, secret), **SMALL_PARTS, "FILES_FS_MAX_SIZE": max_size})
    header, content = b"not this part\n", os.urandom(20 * MIB + 5)
    (tmp_path / "upload.bin").write_bytes(header + content)
    storage.write("warm.txt", b"")
    with open(tmp_path / "upload.bin", "rb") as source, operations(storage) as calls:
        source.readline()  # the buffered reader has read ahead: its position is what counts
        storage.save(source, "big.bin")
    assert calls.count("UploadPart") == 5  # parts read from the file by several threads at once
    assert storage.read("big.bin") == content
    assert storage.metadata("big.bin")["checksum"] == "sha256:" + hashlib.sha256(content).hexdigest()


def test_a_file_on_disk_over_max_size_is_refused_before_any_part_is_sent(server, make_storage, tmp_path):
    endpoint, key, secret = server
    storage = make_storage({**s3_settings(endpoint, key, secret), **SMALL_PARTS, "FILES_FS_MAX_SIZE": 12 * MIB})
    (tmp_path / "upload.bin").write_bytes(os.urandom(12 * MIB + 1))
    storage.write("warm.txt", b"")
    with open(tmp_path / "upload.bin", "rb") as source, operations(storage) as calls, pytest.raises(fs.FileTooLarge):
        storage.save(source, "big.bin")
    assert "UploadPart" not in calls and "CreateMultipartUpload" not in calls
    assert not storage.exists("big.bin")


@pytest.mark.parametrize("max_size", [None, 30 * MIB])
def test_a_spooled_file_still_in_memory_is_not_written_to_disk(server, make_storage, max_size):
    endpoint, key, secret = server
    storage = make_storage({**s3_settings(endpoint, key, secret), **SMALL_PARTS, "FILES_FS_MAX_SIZE": max_size})
    content = os.urandom(12 * MIB)
    with tempfile.SpooledTemporaryFile(max_size=64 * MIB) as spooled:
        spooled.write(content)
        spooled.seek(0)
        storage.save(spooled, "big.bin")
        assert not spooled._rolled
    assert storage.read("big.bin") == content


@pytest.mark.parametrize("seekable", [True, False])
def test_large_uploads_never_replace_without_overwrite(server, make_storage, seekable):
    endpoint, key, secret = server
    storage = make_storage({**s3_settings(endpoint, key, secret), **SMALL_PARTS})
    storage.write("taken.bin", b"keep")
    content = os.urandom(6 * MIB)
    source = io.BytesIO(content) if seekable else io.BufferedReader(Producer(6 * MIB))
    with operations(storage) as calls, pytest.raises(fs.FileExists):
        storage.save(source, "taken.bin")
    assert "CompleteMultipartUpload" in calls and "HeadObject" not in calls  # refused by the server itself
    assert "AbortMultipartUpload" in calls
    assert storage.read("taken.bin") == b"keep"
    storage.save(io.BytesIO(content), "taken.bin", overwrite=True)
    assert storage.read("taken.bin") == content


def test_objects_from_other_tools_get_an_honest_etag_label(server, make_storage):
    endpoint, key, secret = server
    settings = s3_settings(endpoint, key, secret)
    storage = make_storage(settings)
    storage.write("ours.txt", b"x")  # creates the bucket
    raw = raw_client(endpoint, key, secret)
    bucket = settings["FILES_FS_BUCKET"]
    raw.put_object(Bucket=bucket, Key="theirs.txt", Body=b"theirs", Metadata={"sha256": "not-a-digest"})
    etag = raw.head_object(Bucket=bucket, Key="theirs.txt")["ETag"].strip('"')
    assert storage.metadata("theirs.txt")["checksum"] == f"etag:{etag}"


def test_small_operations_cost_one_request(server, make_storage):
    endpoint, key, secret = server
    storage = make_storage(s3_settings(endpoint, key, secret))
    storage.write("warm.txt", b"")  # the first operation checks the bucket, once
    content = bytes(range(256)) * 10
    with operations(storage) as calls:
        storage.write("a.txt", content)
    assert calls == ["PutObject"]  # If-None-Match on the PUT, not a HEAD before it
    with operations(storage) as calls:
        assert storage.read("a.txt") == content
    assert calls == ["GetObject"]
    with operations(storage) as calls:
        assert b"".join(storage.read_chunks("a.txt", start=100, end=200)) == content[100:200]
    assert calls == ["GetObject"]
    with operations(storage) as calls, pytest.raises(fs.FileExists):
        storage.write("a.txt", b"other")
    assert calls == ["PutObject"] and storage.read("a.txt") == content


def test_without_conditional_writes_a_head_guards_the_name(moto_endpoint, make_storage):
    storage = make_storage({**s3_settings(moto_endpoint, "testing", "testing"), "FS_S3_CONDITIONAL_WRITES": False})
    storage.write("a.txt", b"first")
    with operations(storage) as calls, pytest.raises(fs.FileExists):
        storage.write("a.txt", b"second")
    assert calls == ["HeadObject"] and storage.read("a.txt") == b"first"
    with operations(storage) as calls:
        storage.write("b.txt", b"b")
    assert calls == ["HeadObject", "PutObject"]


def test_serving_costs_a_head_and_one_ranged_get(server, make_storage, tmp_path):
    endpoint, key, secret = server
    storage = make_storage(s3_settings(endpoint, key, secret))
    content = os.urandom(300_000)
    storage.write("f.bin", content)
    client = current_app.test_client()
    with operations(storage) as calls:
        response = client.get("/files/f.bin", headers={"Range": "bytes=250000-250099"})
        assert response.status_code == 206 and response.data == content[250000:250100]
    assert calls == ["HeadObject", "GetObject"]
    etag = response.headers["ETag"]
    with operations(storage) as calls:
        assert client.get("/files/f.bin", headers={"If-None-Match": etag}).status_code == 304
    assert calls == ["HeadObject"]


def test_large_copies_are_server_side_and_respect_overwrite(server, make_storage):
    endpoint, key, secret = server
    storage = make_storage({**s3_settings(endpoint, key, secret), **SMALL_PARTS})
    content = os.urandom(11 * MIB)
    storage.save(io.BytesIO(content), "big.json")
    storage.write("taken.json", b"keep")
    with operations(storage) as calls, pytest.raises(fs.FileExists):
        storage.copy("big.json", "taken.json")
    assert "UploadPartCopy" in calls and storage.read("taken.json") == b"keep"
    with operations(storage) as calls:
        storage.move("big.json", "moved.json")
    assert "UploadPartCopy" in calls and not {"PutObject", "UploadPart"} & set(calls)  # no data through us
    assert not storage.exists("big.json")
    meta = storage.metadata("moved.json")
    assert meta["checksum"] == f"sha256:{hashlib.sha256(content).hexdigest()}"
    assert meta["mime"] == "application/json"
    storage.copy("moved.json", "taken.json", overwrite=True)
    assert storage.read("taken.json") == content


def test_small_copies_keep_checksum_and_type(server, make_storage):
    endpoint, key, secret = server
    storage = make_storage(s3_settings(endpoint, key, secret))
    storage.write("a.png", b"png")
    for overwrite in (False, True):
        storage.copy("a.png", f"copy-{overwrite}.bin", overwrite=overwrite)
        meta = storage.metadata(f"copy-{overwrite}.bin")
        assert meta["checksum"] == f"sha256:{hashlib.sha256(b'png').hexdigest()}"
        assert meta["mime"] == "image/png"


def test_open_read_is_a_proper_binary_file(server, make_storage):
    endpoint, key, secret = server
    storage = make_storage(s3_settings(endpoint, key, secret))
    content = os.urandom(100_000)
    storage.write("f.bin", content)
    with storage.open("f.bin", "rb") as f:
        assert f.readable() and f.seekable()
        assert f.read(10) == content[:10]
        f.seek(50_000)
        assert f.read(5) == content[50_000:50_005]
        assert f.tell() == 50_005
        buffered = io.BufferedReader(f)
        assert buffered.read() == content[50_005:]
    assert f.closed


def test_many_threads_share_one_storage(server, make_storage):
    endpoint, key, secret = server
    storage = make_storage(s3_settings(endpoint, key, secret))
    app = current_app._get_current_object()
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            with app.app_context():
                for i in range(10):
                    name = f"t{thread}/f{i}.txt"
                    storage.write(name, f"{thread}-{i}" * 100)
                    assert storage.read(name) == f"{thread}-{i}".encode() * 100
                    assert storage.metadata(name)["size"] == len(f"{thread}-{i}") * 100
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    assert len(list(storage.list_files())) == 80


# -- signed URLs (Swift's s3api checks signatures and expiry, moto does not) ---------------------


def test_presigned_urls_work_and_tampered_ones_are_refused(swift_server, make_storage):
    storage = make_storage(s3_settings(swift_server.endpoint, swift_server.user, swift_server.key))
    storage.write("secret.txt", b"secret")
    storage.write("other.txt", b"other")
    url = storage.signed_url("secret.txt", expires=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"secret"
    for tampered in (url.replace("secret.txt", "other.txt"), url.replace("X-Amz-Expires=60", "X-Amz-Expires=99")):
        assert tampered != url
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(tampered, timeout=10)
        assert error.value.code == 403


def test_expired_presigned_urls_are_refused(swift_server, make_storage):
    storage = make_storage(s3_settings(swift_server.endpoint, swift_server.user, swift_server.key))
    storage.write("secret.txt", b"secret")
    url = storage.signed_url("secret.txt", expires=1)
    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(url, timeout=10)
    assert error.value.code == 403


def test_signed_url_expiry_defaults_to_the_setting(swift_server, make_storage):
    settings = {**s3_settings(swift_server.endpoint, swift_server.user, swift_server.key),
                "FS_S3_SIGNED_URL_EXPIRES": 123}  # fmt: skip
    assert "X-Amz-Expires=123" in make_storage(settings).signed_url("a.txt")


def test_signed_urls_of_odd_names_and_prefixes_are_accepted(swift_server, make_storage):
    settings = {**s3_settings(swift_server.endpoint, swift_server.user, swift_server.key), "FS_S3_PREFIX": "p r/é"}
    storage = make_storage(settings)
    names = ["dir/my file é.txt", "a+b~c%d.txt", "日本/データ (1).txt", "x;y=z&w.txt"]
    for name in names:
        storage.write(name, name.encode())
    for name in names:
        url = storage.signed_url(name, expires=60)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == name.encode()
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10)
        assert error.value.code == 403


@pytest.mark.parametrize(
    "settings",
    [
        {"FS_S3_ENDPOINT": "http://127.0.0.1:9", "FS_S3_ADDRESSING_STYLE": "path"},
        {"FS_S3_ENDPOINT": "https://minio.example.org:9000", "FS_S3_ADDRESSING_STYLE": "virtual"},
        {"FS_S3_ENDPOINT": "https://s3.example.org:443", "FS_S3_SESSION_TOKEN": "tok/en+=="},
        {"FS_S3_REGION": "eu-west-3", "FS_S3_ADDRESSING_STYLE": "virtual", "FS_S3_PREFIX": "media"},
        {"FS_S3_REGION": "us-east-1", "FS_S3_SESSION_TOKEN": "FwoGZXIvYXdzE//+"},
        {"FS_S3_REGION": "ap-south-1", "FS_S3_ADDRESSING_STYLE": "path", "FILES_FS_BUCKET": "dotted.bucket.name"},
    ],
    ids=["custom-path", "custom-virtual", "session-token", "aws-virtual-prefix", "aws-token", "aws-dotted"],
)
def test_signed_urls_are_the_ones_botocore_makes(settings, monkeypatch):
    """The fast presigner gives byte for byte botocore's URL, at the same instant."""
    import datetime

    import botocore.auth

    config = {"FS_BACKEND": "s3", "FS_S3_ACCESS_KEY": "AKIDEXAMPLE", "FS_S3_SECRET_KEY": "wJalr/K7+MDENG",
              "FS_S3_REGION": "us-west-2", "FILES_FS_BUCKET": "my-bucket", **settings}  # fmt: skip
    storage = fs.Storage("files", fs.ALL).from_settings(config)
    backend = storage.backend
    for moment in (datetime.datetime(2026, 1, 2, 3, 4, 5), datetime.datetime(2026, 1, 3, 0, 0, 1)):
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda moment=moment, **_: moment)
        seconds = moment.replace(tzinfo=datetime.UTC).timestamp() + 0.5
        monkeypatch.setattr(_Presigner, "clock", staticmethod(lambda seconds=seconds: seconds))
        for name in ("a.txt", "dir/my file é.txt", "a+b~c%d;e=f&g.txt", "日本/データ.txt"):
            key = backend._key(name)
            expected = backend.client.generate_presigned_url(
                "get_object", Params={"Bucket": backend.bucket, "Key": key}, ExpiresIn=300
            )
            assert storage.signed_url(name, expires=300) == expected
    assert backend._presigner, "the fast path was not taken"


# -- failures ----------------------------------------------------------------------------------------


def test_wrong_credentials_fail_clearly(swift_server, make_storage):
    settings = s3_settings(swift_server.endpoint, swift_server.user, "wrong")
    with pytest.raises(fs.BackendError, match="refused access"):
        make_storage(settings).check()
    storage = make_storage(settings)
    with pytest.raises(fs.BackendError, match="refused access.*SignatureDoesNotMatch") as error:
        storage.write("a.txt", b"A")
    assert error.value.__cause__ is not None
    assert str(error.value).endswith("check FS_S3_ACCESS_KEY, FS_S3_SECRET_KEY and their permissions")
    with pytest.raises(fs.BackendError, match="refused access"):
        storage.check()
    with pytest.raises(fs.BackendError, match="refused access"):
        storage.read("a.txt")


def test_unreachable_server_is_a_backend_error(make_storage):
    from tests.servers import free_port

    settings = {**s3_settings(f"http://127.0.0.1:{free_port()}", "k", "s"), "FS_S3_MAX_ATTEMPTS": 1}
    storage = make_storage(settings)
    for call in (lambda: storage.write("a.txt", b"A"), storage.check, lambda: storage.exists("a.txt")):
        with pytest.raises(fs.BackendError, match="failed") as error:
            call()
        assert error.value.__cause__ is not None


def fault_settings(swift) -> dict:
    return {**s3_settings(swift.endpoint, swift.user, swift.key), **SMALL_PARTS,
            "FS_S3_MAX_ATTEMPTS": 2, "FS_S3_CONNECT_TIMEOUT": 2, "FS_S3_READ_TIMEOUT": 10}  # fmt: skip


@pytest.mark.parametrize("source_kind", ["one-way", "seekable", "file on disk"])
def test_server_going_away_mid_upload_leaves_nothing(private_swift, make_storage, source_kind, tmp_path, monkeypatch):
    storage = make_storage(fault_settings(private_swift))
    storage.write("before.txt", b"before")
    if source_kind == "one-way":
        source = io.BufferedReader(Producer(30 * MIB, on_half=private_swift.stop_proxy))
    elif source_kind == "seekable":
        source = _SeekableStopping(30 * MIB, private_swift.stop_proxy)
    else:  # parts are read with os.pread while they are sent: stop the server when half of them was read
        (tmp_path / "big.bin").write_bytes(os.urandom(30 * MIB))
        source = open(tmp_path / "big.bin", "rb")  # noqa: SIM115 - closed below
        real_pread, sent = os.pread, []

        def pread(fd, size, offset):
            sent.append(size)
            if sum(sent) >= 15 * MIB and "proxy" in private_swift.procs:
                private_swift.stop_proxy()
            return real_pread(fd, size, offset)

        monkeypatch.setattr(os, "pread", pread)
    try:
        with pytest.raises(fs.BackendError) as error:
            storage.save(source, "big.bin")
        assert error.value.__cause__ is not None
    finally:
        monkeypatch.undo()
        if "proxy" not in private_swift.procs:
            private_swift.start_proxy()
        source.close()
    if source_kind == "file on disk":
        assert sum(sent) >= 15 * MIB  # the parts were read from the file, not from the stream
    assert not storage.exists("big.bin")
    assert sorted(storage.list_files()) == ["before.txt"]
    storage.write("after.txt", b"after")  # works again, on the same client
    assert storage.read("after.txt") == b"after" and storage.read("before.txt") == b"before"


class _SeekableStopping(io.BytesIO):
    """A seekable source that stops the server half way through its upload (read after a hashing pass)."""

    def __init__(self, size: int, stop) -> None:
        super().__init__(os.urandom(size))
        self.size, self.stop, self.total = size, stop, 0

    def read(self, size=-1):
        if self.stop and self.total >= self.size * 3 // 2:
            self.stop, stop = None, self.stop
            stop()
        data = super().read(size)
        self.total += len(data)
        return data


def test_server_going_away_for_small_files_and_reads(private_swift, make_storage):
    storage = make_storage(fault_settings(private_swift))
    content = os.urandom(24 * MIB)
    storage.save(io.BytesIO(content), "big.bin")
    reader = storage.open("big.bin", "rb")
    assert reader.read(MIB) == content[:MIB]
    private_swift.stop_proxy()
    try:
        with pytest.raises(fs.BackendError):
            storage.write("small.txt", b"small")
        with pytest.raises(fs.BackendError):
            while reader.read(MIB):  # the rest of a response cut off by the server
                pass
        with pytest.raises(fs.BackendError):
            storage.exists("big.bin")
    finally:
        reader.close()
        private_swift.start_proxy()
    assert not storage.exists("small.txt")
    storage.write("small.txt", b"small")
    assert storage.read("small.txt") == b"small"


def test_one_client_per_backend_created_lazily(moto_endpoint, tmp_path):
    backend = S3Backend("files", {**S3Backend.defaults, "endpoint": moto_endpoint, "access_key": "a",
                                  "secret_key": "b", "region": "us-east-1", "create_bucket": False})  # fmt: skip
    assert backend._client is None
    clients = set()
    threads = [threading.Thread(target=lambda: clients.add(id(backend.client))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 1


# -- closing -----------------------------------------------------------------------------------------


def test_close_stops_the_transfer_threads_and_reconfiguring_closes_the_old_backend(moto_endpoint, tmp_path):
    def transfer_threads():  # s3transfer's executors (moto, in this process, has threads of its own)
        return {t for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")} - before

    before = set(threading.enumerate())
    app = make_app(tmp_path, **s3_settings(moto_endpoint, "testing", "testing"), **SMALL_PARTS)
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    with app.app_context():
        files.save(io.BytesIO(b"x" * (6 * MIB)), "big.bin")  # multipart: through the transfer threads
        backend = files.backend
        assert transfer_threads()  # the transfer manager's threads are running
        fs.close(app)
        assert transfer_threads() == set()
        assert backend._client is None and backend._transfer is None
        assert files.read("big.bin") == b"x" * (6 * MIB)  # usable again: a new client
        files.save(io.BytesIO(b"y" * (6 * MIB)), "big2.bin")
        assert transfer_threads()
        fs.init_app(app, files)  # configured again: the old backend is closed, a new one replaces it
        assert files.backend is not backend
        assert transfer_threads() == set() and backend._client is None
        assert files.read("big2.bin")[:1] == b"y"
        fs.close(app)
    assert transfer_threads() == set()
