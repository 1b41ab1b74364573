"""Direct uploads: presign, upload (our endpoint, S3 presigned POST, tus with tuspy), finalize, refusals.

Uploads go over real sockets where the backend is a server (moto's S3) or where the client is a
real one (tuspy against the app on a live HTTP server); the app's own endpoint is also exercised
through Flask's test client.
"""

from __future__ import annotations

import io
import os
import threading
import time

import pytest
import requests
from flask.cli import cli as flask_cli
from PIL import Image
from werkzeug.serving import make_server

import flask_fs as fs
from flask_fs import uploads
from flask_fs.upload_views import status_for
from tests.conftest import make_app

PENDING = ".uploads/"


def png_bytes(size=(8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, "PNG")
    return out.getvalue()


def stored(storage) -> list[str]:
    """The storage's files: ``list_files`` leaves out the pending uploads folder."""
    return sorted(storage.list_files())


def pending(storage) -> list[str]:
    """What waits in the pending uploads folder (uploads, used-token markers, tus state)."""
    return sorted(name for name in storage.backend.list_files() if name.startswith(PENDING))


@pytest.fixture
def local_app(tmp_path):
    app = make_app(tmp_path, SECRET_KEY="s3cret", PHOTOS_FS_MAX_SIZE="1MiB")
    photos, docs = fs.Storage("photos", fs.IMAGES), fs.Storage("docs", fs.ALL, upload_to="docs")
    fs.init_app(app, photos, docs)
    with app.test_request_context():
        yield app, photos, docs


def put(client, target, body: bytes):
    assert target["method"] == "PUT" and target["fields"] == {}
    return client.put(target["url"], data=body, headers=target["headers"])


# -- our endpoint (local backend) ---------------------------------------------------------------------


def test_put_then_finalize_moves_the_upload_to_its_name(local_app):
    app, photos, docs = local_app
    target = photos.presign_upload("Holiday photo.png")
    assert target["filename"] == "Holiday_photo.png"
    assert target["url"].startswith("/.uploads/photos/")
    assert put(app.test_client(), target, png_bytes()).status_code == 204
    assert stored(photos) == []  # list_files does not show uploads waiting for finalize
    assert len(pending(photos)) == 1
    assert photos.finalize(target["token"]) == "Holiday_photo.png"
    assert photos.read("Holiday_photo.png") == png_bytes()
    assert [name for name in pending(photos) if not name.endswith(".used")] == []


def test_upload_to_folder_and_rename_policy(local_app):
    app, photos, docs = local_app
    docs.write("docs/report.pdf", b"%PDF-1.4 old")
    target = docs.presign_upload("report.pdf", content_type="application/pdf")
    put(app.test_client(), target, b"%PDF-1.4 new")
    with pytest.raises(fs.FileExists):  # docs neither overwrites nor renames
        docs.finalize(target["token"])
    assert docs.read("docs/report.pdf") == b"%PDF-1.4 old"
    assert stored(docs) == ["docs/report.pdf"]
    renaming = fs.Storage("renaming", fs.ALL, rename=True)
    fs.init_app(app, renaming)
    renaming.write("a.txt", "first")
    target = renaming.presign_upload("a.txt")
    put(app.test_client(), target, b"second")
    assert renaming.finalize(target["token"]) == "a_1.txt"
    assert renaming.read("a_1.txt") == b"second"


def test_spoofed_type_is_refused_and_deleted(local_app):
    app, photos, _ = local_app
    target = photos.presign_upload("cat.jpg")
    put(app.test_client(), target, b"<!DOCTYPE html><html><script>alert(1)</script></html>")
    with pytest.raises(fs.ContentMismatch, match="cat.jpg"):
        photos.finalize(target["token"])
    assert stored(photos) == []
    assert [name for name in pending(photos) if not name.endswith(".used")] == []


def test_image_pixel_limit_applies(local_app, tmp_path):
    app, _, _ = local_app
    small = fs.Storage("small", fs.IMAGES)
    app.config["SMALL_FS_IMAGES_MAX_PIXELS"] = 100
    fs.init_app(app, small)
    target = small.presign_upload("big.png")
    put(app.test_client(), target, png_bytes((20, 20)))
    with pytest.raises(fs.ImageTooLarge):
        small.finalize(target["token"])
    assert stored(small) == []


def test_extension_refused_at_presign_and_type_must_match_the_name(local_app):
    _, photos, docs = local_app
    with pytest.raises(fs.UnauthorizedFileType):
        photos.presign_upload("page.html")
    with pytest.raises(fs.UnauthorizedFileType, match="image/png"):
        photos.presign_upload("x.png", content_type="text/html")


def test_oversize_put_is_refused_and_stores_nothing(local_app):
    app, photos, _ = local_app
    target = photos.presign_upload("big.png", max_size=1000)
    response = put(app.test_client(), target, b"\x89PNG" + b"0" * 2000)
    assert response.status_code == 413
    with pytest.raises(fs.FileNotFound, match="nothing was uploaded") as error:
        photos.finalize(target["token"])
    assert status_for(error.value) == 404
    assert stored(photos) == [] and pending(photos) == []


def test_storage_max_size_caps_the_token(local_app):
    app, photos, _ = local_app
    target = photos.presign_upload("big.png", max_size=10 * 1024**2)  # PHOTOS_FS_MAX_SIZE is 1 MiB
    assert put(app.test_client(), target, b"0" * (1024**2 + 1)).status_code == 413


def test_announced_size_and_checksum_are_checked(local_app):
    import hashlib

    app, _, docs = local_app
    body = b"hello world"
    target = docs.presign_upload("a.txt", size=len(body), sha256=hashlib.sha256(b"other").hexdigest())
    put(app.test_client(), target, body)
    with pytest.raises(fs.UploadIncomplete, match="SHA-256"):
        docs.finalize(target["token"])
    target = docs.presign_upload("b.txt", size=100)
    put(app.test_client(), target, body)
    with pytest.raises(fs.UploadIncomplete, match="11 bytes arrived, 100"):
        docs.finalize(target["token"])
    target = docs.presign_upload("c.txt", size=len(body), sha256=hashlib.sha256(body).hexdigest())
    put(app.test_client(), target, body)
    assert docs.finalize(target["token"]) == "docs/c.txt"
    assert stored(docs) == ["docs/c.txt"]


def test_replay_is_refused(local_app):
    app, _, docs = local_app
    client = app.test_client()
    target = docs.presign_upload("a.txt")
    put(client, target, b"one")
    assert docs.finalize(target["token"]) == "docs/a.txt"
    with pytest.raises(fs.UploadTokenUsed) as error:
        docs.finalize(target["token"])
    assert status_for(error.value) == 409
    assert put(client, target, b"two").status_code == 409  # the endpoint refuses it too
    assert docs.read("docs/a.txt") == b"one"


def test_concurrent_finalizes_of_one_token_store_one_file(local_app):
    app, _, docs = local_app
    target = docs.presign_upload("race.txt")
    put(app.test_client(), target, b"once")
    results, start = [], threading.Barrier(8)

    def finalize() -> None:
        with app.test_request_context():
            start.wait()
            try:
                results.append(docs.finalize(target["token"]))
            except (fs.UploadTokenUsed, fs.FileNotFound) as error:  # lost the race: used, or already moved
                results.append(type(error).__name__)

    threads = [threading.Thread(target=finalize) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("docs/race.txt") == 1, results
    assert stored(docs) == ["docs/race.txt"] and docs.read("docs/race.txt") == b"once"


def test_expired_token_is_refused(local_app, monkeypatch):
    app, _, docs = local_app
    target = docs.presign_upload("a.txt", expires=60)
    put(app.test_client(), target, b"x")
    later = time.time() + 61
    monkeypatch.setattr(uploads.time, "time", lambda: later)
    with pytest.raises(fs.UploadTokenExpired) as error:
        docs.finalize(target["token"])
    assert status_for(error.value) == 410
    assert put(app.test_client(), target, b"x").status_code == 410
    assert stored(docs) == []


def test_token_of_another_storage_or_forged_is_refused(local_app, tmp_path):
    app, photos, docs = local_app
    client = app.test_client()
    target = docs.presign_upload("a.png")
    with pytest.raises(fs.UploadTokenInvalid, match="'docs', not 'photos'") as error:
        photos.finalize(target["token"])
    assert status_for(error.value) == 403
    assert client.put(target["url"].replace("/docs/", "/photos/"), data=png_bytes()).status_code == 403
    forged = target["token"][:-4] + ("AAAA" if not target["token"].endswith("AAAA") else "BBBB")
    with pytest.raises(fs.UploadTokenInvalid):
        docs.finalize(forged)
    assert client.put(target["url"].replace(target["token"], forged), data=b"x").status_code == 403
    assert client.put("/.uploads/docs/nonsense", data=b"x").status_code == 403
    other = make_app(tmp_path / "other", SECRET_KEY="another app")
    fs.init_app(other, fs.Storage("docs", fs.ALL))
    with other.test_request_context(), pytest.raises(fs.UploadTokenInvalid):
        fs.by_name("docs").finalize(target["token"])
    assert stored(docs) == [] and pending(docs) == []


def test_never_uploaded_is_refused_and_stores_nothing(local_app):
    _, _, docs = local_app
    target = docs.presign_upload("a.txt")
    with pytest.raises(fs.FileNotFound):
        docs.finalize(target["token"])
    assert stored(docs) == [] and pending(docs) == []


def test_no_signing_key_is_a_configuration_error(tmp_path):
    app = make_app(tmp_path)
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    with app.test_request_context(), pytest.raises(fs.ConfigurationError, match="SECRET_KEY or FILES_FS_UPLOAD_SECRET"):
        files.presign_upload("a.txt")


def test_clean_sweeps_abandoned_uploads(local_app, monkeypatch):
    app, _, docs = local_app
    client = app.test_client()
    done = docs.presign_upload("done.txt")
    put(client, done, b"x")
    docs.finalize(done["token"])
    abandoned = docs.presign_upload("abandoned.txt")
    put(client, abandoned, b"y")
    assert len(pending(docs)) == 2  # a used-token marker and an upload never finalized
    result = app.test_cli_runner().invoke(flask_cli, ["fs", "clean", "docs", "--older-than", "0"])
    assert "0 removed" in result.output  # nothing is older than UPLOAD_EXPIRES yet
    for name in pending(docs):
        path = docs.path(name)
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    result = app.test_cli_runner().invoke(flask_cli, ["fs", "clean", "docs", "--older-than", "0"])
    assert "2 removed" in result.output, result.output
    assert pending(docs) == [] and stored(docs) == ["docs/done.txt"]


# -- tus 1.0 on our endpoint, with tuspy ---------------------------------------------------------------


@pytest.fixture
def live(tmp_path):
    """The app on a real HTTP server (tus clients need sockets); yields (base URL, app, storage)."""
    app = make_app(tmp_path, SECRET_KEY="s3cret")
    app.config["SERVER_NAME"] = None
    docs = fs.Storage("docs", fs.ALL)
    fs.init_app(app, docs)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{http.server_port}"
    with app.test_request_context(base_url=base):
        yield base, app, docs
    http.shutdown()
    thread.join(5)


def test_tus_upload_with_tuspy_resumes(live):
    from tusclient import client as tus_client

    base, app, docs = live
    body = os.urandom(3 * 1024 * 1024 + 123)
    target = docs.presign_upload("data.bin", size=len(body))
    assert target["resumable"]["protocol"] == "tus"
    url = base + target["resumable"]["url"]
    first = tus_client.TusClient(url).uploader(file_stream=io.BytesIO(body), chunk_size=1024 * 1024)
    first.upload_chunk()  # one MiB, then the client "goes away"
    upload_url = first.url
    assert requests.head(upload_url, headers={"Tus-Resumable": "1.0.0"}).headers["Upload-Offset"] == str(1024**2)
    resumed = tus_client.TusClient(url).uploader(file_stream=io.BytesIO(body), chunk_size=1024 * 1024, url=upload_url)
    assert resumed.get_offset() == 1024**2
    resumed.upload()
    assert docs.finalize(target["token"]) == "data.bin"
    assert docs.read("data.bin") == body
    assert [name for name in pending(docs) if not name.endswith(".used")] == []


def test_tus_protocol_errors(live):
    base, app, docs = live
    target = docs.presign_upload("a.bin", max_size=100)
    url, tus = base + target["url"], {"Tus-Resumable": "1.0.0"}
    options = requests.options(url)
    assert options.status_code == 204 and options.headers["Tus-Version"] == "1.0.0"
    assert options.headers["Tus-Max-Size"] == "100"
    assert requests.post(url, headers={"Upload-Length": "10"}).status_code == 412  # no Tus-Resumable
    assert requests.post(url, headers={**tus, "Upload-Length": "101"}).status_code == 413
    assert requests.head(url, headers=tus).status_code == 404  # not created yet
    assert requests.post(url, headers={**tus, "Upload-Length": "10"}).status_code == 201
    patch = {**tus, "Content-Type": "application/offset+octet-stream"}
    assert requests.patch(url, data=b"abc", headers={**tus, "Upload-Offset": "0"}).status_code == 415
    assert requests.patch(url, data=b"abc", headers={**patch, "Upload-Offset": "5"}).status_code == 409
    assert requests.patch(url, data=b"abcdefghijk", headers={**patch, "Upload-Offset": "0"}).status_code == 413
    assert requests.patch(url, data=b"abcd", headers={**patch, "Upload-Offset": "0"}).headers["Upload-Offset"] == "4"
    done = requests.patch(url, data=b"efghij", headers={**patch, "Upload-Offset": "4"})
    assert done.status_code == 204 and done.headers["Upload-Offset"] == "10"
    assert docs.finalize(target["token"]) == "a.bin"
    assert docs.read("a.bin") == b"abcdefghij"
    assert requests.head(url, headers=tus).status_code == 409  # the token is used


# -- S3: presigned POST straight to moto -----------------------------------------------------------------


@pytest.fixture
def s3_app(tmp_path, moto_endpoint):
    app = make_app(
        tmp_path, SECRET_KEY="s3cret", FS_BACKEND="s3", FS_S3_ENDPOINT=moto_endpoint, FS_S3_ACCESS_KEY="testing",
        FS_S3_SECRET_KEY="testing", FS_S3_REGION="us-east-1", FS_S3_CREATE_BUCKET=True,
        FS_S3_BUCKET=f"direct-{os.urandom(4).hex()}",
    )  # fmt: skip
    photos = fs.Storage("photos", fs.IMAGES)
    fs.init_app(app, photos)
    with app.test_request_context():
        photos.check()
        yield app, photos


def post(target, body: bytes, name: str = "upload") -> requests.Response:
    assert target["method"] == "POST"
    return requests.post(target["url"], data=target["fields"], files={"file": (name, body)}, timeout=30)


def test_s3_presigned_post_then_finalize(s3_app):
    app, photos = s3_app
    target = photos.presign_upload("photo.png", max_size=1024**2)
    assert target["url"].startswith(app.config["FS_S3_ENDPOINT"])
    assert target["fields"]["Content-Type"] == "image/png" and "policy" in target["fields"]
    assert post(target, png_bytes()).status_code in (200, 201, 204)
    assert stored(photos) == []
    assert photos.finalize(target["token"]) == "photo.png"
    assert photos.read("photo.png") == png_bytes()
    assert photos.metadata("photo.png")["mime"] == "image/png"


def test_s3_spoofed_and_oversize_are_refused(s3_app):
    app, photos = s3_app
    target = photos.presign_upload("cat.jpg")
    post(target, b"<html><script>alert(1)</script></html>")
    with pytest.raises(fs.ContentMismatch):
        photos.finalize(target["token"])
    target = photos.presign_upload("big.png", max_size=1000)
    response = post(target, png_bytes((300, 300)) + os.urandom(2000))
    if response.status_code < 300:  # moto does not enforce content-length-range: finalize does
        with pytest.raises(fs.FileTooLarge):
            photos.finalize(target["token"])
    else:
        with pytest.raises(fs.FileNotFound):
            photos.finalize(target["token"])
    assert stored(photos) == []
    assert [name for name in pending(photos) if not name.endswith(".used")] == []


def test_s3_multipart_upload_resumes_with_the_missing_parts_only(s3_app):
    app, _ = s3_app
    videos = fs.Storage("videos", fs.ALL)
    fs.init_app(app, videos)
    body = os.urandom(17 * 1024**2 + 5)
    target = videos.presign_upload("film.bin", size=len(body))
    assert target["resumable"]["protocol"] == "s3-multipart"
    client = app.test_client()
    plan = client.post(target["resumable"]["url"], json={"size": len(body)}).get_json()
    part_size = plan["part_size"]
    assert plan["parts"] == {} and sorted(plan["urls"]) == ["1", "2", "3"]
    assert requests.put(plan["urls"]["2"], data=body[part_size : 2 * part_size], timeout=30).status_code == 200
    # a part cut short (moto does not check the signed length; AWS would refuse it) is asked again
    requests.put(plan["urls"]["1"], data=body[:100], timeout=30)
    again = client.post(target["resumable"]["url"], json={"size": len(body)}).get_json()  # the client came back
    assert again["parts"] == {"2": part_size} and sorted(again["urls"]) == ["1", "3"]
    for number, url in again["urls"].items():
        start = (int(number) - 1) * part_size
        assert requests.put(url, data=body[start : start + part_size], timeout=30).status_code == 200
    assert videos.finalize(target["token"]) == "film.bin"
    assert videos.read("film.bin") == body
    assert client.post(target["resumable"]["url"], json={"size": len(body)}).status_code == 409


def test_s3_parts_refused_beyond_the_token(s3_app):
    app, photos = s3_app
    target = photos.presign_upload("photo.png", max_size=1024)
    client = app.test_client()
    assert client.post(target["resumable"]["url"], json={"size": 2048}).status_code == 413
    assert client.post(target["resumable"]["url"], json={}).status_code == 400
    forged = target["resumable"]["url"].replace(target["token"], "forged")
    assert client.post(forged, json={"size": 1}).status_code == 403


# -- Swift: FormPOST straight to the proxy -------------------------------------------------------------------


@pytest.fixture
def swift_app(tmp_path, swift_server):
    from tests.backends.conftest import swift_settings

    app = make_app(tmp_path, SECRET_KEY="s3cret", **swift_settings(swift_server))
    app.config["PHOTOS_FS_CONTAINER"] = app.config.pop("FILES_FS_CONTAINER")
    photos = fs.Storage("photos", fs.IMAGES)
    fs.init_app(app, photos)
    with app.test_request_context():
        yield app, photos


def test_swift_form_post_then_finalize(swift_app, swift_server):
    app, photos = swift_app
    target = photos.presign_upload("photo.png", max_size=1024**2)
    assert target["method"] == "POST" and target["url"].startswith(swift_server.endpoint)
    assert post(target, png_bytes(), target["file_name"]).status_code == 201
    assert stored(photos) == []
    assert photos.finalize(target["token"]) == "photo.png"
    assert photos.read("photo.png") == png_bytes()
    assert photos.metadata("photo.png")["mime"] == "image/png"


def test_swift_form_post_refusals(swift_app):
    app, photos = swift_app
    target = photos.presign_upload("big.png", max_size=1000)
    assert post(target, png_bytes() + os.urandom(2000), target["file_name"]).status_code == 400  # Swift refuses it
    with pytest.raises(fs.FileNotFound):
        photos.finalize(target["token"])
    target = photos.presign_upload("cat.jpg")
    post(target, b"<html><script>alert(1)</script></html>", target["file_name"])
    with pytest.raises(fs.ContentMismatch):
        photos.finalize(target["token"])
    forged = dict(target["fields"], max_file_size="99999999")
    assert post({**target, "fields": forged}, b"x", target["file_name"]).status_code == 401
    assert stored(photos) == []
    assert [name for name in pending(photos) if not name.endswith(".used")] == []


# -- memory: the app's endpoint streams a 1 GiB upload in bounded memory ---------------------------------------

_SERVER = """
import sys
from flask import Flask, request
from werkzeug.serving import make_server
import flask_fs as fs

app = Flask("memory", instance_path=sys.argv[1])
app.config.update(SECRET_KEY="s3cret", FS_ROOT=sys.argv[1])
docs = fs.Storage("docs", fs.ALL)
fs.init_app(app, docs)

@app.post("/presign")
def presign():
    return docs.presign_upload(request.json["name"], size=request.json["size"])

@app.post("/finalize")
def finalize():
    return {"name": docs.finalize(request.json["token"])}

http = make_server("127.0.0.1", 0, app, threaded=True)
print(http.server_port, flush=True)
http.serve_forever()
"""


class Repeated(io.RawIOBase):
    """``chunk`` ``count`` times, as a file of known length (requests sends it with a Content-Length)."""

    def __init__(self, chunk: bytes, count: int) -> None:
        super().__init__()
        self.chunk, self.left = chunk, count

    def __len__(self) -> int:
        return self.left * len(self.chunk)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self.left:
            return b""
        self.left -= 1
        return self.chunk


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_1_gib_upload_to_the_app_endpoint_keeps_memory_flat(tmp_path):
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        chunk = os.urandom(1024 * 1024)

        def send(name: str, count: int) -> str:
            target = requests.post(f"{base}/presign", json={"name": name, "size": count * len(chunk)}).json()
            body = Repeated(chunk, count)
            assert requests.put(base + target["url"], data=body, headers=target["headers"]).status_code == 204
            return requests.post(f"{base}/finalize", json={"token": target["token"]}).json()["name"]

        send("warm-up.bin", 8)  # imports, first requests, allocator pools
        baseline, peak, done = rss(server.pid), 0, threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss(server.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            assert send("big.bin", 1024) == "big.bin"
        finally:
            done.set()
            sampler.join()
        assert os.path.getsize(tmp_path / "docs" / "big.bin") == 1024**3
        growth = peak - baseline
        print(f"app RSS {baseline / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB during a 1 GiB upload")
        assert growth < 32 * 1024 * 1024, f"the app grew by {growth / 2**20:.1f} MiB"
    finally:
        server.terminate()
        server.wait(10)


# -- the endpoint on other backends without presigning -------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "gridfs"])
def test_endpoint_put_and_tus_on_backends_without_presign(tmp_path, backend, request):
    settings = {"FS_BACKEND": backend}
    if backend == "gridfs":
        request.getfixturevalue("use_mongomock")
        settings.update(FS_GRIDFS_MONGO_URL="mongodb://127.0.0.1:27017", FS_GRIDFS_MONGO_DB="direct")
    app = make_app(tmp_path, SECRET_KEY="s3cret", **settings)
    docs = fs.Storage("docs", fs.ALL)
    fs.init_app(app, docs)
    client = app.test_client()
    with app.test_request_context():
        whole = docs.presign_upload("whole.txt")
        assert put(client, whole, b"in one request").status_code == 204
        assert docs.finalize(whole["token"]) == "whole.txt"
        resumed = docs.presign_upload("parts.txt")
        url, tus = resumed["resumable"]["url"], {"Tus-Resumable": "1.0.0"}
        patch = {**tus, "Content-Type": "application/offset+octet-stream"}
        assert client.post(url, headers={**tus, "Upload-Length": "11"}).status_code == 201
        assert client.patch(url, data=b"hello", headers={**patch, "Upload-Offset": "0"}).status_code == 204
        assert client.head(url, headers=tus).headers["Upload-Offset"] == "5"
        assert client.patch(url, data=b" world", headers={**patch, "Upload-Offset": "5"}).status_code == 204
        assert docs.finalize(resumed["token"]) == "parts.txt"
        assert docs.read("whole.txt") == b"in one request" and docs.read("parts.txt") == b"hello world"
        assert stored(docs) == ["parts.txt", "whole.txt"]
        assert all(name.endswith(".used") for name in pending(docs))


# -- the gallery's routes: each refusal is a clear 4xx ---------------------------------------------------------


def test_gallery_direct_upload_routes_answer_4xx(tmp_path, monkeypatch):
    from examples.gallery.app import create_app, documents

    app = create_app({"SECRET_KEY": "t", "FS_BACKEND": "local", "FS_ROOT": str(tmp_path / "fs"), "TESTING": True})
    client = app.test_client()

    def uploaded(name: str, body: bytes | None) -> str:
        target = client.post("/uploads/presign/documents", json={"name": name, "size": 5}).get_json()
        if body is not None:
            assert client.put(target["url"], data=body, headers=target["headers"]).status_code == 204
        return target["token"]

    token = uploaded("notes.txt", b"hello")
    assert client.post("/documents/direct", data={"tokens": token}).status_code == 303
    assert client.post("/documents/direct", data={"tokens": token}).status_code == 409  # replay
    assert client.post("/documents/direct", data={"tokens": token[:-3] + "xyz"}).status_code == 403
    assert client.post("/documents/direct", data={"tokens": uploaded("never.txt", None)}).status_code == 404
    other = client.post("/uploads/presign/photos", json={"name": "a.png", "size": 5}).get_json()["token"]
    assert client.post("/documents/direct", data={"tokens": other}).status_code == 403  # another storage
    late = uploaded("late.txt", b"later")
    later = time.time() + 7200
    monkeypatch.setattr(uploads.time, "time", lambda: later)
    assert client.post("/documents/direct", data={"tokens": late}).status_code == 410
    assert client.post("/uploads/presign/documents", json={"name": "x.exe", "size": 5}).status_code == 415
    with app.app_context():
        assert sorted(documents.list_files()) == ["notes.txt"]
