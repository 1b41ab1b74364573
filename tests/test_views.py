"""The ``fs`` blueprint and URLs: when files are served, with which headers, and uploads cut short."""

from __future__ import annotations

import ast
import io
import os
from datetime import timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import pytest
from flask import Flask, request
from werkzeug.http import http_date, parse_date, parse_options_header

import flask_fs as fs
from flask_fs.backends.local import LocalBackend
from tests.backends.conftest import BACKENDS, backend_settings
from tests.conftest import make_app

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
HTML = b"<html><body><script>fetch('/api/me').then(r => r.text()).then(alert)</script></body></html>"


def serving_app(tmp_path, **config):
    app = make_app(tmp_path)
    app.config.update(config)
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    return app, files


def test_serves_stored_files_with_type_validators_and_safety_headers(tmp_path):
    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write("docs/readme.txt", "hello")
        files.write("img/pic.png", b"\x89PNG....")
    client = app.test_client()
    response = client.get("/files/docs/readme.txt")
    assert response.status_code == 200 and response.data == b"hello"
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Length"] == "5"
    assert response.headers["ETag"] and response.headers["Last-Modified"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert not response.headers.get("Content-Disposition", "").startswith("attachment")
    assert client.get("/files/img/pic.png").mimetype == "image/png"
    assert client.head("/files/docs/readme.txt").headers["Content-Length"] == "5"


def test_conditional_requests_answer_304(tmp_path):
    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write("a.txt", "version 1")
    client = app.test_client()
    first = client.get("/files/a.txt")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get("/files/a.txt", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/files/a.txt", headers={"If-Modified-Since": modified}).status_code == 304
    earlier = http_date(parse_date(modified) - timedelta(hours=1))
    assert client.get("/files/a.txt", headers={"If-Modified-Since": earlier}).status_code == 200
    with app.app_context():
        files.write("a.txt", "version 2, longer", overwrite=True)
    changed = client.get("/files/a.txt", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.data == b"version 2, longer"
    assert changed.headers["ETag"] != etag


def test_range_requests_answer_206(tmp_path):
    app, files = serving_app(tmp_path)
    content = bytes(range(256)) * 8
    with app.app_context():
        files.write("video.bin", content)
    client = app.test_client()
    partial = client.get("/files/video.bin", headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206 and partial.data == content[100:200]
    assert partial.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    assert partial.headers["Accept-Ranges"] == "bytes"
    tail = client.get("/files/video.bin", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == content[-10:]
    assert client.get("/files/video.bin", headers={"Range": f"bytes={len(content) + 5}-"}).status_code == 416


@pytest.mark.parametrize(
    "url",
    [
        "/files/missing.txt",
        "/nostorage/a.txt",
        "/files/../outside.txt",
        "/files/%2e%2e/outside.txt",
        "/files/..%2foutside.txt",
        "/files/sub/..%5c..%5coutside.txt",
        "/files/a%00b.txt",
        "/files/sub",  # a folder
        "/files/",
    ],
)
def test_unknown_storage_missing_file_or_bad_name_is_404(tmp_path, url):
    app, files = serving_app(tmp_path)
    (tmp_path / "instance" / "fs").mkdir(parents=True)
    (tmp_path / "instance" / "fs" / "outside.txt").write_text("not in the storage")
    with app.app_context():
        files.write("sub/a.txt", "x")
    assert app.test_client().get(url).status_code == 404


def test_odd_names_are_served_through_their_urls(tmp_path):
    app, files = serving_app(tmp_path)
    with app.test_request_context():
        for name in ("%2e%2e%2f", "a b#c?.txt", "été/照片.txt"):
            files.write(name, name)
            url = files.url(name)
            assert "%2e" not in url.lower() or "%252e" in url.lower()
            response = app.test_client().get(url)
            assert response.status_code == 200 and response.data == name.encode(), name


def test_nothing_is_served_when_fs_serve_is_off(tmp_path):
    app, files = serving_app(tmp_path, FS_SERVE=False)
    with app.app_context():
        files.write("a.txt", "x")
    assert app.test_client().get("/files/a.txt").status_code == 404


def test_by_default_storages_without_a_url_are_served_and_others_only_in_debug(tmp_path):
    for debug, cdn_status in ((False, 404), (True, 200)):
        app = Flask(__name__, instance_path=str(tmp_path / "instance"))
        app.debug = debug
        app.config["CDN_FS_URL"] = "https://cdn.example.com/"
        files, cdn = fs.Storage("files"), fs.Storage("cdn")
        fs.init_app(app, files, cdn)
        with app.app_context():
            files.write("a.txt", "x", overwrite=True)
            cdn.write("a.txt", "x", overwrite=True)
            url = files.url("a.txt")
        assert app.test_client().get(url).status_code == 200  # the URL url() gave works
        assert app.test_client().get("/cdn/a.txt").status_code == cdn_status


def test_one_storage_can_refuse_serving(tmp_path):
    app, files = serving_app(tmp_path, FS_SERVE=None, FILES_FS_SERVE=False)
    with app.app_context():
        files.write("a.txt", "x")
    assert app.test_client().get("/files/a.txt").status_code == 404


def test_prefix(tmp_path):
    app, files = serving_app(tmp_path, FS_PREFIX="/static/fs")
    with app.test_request_context():
        files.write("a.txt", "x")
        assert files.url("a.txt") == "/static/fs/files/a.txt"
        assert files.url("a.txt", external=True) == "http://localhost/static/fs/files/a.txt"
        assert files.base_url == "http://localhost/static/fs/files/"
    client = app.test_client()
    assert client.get("/static/fs/files/a.txt").data == b"x"
    assert client.get("/files/a.txt").status_code == 404


def test_urls_fall_back_to_the_view_outside_requests(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))  # no SERVER_NAME, no request: a CLI or a task
    files = fs.Storage("files")
    fs.init_app(app, files)
    with app.app_context():
        assert not files.has_url
        assert files.url("a b.txt") == "/files/a%20b.txt"
        assert files.base_url == "/files/"
        files.write("a.txt", "x")
        assert files.metadata("a.txt")["url"] == "/files/a.txt"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("evil.svg", SVG),
        ("EVIL.SVG", SVG),
        ("evil.svgz", SVG),
        ("page.html", HTML),
        ("page.htm", HTML),
        ("page.shtml", HTML),
        ("page.xhtm", HTML),
        ("page.xht", HTML),
        ("feed.xml", b"<x/>"),
        ("feed.rss", b"<rss/>"),
        ("feed.atom", b"<feed/>"),
        ("style.xsl", b"<xsl/>"),
        ("app.js", b"alert(1)"),
        ("doc.pdf", b"%PDF-1.4"),
        ("data.json", b"{}"),
        ("blob.unknownext", b"?"),
        ("noextension", b"?"),
        ("été.html", HTML),
    ],
)
def test_types_not_known_to_be_inert_are_sent_as_sandboxed_attachments(tmp_path, name, content):
    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write(name, content)
    response = app.test_client().get("/files/" + quote(name))
    assert response.status_code == 200 and response.data == content
    kind, params = parse_options_header(response.headers["Content-Disposition"])
    assert kind == "attachment"
    assert params == {"filename": name}  # Werkzeug decodes filename* into filename
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = response.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("pic.png", "image/png"),
        ("PIC.JPG", "image/jpeg"),
        ("anim.gif", "image/gif"),
        ("pic.webp", "image/webp"),
        ("song.mp3", "audio/mpeg"),
        ("clip.mp4", "video/mp4"),
        ("clip.webm", "video/webm"),
        ("notes.txt", "text/plain"),
    ],
)
def test_inert_types_are_shown_inline(tmp_path, name, mime):
    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write(name, b"data")
    response = app.test_client().get("/files/" + name)
    assert response.mimetype == mime
    assert parse_options_header(response.headers["Content-Disposition"]) == ("inline", {"filename": name})
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "name",
    ["a;b.txt", "x; filename=evil.html", "a=b,c.svg", "semi;colon; n=x.html", "été; x=1.txt", "照片.png", "sp ace.txt"],
)
def test_content_disposition_quotes_every_name(tmp_path, name):
    app, files = serving_app(tmp_path)
    with app.test_request_context():
        files.write(name, b"x")
        url = files.url(name)
    disposition = app.test_client().get(url).headers["Content-Disposition"]
    kind, params = parse_options_header(disposition)  # decodes filename* into filename
    assert params == {"filename": name}  # nothing injected
    assert disposition.isascii() and ("filename*=UTF-8''" in disposition) == (not name.isascii())


