"""Direct uploads in a real browser: the gallery's upload fields (fs-upload.js) against the app's own
endpoint, moto's S3 and Swift, with progress, refusals, and a 300 MiB upload that resumes after its
connection is cut by a loopback proxy.

Uses Debian's ``chromium`` through Playwright (see tests/test_gallery_browser.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest
from PIL import Image
from werkzeug.serving import make_server

from examples.gallery.app import Photo, create_app, documents, images
from tests import test_gallery_browser
from tests.test_gallery_browser import ARTIFACTS

pytestmark = pytest.mark.browser
page = test_gallery_browser.page  # the fixture: a page in a fresh headless Chromium
MiB = 1024 * 1024


class CountingMiddleware:
    """Counts the request body bytes the app reads (what passes through Flask)."""

    def __init__(self, app) -> None:
        self.app, self.read = app, 0

    def __call__(self, environ, start_response):
        middleware, stream = self, environ["wsgi.input"]

        class Counted:
            def read(self, *args):
                data = stream.read(*args)
                middleware.read += len(data)
                return data

            def readline(self, *args):
                data = stream.readline(*args)
                middleware.read += len(data)
                return data

            def __iter__(self):
                return iter(self.readline, b"")

        environ["wsgi.input"] = Counted()
        return self.app(environ, start_response)


def serve(app):
    """The app on a free loopback port, in a thread; returns (base URL, stop)."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()

    def stop():
        http.shutdown()
        thread.join(5)

    return f"http://127.0.0.1:{http.server_port}", stop


@pytest.fixture
def gallery(tmp_path):
    """Make the gallery with extra settings; yields ``make(**config) -> (base, app, counter)``."""
    stops = []

    def make(**config):
        app = create_app(
            {"SECRET_KEY": "browser-test", "FS_BACKEND": "local", "FS_ROOT": str(tmp_path / "fs"), **config}
        )
        counter = CountingMiddleware(app.wsgi_app)
        app.wsgi_app = counter
        base, stop = serve(app)
        stops.append(stop)
        return base, app, counter

    yield make
    for stop in stops:
        stop()


def png(path: Path, color: str, size=(320, 240)) -> Path:
    Image.new("RGB", size, color).save(path, "PNG")
    return path


def watch(page) -> list[tuple[int, int]]:
    """Collect the progress events of the upload fields, across page loads."""
    events: list[tuple[int, int]] = []
    page.expose_function("fsProgress", lambda loaded, total: events.append((loaded, total)))
    page.add_init_script(
        "document.addEventListener('fs-upload:progress', e => window.fsProgress(e.detail.loaded, e.detail.total))"
    )
    return events


def upload_direct(page, form: str, *paths: Path) -> None:
    with page.expect_navigation(timeout=120_000):
        page.set_input_files(f"#{form} input[type=file]", [str(p) for p in paths])


