"""The gallery example (examples/gallery) through Flask's test client: what a visitor sees for each
flow (upload, thumbnails, metadata, download, delete, documents) and for each kind of bad input."""

from __future__ import annotations

import io
import re
import urllib.request
from html import unescape

import pytest
from PIL import Image

import flask_fs as fs
from examples.gallery.app import DISPLAY, THUMBNAIL, Photo, create_app, documents, images
from tests.backends.conftest import backend_settings, unique

SECRET = "test-secret"


def png(color: str, size: tuple[int, int] = (400, 300)) -> io.BytesIO:
    data = io.BytesIO()
    Image.new("RGB", size, color).save(data, "PNG")
    data.seek(0)
    return data


def jpeg(size: tuple[int, int]) -> io.BytesIO:
    data = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(data, "JPEG", quality=90)
    data.seek(0)
    return data


def messages(html: str) -> list[str]:
    """The flashed messages shown on a page, unescaped enough to compare."""
    found = re.findall(r'<li class="(?:ok|error)">(.*?)</li>', html)
    return [re.sub(r"\s+", " ", unescape(message)) for message in found]


def thumbnails(html: str) -> list[str]:
    grid = html[html.index('id="photos"') :]
    grid = grid[: grid.index("</ul>")]
    return re.findall(r'<img src="([^"]+)"', grid)