def test_names_with_quotes_cannot_be_stored_nor_served(tmp_path):
    app, files = serving_app(tmp_path)
    root = tmp_path / "instance" / "fs" / "files"
    root.mkdir(parents=True)
    (root / 'x";filename=evil.html').write_bytes(HTML)  # planted on the disk by other means
    with app.app_context(), pytest.raises(fs.InvalidFileName):
        files.write('a".txt', b"x")
    assert app.test_client().get("/files/x%22%3Bfilename%3Devil.html").status_code == 404


def test_type_stored_with_the_file_decides_not_the_name(tmp_path):
    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write("pic.png", HTML)
    client = app.test_client()
    assert parse_options_header(client.get("/files/pic.png").headers["Content-Disposition"])[0] == "inline"

    def as_html(filename):  # a backend whose server reports another type than the name suggests
        served = type(files.backend).open_served(files.backend, filename)
        served.mime = "text/html"
        return served

    with app.app_context():
        files.backend.open_served = as_html
    response = client.get("/files/pic.png")
    assert response.mimetype == "text/html"
    assert parse_options_header(response.headers["Content-Disposition"])[0] == "attachment"


# -- every backend through the view -------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend_files(request, tmp_path):
    """Storage ``files`` on each backend in turn, served by the view; emptied afterwards."""
    app = make_app(tmp_path, **backend_settings(request, request.param))
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    yield app, files, request.param
    with app.app_context():
        for name in list(files.list_files()):
            files.delete(name)