def check_refusals(page, app, tmp_path) -> None:
    """A spoofed type and an oversize image are refused, with their message, and leave nothing stored."""
    spoof = tmp_path / "cat.jpg"
    spoof.write_bytes(b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")
    before = {name for name in images.bind(app).backend.list_files()}
    upload_direct(page, "direct-photos", spoof)
    assert "This file is not what its name says" in page.locator(".messages li.error").inner_text()
    big = tmp_path / "big.png"
    with open(big, "wb") as out:
        out.write(png(tmp_path / "seed.png", "red").read_bytes())
        out.truncate(17 * MiB)  # over IMAGES_FS_MAX_SIZE (16 MiB)
    page.set_input_files("#direct-photos input[type=file]", str(big))
    status = page.locator("#direct-photos output")
    status.filter(has_text="too large").wait_for()
    with app.app_context():
        assert Photo.objects.count() == 1
        after = {name for name in images.bind(app).backend.list_files()}
    used = {name for name in after - before if name.endswith(".used")}
    assert after - before - used == set()  # only the refused token's marker: no file, no pending upload


def test_direct_uploads_to_the_app_endpoint(gallery, page, tmp_path):
    base, app, counter = gallery()
    progress = watch(page)
    page.goto(base + "/")
    upload_direct(page, "direct-photos", png(tmp_path / "red.png", "red"))
    assert page.locator(".messages li.ok").all_inner_texts() == ["Saved red.png."]
    assert page.locator("#photos img").count() == 1
    assert progress and progress[-1][0] == progress[-1][1] == (tmp_path / "red.png").stat().st_size
    page.screenshot(path=str(ARTIFACTS.joinpath("direct-local.png")), full_page=True)
    check_refusals(page, app, tmp_path)


def cors(origin: str) -> dict:
    return {
        "CORSRules": [
            {
                "AllowedOrigins": [origin],
                "AllowedMethods": ["GET", "PUT", "POST"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 600,
            }
        ]
    }


def test_direct_uploads_to_s3(gallery, page, tmp_path, moto_endpoint):
    suffix = os.urandom(4).hex()
    s3 = {
        "IMAGES_FS_BACKEND": "s3", "DOCUMENTS_FS_BACKEND": "s3", "FS_S3_ENDPOINT": moto_endpoint,
        "FS_S3_ACCESS_KEY": "testing", "FS_S3_SECRET_KEY": "testing", "FS_S3_REGION": "us-east-1",
        "FS_S3_CREATE_BUCKET": True, "IMAGES_FS_BUCKET": f"images-{suffix}", "DOCUMENTS_FS_BUCKET": f"docs-{suffix}",
    }  # fmt: skip
    base, app, counter = gallery(**s3)
    with app.app_context():
        for storage in (images, documents):
            storage.check()  # creates the bucket
            storage.backend.client.put_bucket_cors(Bucket=storage.backend.bucket, CORSConfiguration=cors(base))
    progress = watch(page)
    page.goto(base + "/")
    assert page.locator("header .backend").inner_text().endswith("s3 backend")
    counter.read = 0
    upload_direct(page, "direct-photos", png(tmp_path / "red.png", "red"))
    assert page.locator(".messages li.ok").all_inner_texts() == ["Saved red.png."]
    # a 24 MiB document: resumable S3 multipart, parts sent by the browser to S3
    doc = tmp_path / "report.pdf"
    with open(doc, "wb") as out:
        out.write(b"%PDF-1.7\n")
        out.write(os.urandom(24 * MiB))
    upload_direct(page, "direct-documents", doc)
    assert page.locator(".messages li.ok").all_inner_texts() == ["Saved report.pdf."]
    with app.app_context():
        assert documents.metadata("report.pdf")["size"] == doc.stat().st_size
    assert counter.read < 64 * 1024, f"{counter.read} request-body bytes went through Flask"
    assert progress[-1][0] == progress[-1][1] == doc.stat().st_size
    check_refusals(page, app, tmp_path)


def test_direct_uploads_to_swift(gallery, page, tmp_path, swift_server):
    from tests.backends.conftest import swift_settings

    settings = swift_settings(swift_server)
    container = settings.pop("FILES_FS_CONTAINER")
    settings.pop("FS_BACKEND")
    base, app, counter = gallery(
        **settings, IMAGES_FS_BACKEND="swift", IMAGES_FS_CONTAINER=container, DOCUMENTS_FS_BACKEND="swift",
        DOCUMENTS_FS_CONTAINER=container + "-docs",
    )  # fmt: skip
    with app.app_context():
        for storage in (images, documents):
            backend = storage.backend
            backend._ensure(backend.container)
            backend._call("post_container", backend.container, {"X-Container-Meta-Access-Control-Allow-Origin": base})
    page.goto(base + "/")
    counter.read = 0
    upload_direct(page, "direct-photos", png(tmp_path / "red.png", "red"))
    assert page.locator(".messages li.ok").all_inner_texts() == ["Saved red.png."]
    doc = tmp_path / "notes.txt"
    doc.write_text("direct to Swift\n" * 1000)
    upload_direct(page, "direct-documents", doc)
    assert page.locator(".messages li.ok").all_inner_texts() == ["Saved notes.txt."]
    with app.app_context():
        assert documents.read("notes.txt") == doc.read_bytes()
    assert counter.read < 64 * 1024, f"{counter.read} request-body bytes went through Flask"
    check_refusals(page, app, tmp_path)


class CuttingProxy:
    """A loopback TCP proxy that counts the bytes sent upstream and cuts every connection once,
    when ``cut_after`` bytes have gone up."""

    def __init__(self, upstream: tuple[str, int], cut_after: int) -> None:
        self.upstream, self.cut_after = upstream, cut_after
        self.sent, self.cuts = 0, 0
        self._lock, self._open = threading.Lock(), set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._open.update((client, server))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(256 * 1024):
                target.sendall(data)
                if upstream:
                    with self._lock:
                        self.sent += len(data)
                        cut = self.cuts == 0 and self.sent >= self.cut_after
                        if cut:
                            self.cuts += 1
                    if cut:
                        self._cut_all()
                        return
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.close()

    def _cut_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self._cut_all()


def test_300_mib_upload_resumes_after_the_connection_is_cut(gallery, page, tmp_path):
    size = 300 * MiB
    base, app, counter = gallery()
    port = int(base.rsplit(":", 1)[1])
    proxy = CuttingProxy(("127.0.0.1", port), cut_after=size // 2)
    try:
        big = tmp_path / "archive.bin"
        block = os.urandom(MiB)
        with open(big, "wb") as out:
            for _ in range(size // MiB):
                out.write(block)
        progress = watch(page)
        page.goto(f"http://127.0.0.1:{proxy.port}/")
        upload_direct(page, "direct-documents", big)
        assert page.locator(".messages li.ok").all_inner_texts() == ["Saved archive.bin."]
        assert proxy.cuts == 1
        resent = proxy.sent - size
        assert resent < size // 10, f"{resent} bytes sent twice"
        assert progress[-1] == (size, size)
        with app.app_context():
            assert documents.metadata("archive.bin")["size"] == size
            with documents.open("archive.bin", "rb") as stored:
                stored.seek(size // 2)
                assert stored.read(MiB) == block
    finally:
        proxy.close()
    print(f"re-sent {resent} bytes of {size} ({100 * resent / size:.2f} %)")