@pytest.fixture
def app(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": SECRET, "FS_BACKEND": "local", "FS_ROOT": str(tmp_path / "fs")})
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


def upload_photos(client, *files):
    return client.post("/photos", data={"images": list(files)})


def test_home_page_says_the_records_are_in_memory(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "in-memory document store" in page.text and "GALLERY_MONGO_URL" in page.text
    assert "No photos yet." in page.text and "No documents yet." in page.text
    assert "files on the <strong>local</strong> backend" in page.text


def test_no_notice_with_a_mongodb_url(tmp_path, monkeypatch):
    import mongomock

    monkeypatch.setattr("mongoengine.connection.MongoClient", mongomock.MongoClient)  # no server here
    app = create_app({"TESTING": True, "FS_ROOT": str(tmp_path), "MONGO_URL": "mongodb://example.invalid/gallery"})
    page = app.test_client().get("/")
    assert page.status_code == 200
    assert "in-memory document store" not in page.text


def test_upload_two_images_shows_two_thumbnails(client, app):
    response = upload_photos(client, (png("red"), "red.png"), (png("blue"), "blue sky.png"))
    assert response.status_code == 303 and response.headers["Location"] == "/"
    page = client.get("/")
    assert messages(page.text) == ["Saved red.png.", "Saved blue sky.png."]
    urls = thumbnails(page.text)
    assert len(urls) == 2
    for url in urls:
        served = client.get(url)
        assert served.status_code == 200 and served.mimetype == "image/png"
        assert Image.open(io.BytesIO(served.data)).size == (THUMBNAIL, THUMBNAIL)
    stored = sorted(images.list_files())
    assert len(stored) == 4  # each upload (small enough to be shown as it is) and its thumbnail
    assert [name.split("/")[1] for name in stored if "blue" in name] == ["blue_sky-300.png", "blue_sky.png"]


def test_photo_page_shows_the_metadata_of_each_file(client, app):
    upload_photos(client, (jpeg((2400, 1200)), "wide.jpg"))
    photo = Photo.objects.get()
    page = client.get(f"/photos/{photo.id}")
    assert page.status_code == 200
    image = photo.image
    assert image.original != image.filename  # larger than DISPLAY: resized, the upload kept aside
    for name in (image.original, image.filename, image.thumbnail(THUMBNAIL)):
        meta = images.metadata(name)
        assert meta["checksum"] in page.text
        assert f"({meta['size']} bytes)" in page.text
        assert meta["modified"].strftime("%Y-%m-%d %H:%M:%S") in page.text
    assert "original</td>" in page.text and "displayed</td>" in page.text and "300 px thumbnail</td>" in page.text
    full = client.get(re.search(r'<img id="full" src="([^"]+)"', page.text).group(1))
    assert full.status_code == 200
    assert Image.open(io.BytesIO(full.data)).size == (DISPLAY, DISPLAY // 2)


def test_download_sends_the_original_upload(client):
    original = jpeg((800, 600)).getvalue()
    upload_photos(client, (io.BytesIO(original), "été.jpg"))
    photo = Photo.objects.get()
    response = client.get(f"/photos/{photo.id}/download")
    assert response.status_code == 200
    assert response.data == original
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''%C3%A9t%C3%A9.jpg"


def test_delete_removes_the_photo_and_its_files(client):
    upload_photos(client, (png("red"), "red.png"), (png("green"), "green.png"))
    red = Photo.objects.get(title="red.png")
    red_files = red.image.files
    assert all(images.exists(name) for name in red_files)
    response = client.post(f"/photos/{red.id}/delete")
    assert response.status_code == 303
    page = client.get("/")
    assert messages(page.text)[-1] == "Deleted red.png."
    assert len(thumbnails(page.text)) == 1 and "green" in thumbnails(page.text)[0]
    assert not any(images.exists(name) for name in red_files)
    assert all("green" in name for name in images.list_files())
    assert client.get(f"/photos/{red.id}").status_code == 404


def test_documents_upload_list_download_delete(client):
    response = client.post("/documents", data={"documents": [(io.BytesIO(b"%PDF-1.4 hello"), "report.pdf")]})
    assert response.status_code == 303
    page = client.get("/")
    assert messages(page.text) == ["Saved report.pdf."]
    assert ">report.pdf</a>" in page.text and "application/pdf" in page.text and "14 Bytes" in page.text
    download = client.get("/documents/report.pdf")
    assert download.data == b"%PDF-1.4 hello"
    assert download.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    client.post("/documents", data={"documents": [(io.BytesIO(b"again"), "report.pdf")]})
    assert sorted(documents.list_files()) == ["report.pdf", "report_1.pdf"]  # a second upload is renamed
    assert client.post("/documents/report.pdf/delete").status_code == 303
    assert sorted(documents.list_files()) == ["report_1.pdf"]


def test_forbidden_document_type_is_refused_with_a_message(client):
    response = client.post("/documents", data={"documents": [(io.BytesIO(b"#!/bin/sh\nrm -rf /"), "setup.sh")]})
    assert response.status_code == 415
    assert messages(response.text) == [
        "setup.sh: this type of file is not accepted here (files of type 'sh' are not allowed in 'documents')."
    ]
    assert "Traceback" not in response.text
    assert list(documents.list_files()) == []


def test_mixed_upload_keeps_the_good_files_and_reports_the_bad(client):
    response = upload_photos(client, (png("red"), "red.png"), (io.BytesIO(b"text"), "notes.txt"))
    assert response.status_code == 415
    assert messages(response.text)[0] == "Saved red.png."
    assert messages(response.text)[1].startswith("notes.txt: this type of file is not accepted here")
    assert len(thumbnails(response.text)) == 1


def test_a_file_that_is_not_an_image(client):
    response = upload_photos(client, (io.BytesIO(b"not a picture at all"), "fake.png"))
    assert response.status_code == 422
    assert messages(response.text) == ["fake.png: this file is not an image we can read, or it is damaged."]
    assert list(images.list_files()) == [] and Photo.objects.count() == 0


def test_an_image_larger_than_the_storage_limit(tmp_path):
    app = create_app({"TESTING": True, "FS_ROOT": str(tmp_path), "IMAGES_FS_MAX_SIZE": 2000})
    with app.app_context():
        response = upload_photos(app.test_client(), (jpeg((400, 400)), "big.jpg"))
        assert response.status_code == 413
        assert messages(response.text) == [
            "big.jpg: this file is too large (files in 'images' are limited to 2000 bytes)."
        ]
        assert list(images.list_files()) == []


def test_a_request_larger_than_max_content_length(tmp_path):
    app = create_app({"TESTING": True, "FS_ROOT": str(tmp_path), "MAX_CONTENT_LENGTH": 1024 * 1024})
    response = upload_photos(app.test_client(), (io.BytesIO(b"x" * (2 * 1024 * 1024)), "huge.png"))
    assert response.status_code == 413
    assert "These files are too large" in response.text
    assert "at most 1.0 MiB at once" in response.text


def test_an_empty_form(client):
    response = client.post("/photos", data={})
    assert response.status_code == 400
    assert messages(response.text) == ["Choose at least one file first."]


@pytest.mark.parametrize("path", ["/photos/000000000000000000000000", "/photos/not-an-id", "/nowhere"])
def test_unknown_pages_are_friendly_404s(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "<h1>Not Found</h1>" in response.text and "Back to the gallery" in response.text


def test_a_missing_document_is_a_friendly_404(client):
    response = client.get("/documents/gone.pdf")
    assert response.status_code == 404
    assert "this file does not exist" in response.text.lower()


def test_a_storage_failure_is_a_friendly_page(client, monkeypatch):
    upload_photos(client, (png("red"), "red.png"))
    photo = Photo.objects.get()

    def broken(name):
        raise fs.BackendError("connection refused by 10.0.0.1:9000")

    monkeypatch.setattr(images.backend, "metadata", broken)
    response = client.get(f"/photos/{photo.id}")
    assert response.status_code == 503
    assert "The file storage failed; please try again later" in response.text
    assert "10.0.0.1" not in response.text and "Traceback" not in response.text


def test_an_unexpected_error_is_a_friendly_500(tmp_path, monkeypatch):
    app = create_app({"FS_ROOT": str(tmp_path)})  # not TESTING: errors are handled as in production
    with app.app_context():
        monkeypatch.setattr(documents.backend, "list_files", lambda: 1 / 0)
    response = app.test_client().get("/")
    assert response.status_code == 500
    assert "Something went wrong" in response.text and "ZeroDivisionError" not in response.text


@pytest.mark.parametrize("kind", ["s3-moto", "swift", "gridfs-mongomock"])
def test_the_gallery_on_other_backends(request, kind, tmp_path):
    """The settings the README gives move every storage (images, documents, assets) to another backend."""
    settings = backend_settings(request, kind)
    settings.pop("FILES_FS_BUCKET", None), settings.pop("FILES_FS_CONTAINER", None)
    for storage in ("IMAGES", "DOCUMENTS", "ASSETS"):  # a fresh bucket/container per storage
        settings[f"{storage}_FS_{'CONTAINER' if kind == 'swift' else 'BUCKET'}"] = unique(storage.lower())
    settings["ASSETS_FS_ACL"] = "public-read"  # S3: the browser reads the stylesheet from the bucket
    app = create_app({"TESTING": True, "FS_ROOT": str(tmp_path), **settings})
    client = app.test_client()
    with app.app_context():
        assert images.config.backend == documents.config.backend == kind.split("-")[0]
        page = client.get("/")
        assert f"files on the <strong>{kind.split('-')[0]}</strong> backend" in page.text
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1)
        if kind == "s3-moto":  # published straight to the bucket, read from there
            assert stylesheet.startswith(settings["FS_S3_ENDPOINT"])
            with urllib.request.urlopen(stylesheet) as response:
                assert response.status == 200 and b".grid" in response.read()
        else:  # served through the app
            assert stylesheet == "/fs/assets/static/gallery.css"
            assert b".grid" in client.get(stylesheet).data

        assert upload_photos(client, (jpeg((1800, 900)), "wide.jpg")).status_code == 303
        photo = Photo.objects.get()
        (url,) = thumbnails(client.get("/").text)
        assert Image.open(io.BytesIO(client.get(url).data)).size == (THUMBNAIL, THUMBNAIL)
        detail = client.get(f"/photos/{photo.id}").text
        assert images.metadata(photo.image.filename)["checksum"] in detail
        assert client.get(f"/photos/{photo.id}/download").data == images.read(photo.image.original)
        stored = photo.image.files
        assert len(stored) == 3 and all(images.exists(name) for name in stored)
        client.post(f"/photos/{photo.id}/delete")
        assert list(images.list_files()) == []

        refused = client.post("/documents", data={"documents": [(io.BytesIO(b"MZ"), "tool.exe")]})
        assert refused.status_code == 415 and "files of type &#39;exe&#39; are not allowed" in refused.text
        assert client.post("/documents", data={"documents": [(io.BytesIO(b"hi"), "a.txt")]}).status_code == 303
        assert list(documents.list_files()) == ["a.txt"]


def test_the_gallery_with_sql_records(tmp_path):
    """GALLERY_RECORDS=sql: the same pages on a SQLite file, the image column following the transaction."""
    database = tmp_path / "gallery.db"
    app = create_app(
        {"TESTING": True, "SECRET_KEY": SECRET, "FS_ROOT": str(tmp_path / "fs"), "RECORDS": "sql",
         "DATABASE_URL": f"sqlite:///{database}"}
    )  # fmt: skip
    client = app.test_client()
    with app.app_context():
        assert "in-memory document store" not in client.get("/").text
        response = upload_photos(client, (jpeg((2400, 1200)), "wide.jpg"), (png("red"), "red.png"))
        assert response.status_code == 303
        page = client.get("/")
        assert messages(page.text) == ["Saved wide.jpg.", "Saved red.png."]
        assert [Image.open(io.BytesIO(client.get(url).data)).size for url in thumbnails(page.text)] == [
            (THUMBNAIL, THUMBNAIL)
        ] * 2
        records = app.extensions["gallery_records"]
        wide = next(photo for photo in records.all() if photo.title == "wide.jpg")
        detail = client.get(f"/photos/{wide.id}").text
        assert images.metadata(wide.image.filename)["checksum"] in detail
        assert client.get(f"/photos/{wide.id}/download").data == images.read(wide.image.original)
        wide_files = wide.image.files
        assert len(wide_files) == 3 and all(images.exists(name) for name in wide_files)

        refused = upload_photos(client, (io.BytesIO(b"not an image"), "fake.png"))  # fails at commit
        assert refused.status_code == 422
        assert len(records.all()) == 2 and len(list(images.list_files())) == 5  # rolled back, nothing left

        assert client.post(f"/photos/{wide.id}/delete").status_code == 303
        assert not any(images.exists(name) for name in wide_files)
        assert client.get(f"/photos/{wide.id}").status_code == 404
        assert [photo.title for photo in records.all()] == ["red.png"]