def test_every_backend_answers_ranges_conditionals_and_types(backend_files):
    app, files, kind = backend_files
    content = bytes(range(256)) * 40
    with app.app_context():
        files.write("media/clip.bin", content)
        files.write("page.shtml", HTML)
    client = app.test_client()
    full = client.get("/files/media/clip.bin")
    assert full.status_code == 200 and full.data == content
    assert full.headers["Content-Length"] == str(len(content)) and full.headers["Accept-Ranges"] == "bytes"
    etag, modified = full.headers["ETag"], full.headers["Last-Modified"]
    assert etag.startswith('"') and modified
    assert client.get("/files/media/clip.bin", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/files/media/clip.bin", headers={"If-Modified-Since": modified}).status_code == 304
    middle = client.get("/files/media/clip.bin", headers={"Range": "bytes=5000-5099"})
    assert middle.status_code == 206 and middle.data == content[5000:5100]
    assert middle.headers["Content-Range"] == f"bytes 5000-5099/{len(content)}"
    tail = client.get("/files/media/clip.bin", headers={"Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.data == content[-7:]
    unsatisfiable = client.get("/files/media/clip.bin", headers={"Range": f"bytes={len(content)}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{len(content)}"
    head = client.head("/files/media/clip.bin")
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == str(len(content))
    page = client.get("/files/page.shtml")
    assert page.mimetype == "text/html" and page.data == HTML
    assert parse_options_header(page.headers["Content-Disposition"])[0] == "attachment"
    with app.app_context():
        files.write("media/clip.bin", content[::-1], overwrite=True)
    changed = client.get("/files/media/clip.bin", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.data == content[::-1] and changed.headers["ETag"] != etag
    assert client.get("/files/media/missing.bin").status_code == 404


def test_every_backend_serves_through_storage_serve_and_backend_serve(backend_files):
    app, files, kind = backend_files
    with app.app_context():
        files.write("a.txt", b"hello")
    with app.test_request_context(headers={"Range": "bytes=1-3"}):
        for response in (files.serve("a.txt"), files.backend.serve("a.txt")):
            response.direct_passthrough = False  # let the test read the body
            assert response.status_code == 206 and response.get_data() == b"ell"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            response.close()


# -- Flask-FS 0.6.1's hooks -------------------------------------------------------------------------


class ServeHook(LocalBackend):
    """A third-party backend written for Flask-FS 0.6.1: it builds its own response."""

    def serve(self, filename):
        response = super().serve(filename)
        response.headers["X-Served-By"] = "hook"
        return response


def test_a_backend_overriding_serve_is_obeyed(tmp_path):
    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write("a.txt", b"hello world")
        fs.storage.state(app).bound["files"].backend = ServeHook("files", files.config)
    client = app.test_client()
    response = client.get("/files/a.txt", headers={"Range": "bytes=6-"})
    assert response.status_code == 206 and response.data == b"world"
    assert response.headers["X-Served-By"] == "hook"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/files/missing.txt").status_code == 404


def test_a_mocked_backend_is_obeyed_as_flask_fs_did(tmp_path):
    app, files = serving_app(tmp_path)
    backend = mock.MagicMock()
    backend.serve.return_value = b"content"
    fs.storage.state(app).bound["files"].backend = backend
    client = app.test_client()
    response = client.get("/files/test.txt")
    assert response.status_code == 200 and response.data == b"content"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    backend.serve.assert_called_once_with("test.txt")
    backend.exists.return_value = False
    assert client.get("/files/test.txt").status_code == 404
    assert backend.serve.call_count == 1


def test_a_patched_exists_is_obeyed(tmp_path):
    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write("a.txt", b"x")
        backend = files.backend
    client = app.test_client()
    with mock.patch.object(backend, "exists", return_value=False) as exists:
        assert client.get("/files/a.txt").status_code == 404
        exists.assert_called_once_with("a.txt")
    assert client.get("/files/a.txt").status_code == 200


def test_an_exists_patched_on_the_class_is_obeyed(tmp_path):
    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write("a.txt", b"x")
    with mock.patch.object(LocalBackend, "exists", autospec=True, return_value=False) as exists:
        assert app.test_client().get("/files/a.txt").status_code == 404
    assert exists.call_count == 1


def test_backend_serve_needs_the_flask_layer(tmp_path, monkeypatch):
    from flask_fs import serving

    app, files = serving_app(tmp_path)
    with app.app_context():
        files.write("a.txt", b"x")
        monkeypatch.setattr(serving, "_responder", None)
        with pytest.raises(fs.OperationNotSupported, match="Flask layer"):
            files.backend.serve("a.txt")


def test_backends_never_import_flask_nor_the_views():
    package = Path(fs.__file__).parent
    for path in [package / "serving.py", *sorted((package / "backends").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [f"{'.' * node.level}{node.module or ''}"] + [alias.name for alias in node.names]
            else:
                continue
            for name in imported:
                assert not name.startswith(("flask", "werkzeug")) or name.startswith("flask_fs"), (path, name)
                assert "views" not in name, (path, name)


# -- uploads cut short through a view ----------------------------------------------------------------


class Dribble(io.RawIOBase):
    """A request body that sends ``chunks`` chunks of 64 KiB, then ends (EOF) or raises ``end``."""

    def __init__(self, chunks: int, end=None):
        self.chunks, self.end = chunks, end

    def readable(self):
        return True

    def tell(self):  # the test client measures the body; the declared length comes from CONTENT_LENGTH
        return 0

    def seek(self, offset, whence=0):
        return 0

    def readinto(self, buffer):
        if self.chunks == 0:
            if self.end is not None:
                raise self.end
            return 0
        self.chunks -= 1
        size = min(len(buffer), 64 * 1024)
        buffer[:size] = b"u" * size
        return size


def declared(length: int) -> dict:
    """The Content-Length a client announces (more than it sends when it goes away)."""
    return {"CONTENT_LENGTH": str(length)}


@pytest.fixture
def upload_app(tmp_path):
    app, files = serving_app(tmp_path)

    @app.post("/raw/<name>")
    def raw_upload(name):
        return files.save(request.stream, name, overwrite=True)

    @app.post("/form")
    def form_upload():
        return files.save(request.files["file"], overwrite=True)

    with app.app_context():
        files.write("keep.bin", b"the old version")
    return app, files


def assert_only_the_old_file(app, files):
    with app.app_context():
        assert list(files.list_files()) == ["keep.bin"]
        assert files.read("keep.bin") == b"the old version"
        assert os.listdir(files.config.root) == ["keep.bin"]  # no temporary file left either


@pytest.mark.parametrize("end", [None, ConnectionResetError("connection reset by peer")], ids=["eof", "reset"])
def test_client_disconnect_mid_upload_stores_nothing(upload_app, end):
    app, files = upload_app
    client = app.test_client()
    for name in ("new.bin", "keep.bin"):
        body = Dribble(5, end)
        response = client.post(f"/raw/{name}", input_stream=body, environ_overrides=declared(10 * 1024 * 1024))
        assert response.status_code == 400  # Werkzeug's ClientDisconnected, raised from inside save()
        assert body.chunks == 0  # the upload had started streaming into the storage
    assert_only_the_old_file(app, files)


def test_multipart_upload_cut_short_stores_nothing(upload_app):
    app, files = upload_app
    body = b"--B\r\nContent-Disposition: form-data; name=file; filename=keep.bin\r\n\r\n" + b"u" * 300_000
    response = app.test_client().post(
        "/form",
        input_stream=io.BytesIO(body),
        environ_overrides=declared(len(body) + 1000),
        content_type="multipart/form-data; boundary=B",
    )
    assert response.status_code == 400
    assert_only_the_old_file(app, files)


def test_complete_uploads_through_views(upload_app):
    app, files = upload_app
    client = app.test_client()
    assert (
        client.post("/raw/new.bin", input_stream=Dribble(3), environ_overrides=declared(3 * 64 * 1024)).data
        == b"new.bin"
    )
    response = client.post("/form", data={"file": (io.BytesIO(b"replaced"), "../../keep.bin")})
    assert response.data == b"keep.bin"
    with app.app_context():
        assert files.read("new.bin") == b"u" * 3 * 64 * 1024 and files.read("keep.bin") == b"replaced"
