"""flask_fs.mongo: FileField and ImageField on mongomock (and a real MongoDB with FLASK_FS_MONGO_URL),
with the files on the local backend and, for the image pipeline, on S3 (moto's HTTP server).

Every image is generated with Pillow and every stored rendition is decoded back from the storage.
"""

from __future__ import annotations

import io
import logging
import os

import mongoengine
import pytest
from bson import ObjectId
from flask import render_template_string
from mongoengine import Document, EmbeddedDocument, EmbeddedDocumentField, StringField
from PIL import Image, ImageDraw
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from flask_fs.mongo import FileField, FileReference, ImageField, ImageReference, delete_files_with_document
from tests.backends.conftest import s3_settings, unique
from tests.conftest import make_app

ALIAS = "flask-fs-test"
MONGO_URL = os.environ.get("FLASK_FS_MONGO_URL")
RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
ORIENTATION = 0x0112

files = fs.Storage("files", fs.ALL)
images = fs.Storage("images", fs.IMAGES)


# -- documents -------------------------------------------------------------------------------------------


class Note(Document):
    meta = {"db_alias": ALIAS, "collection": "notes"}
    slug = StringField(default="note")
    attachment = FileField(fs=files)
    renamed = FileField(fs=files, upload_to=lambda doc: f"notes/{doc.slug}", basename=lambda doc: f"{doc.slug}-doc")
    fixed = FileField(fs=files, upload_to="static", basename="fixed")
    required_file = FileField(fs=files, required=False)


class Required(Document):
    meta = {"db_alias": ALIAS, "collection": "required"}
    attachment = FileField(fs=files, required=True)


class Picture(Document):
    """The reference's example field."""

    meta = {"db_alias": ALIAS, "collection": "pictures"}
    image = ImageField(fs=images, max_size=150, thumbnails=[100, 32])


class PlainPicture(Document):
    """Same collection, the settings of an earlier release: no max_size, one thumbnail."""

    meta = {"db_alias": ALIAS, "collection": "pictures"}
    image = ImageField(fs=images, thumbnails=[64])


class Optimized(Document):
    meta = {"db_alias": ALIAS, "collection": "optimized"}
    image = ImageField(fs=images, optimize=True)
    unoptimized = ImageField(fs=images, optimize=False)
    default = ImageField(fs=images)
    limited = ImageField(fs=images, max_pixels=100 * 100)


@delete_files_with_document
class Owned(Document):
    meta = {"db_alias": ALIAS, "collection": "owned"}
    image = ImageField(fs=images, max_size=150, thumbnails=[32])
    attachment = FileField(fs=files)


class Cover(EmbeddedDocument):
    image = ImageField(fs=images, thumbnails=[32])


class Gallery(Document):
    meta = {"db_alias": ALIAS, "collection": "galleries"}
    cover = EmbeddedDocumentField(Cover)


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(params=["mongomock", "mongodb"])
def mongo(request):
    """A mongoengine connection under ALIAS: mongomock, then a real server when FLASK_FS_MONGO_URL is set."""
    db = unique("flaskfs")
    if request.param == "mongomock":
        import mongomock

        mongoengine.connect(
            db,
            host="mongodb://localhost",
            mongo_client_class=mongomock.MongoClient,
            uuidRepresentation="standard",
            alias=ALIAS,
        )
    else:
        if not MONGO_URL:
            pytest.skip("no real MongoDB here: set FLASK_FS_MONGO_URL to run these tests against one")
        mongoengine.connect(
            db, host=MONGO_URL, uuidRepresentation="standard", alias=ALIAS, serverSelectionTimeoutMS=5000
        )
    yield mongoengine.get_db(ALIAS)
    mongoengine.get_connection(ALIAS).drop_database(db)
    mongoengine.disconnect(ALIAS)


@pytest.fixture
def backend():
    """Where the files go; tests of the image pipeline parametrize it with "s3-moto" too."""
    return "local"


@pytest.fixture
def make_fs_app(request, tmp_path, mongo, backend):
    """Factory: an app with storages ``files`` and ``images`` on ``backend``, inside an app context."""
    contexts = []

    def factory(**config):
        settings = {}
        if backend == "s3-moto":
            settings = s3_settings(request.getfixturevalue("moto_endpoint"), "testing", "testing")
            settings["IMAGES_FS_BUCKET"] = unique("flask-fs-img")
        app = make_app(tmp_path, **settings, **config)
        fs.init_app(app, files, images)
        context = app.app_context()
        context.push()
        contexts.append(context)
        return app

    yield factory
    for context in reversed(contexts):
        context.pop()


@pytest.fixture
def app(make_fs_app):
    return make_fs_app()


# -- helpers -----------------------------------------------------------------------------------------------


def quadrants(width: int, height: int) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, yellow bottom-right."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    w, h = width // 2, height // 2
    draw.rectangle((0, 0, w - 1, h - 1), fill=RED)
    draw.rectangle((w, 0, width, h - 1), fill=GREEN)
    draw.rectangle((0, h, w - 1, height), fill=BLUE)
    draw.rectangle((w, h, width, height), fill=YELLOW)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def upload(data: bytes, filename: str) -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=filename)


def stored_image(storage: fs.Storage, name: str) -> Image.Image:
    image = Image.open(io.BytesIO(storage.read(name)))
    image.load()
    return image


def assert_colour(pixel, expected, tolerance=40):
    assert all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], expected, strict=True)), (pixel, expected)


def assert_quadrants(image: Image.Image, tl, tr, bl, br):
    w, h = image.size
    image = image.convert("RGB")
    for (x, y), colour in (
        ((w // 4, h // 4), tl),
        ((3 * w // 4, h // 4), tr),
        ((w // 4, 3 * h // 4), bl),
        ((3 * w // 4, 3 * h // 4), br),
    ):
        assert_colour(image.getpixel((x, y)), colour)


def raw(document_cls, doc) -> dict:
    """The document as MongoDB stores it."""
    return document_cls._get_collection().find_one({"_id": doc.pk})


class NonSeekable(io.RawIOBase):
    """A stream that can only be read once, front to back (like a socket)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# -- FileField ---------------------------------------------------------------------------------------------


def test_empty_file_field(app):
    note = Note()
    assert not note.attachment
    assert note.attachment.filename is None
    assert note.attachment.url is None
    assert str(note.attachment) == ""
    note.save()
    assert "attachment" not in raw(Note, note)
    assert not Note.objects.get(pk=note.pk).attachment


def test_file_save_url_and_reload(app):
    note = Note()
    assert note.attachment.save(io.BytesIO(b"xxx"), "test.file") == "test.file"

    assert note.attachment
    assert note.attachment.filename == "test.file"
    assert note.attachment.url == files.url("test.file")
    assert note.attachment.url.endswith("/files/test.file")
    assert str(note.attachment) == note.attachment.url
    assert files.read("test.file") == b"xxx"

    note.save()
    assert raw(Note, note)["attachment"] == {"filename": "test.file"}
    loaded = Note.objects.get(pk=note.pk)
    assert loaded.attachment.filename == "test.file"
    assert str(loaded.attachment) == files.url("test.file")
    assert isinstance(loaded.attachment, FileReference)


def test_saving_on_a_loaded_document_is_persisted(app):
    note = Note().save()
    loaded = Note.objects.get(pk=note.pk)
    loaded.attachment.save(io.BytesIO(b"later"), "later.txt")
    loaded.save()
    assert Note.objects.get(pk=note.pk).attachment.filename == "later.txt"


def test_upload_name_is_sanitised_and_checked(app):
    note = Note()
    assert note.attachment.save(upload(b"a", "../../etc/my file.txt")) == "my_file.txt"
    assert files.read("my_file.txt") == b"a"

    picture = Picture()
    with pytest.raises(fs.UnauthorizedFileType):
        picture.image.save(upload(b"MZ", "tool.exe"))
    assert list(images.list_files()) == []
    assert not picture.image


def test_basename_and_upload_to_callables_receive_the_document(app):
    note = Note(slug="hello")
    name = note.renamed.save(upload(b"data", "Report Final.PDF"))
    assert name == "notes/hello/hello-doc.pdf"
    assert files.read(name) == b"data"
    # an explicit filename wins over basename; the folder still applies
    assert note.renamed.save(io.BytesIO(b"x"), "explicit.txt") == "notes/hello/explicit.txt"


def test_basename_and_upload_to_strings(app):
    note = Note()
    assert note.fixed.save(upload(b"data", "whatever.csv")) == "static/fixed.csv"
    note.save()
    assert Note.objects.get(pk=note.pk).fixed.url.endswith("/files/static/fixed.csv")


def test_replacing_a_file_deletes_the_previous_one(app):
    note = Note()
    note.attachment.save(io.BytesIO(b"one"), "one.txt")
    note.attachment.save(io.BytesIO(b"two"), "two.txt")
    assert sorted(files.list_files()) == ["two.txt"]
    # the same name again replaces the document's own file instead of failing
    note.attachment.save(io.BytesIO(b"two, again"), "two.txt")
    assert files.read("two.txt") == b"two, again"


def test_a_file_of_another_document_is_not_replaced(app):
    first, second = Note(), Note()
    first.attachment.save(io.BytesIO(b"mine"), "shared.txt")
    with pytest.raises(fs.FileExists):
        second.attachment.save(io.BytesIO(b"yours"), "shared.txt")
    assert files.read("shared.txt") == b"mine"
    assert not second.attachment


def test_delete_removes_the_file_and_clears_the_field(app):
    note = Note()
    note.attachment.save(io.BytesIO(b"x"), "gone.txt")
    note.save()
    note.attachment.delete()
    assert not note.attachment
    assert not files.exists("gone.txt")
    note.save()
    assert "attachment" not in raw(Note, note)


def test_required_file_field(app):
    with pytest.raises(mongoengine.ValidationError, match="required"):
        Required().save()
    doc = Required()
    doc.attachment.save(io.BytesIO(b"x"), "x.txt")
    doc.save()
    assert Required.objects.get(pk=doc.pk).attachment.filename == "x.txt"


def test_assignment_from_another_document_and_from_stored_values(app):
    source = Note()
    source.attachment.save(io.BytesIO(b"x"), "x.txt")
    target = Note(attachment={"filename": "x.txt"})
    assert target.attachment == source.attachment
    copy = Note()
    copy.attachment = source.attachment
    assert copy.attachment.filename == "x.txt"
    assert copy.attachment is not source.attachment  # each document keeps its own reference
    copy.attachment = None
    assert not copy.attachment
    assert source.attachment.filename == "x.txt"


# -- ImageField: the reference's example -----------------------------------------------------------------


@pytest.mark.parametrize("backend", ["local", "s3-moto"])
def test_reference_example_names_sizes_and_pixels(app):
    source = encode(quadrants(300, 200))
    picture = Picture()
    assert picture.image.save(upload(source, "test.png")) == "test.png"

    assert picture.image.filename == "test.png"
    assert picture.image.original == "test-original.png"
    assert picture.image.thumbnail(100) == "test-100.png"
    assert picture.image.thumbnail(32) == "test-32.png"
    assert sorted(images.list_files()) == ["test-100.png", "test-32.png", "test-original.png", "test.png"]

    assert images.read("test-original.png") == source  # the original stays untouched
    main = stored_image(images, "test.png")
    assert (main.format, main.size) == ("PNG", (150, 100))
    assert_quadrants(main, RED, GREEN, BLUE, YELLOW)
    for size in (100, 32):
        thumb = stored_image(images, f"test-{size}.png")
        assert (thumb.format, thumb.size) == ("PNG", (size, size))
        assert_quadrants(thumb, RED, GREEN, BLUE, YELLOW)  # centre square of the source

    image = picture.image
    assert image.best_url().endswith(image.filename)
    assert image.best_url(200).endswith(image.filename)
    assert image.best_url(150).endswith(image.filename)
    assert image.best_url(100).endswith(image.thumbnail(100))
    assert image.best_url(90).endswith(image.thumbnail(100))
    assert image.best_url(30).endswith(image.thumbnail(32))
    assert image().endswith(image.filename)
    assert image(200).endswith(image.filename)
    assert image(150).endswith(image.filename)
    assert image(100).endswith(image.thumbnail(100))
    assert image.best_url(100) == images.url("test-100.png")
    assert image.best_url(100, external=True).startswith("http")


def test_stored_layout_and_reload(app):
    picture = Picture()
    picture.image.save(upload(encode(quadrants(300, 200)), "test.png"), bbox=(10, 10, 100, 100))
    picture.save()

    assert raw(Picture, picture)["image"] == {
        "filename": "test.png",
        "original": "test-original.png",
        "thumbnails": {"100": "test-100.png", "32": "test-32.png"},
        "bbox": [10, 10, 100, 100],
    }
    loaded = Picture.objects.get(pk=picture.pk)
    assert isinstance(loaded.image, ImageReference)
    assert loaded.image == picture.image
    assert loaded.image.original == "test-original.png"
    assert loaded.image.bbox == [10, 10, 100, 100]
    assert loaded.image(90) == images.url("test-100.png")


def test_documents_stored_by_flask_fs_06_load(app):
    """A document inserted in the layout Flask-FS 0.6.1 writes (its to_mongo output for a resized image
    with a bbox, and for a FileField), read through the fields."""
    for name in ("legacy.png", "legacy-original.png", "legacy-100.png", "legacy-32.png"):
        images.write(name, encode(quadrants(40, 40)))
    files.write("doc.txt", b"legacy")
    legacy_id, note_id = ObjectId(), ObjectId()
    Picture._get_collection().insert_one(
        {
            "_id": legacy_id,
            "image": {
                "filename": "legacy.png",
                "original": "legacy-original.png",
                "thumbnails": {"100": "legacy-100.png", "32": "legacy-32.png"},
                "bbox": [1, 2, 30, 40],
            },
        }
    )
    Note._get_collection().insert_one({"_id": note_id, "attachment": {"filename": "doc.txt"}})

    picture = Picture.objects.get(pk=legacy_id)
    assert picture.image.filename == "legacy.png"
    assert picture.image.original == "legacy-original.png"
    assert picture.image.thumbnail(32) == "legacy-32.png"
    assert picture.image.bbox == [1, 2, 30, 40]
    assert picture.image(30) == images.url("legacy-32.png")
    assert picture.image() == images.url("legacy.png")
    assert files.read(Note.objects.get(pk=note_id).attachment.filename) == b"legacy"

    picture.image.delete()  # a loaded reference owns its files too
    picture.save()
    assert list(images.list_files()) == []
    assert "image" not in Picture._get_collection().find_one({"_id": legacy_id})


def test_unresized_image_stored_by_flask_fs_06_loads(app):
    """Flask-FS 0.6.1 writes no "original" for an image it kept as uploaded; unknown keys are ignored."""
    for name in ("plain.png", "plain-100.png", "plain-32.png"):
        images.write(name, encode(quadrants(40, 40)))
    plain_id, bare_id = ObjectId(), ObjectId()
    thumbnails = {"100": "plain-100.png", "32": "plain-32.png"}
    Picture._get_collection().insert_many(
        [
            {"_id": plain_id, "image": {"filename": "plain.png", "thumbnails": thumbnails}},
            {"_id": bare_id, "image": {"filename": "plain.png", "optimize": True}},
        ]
    )
    picture = Picture.objects.get(pk=plain_id)
    assert picture.image.original == picture.image.filename == "plain.png"
    assert picture.image.thumbnail(100) == "plain-100.png"
    assert picture.image(90) == images.url("plain-100.png")
    assert sorted(picture.image.files) == ["plain-100.png", "plain-32.png", "plain.png"]
    bare = Picture.objects.get(pk=bare_id)
    assert bare.image(32) == images.url("plain.png")  # no thumbnail rendered yet: the image itself


# -- ImageField: formats, orientation, cropping ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["local", "s3-moto"])
def test_jpeg_stays_jpeg_with_jpg_names(app):
    picture = Picture()
    picture.image.save(upload(encode(quadrants(300, 200), "JPEG", quality=95), "photo.jpeg"))
    assert picture.image.filename == "photo.jpeg"
    assert picture.image.original == "photo-original.jpeg"
    assert picture.image.thumbnails == {"100": "photo-100.jpeg", "32": "photo-32.jpeg"}
    for name in ("photo.jpeg", "photo-100.jpeg", "photo-32.jpeg"):
        assert stored_image(images, name).format == "JPEG"



def test_content_contradicting_the_name_is_refused(app):
    picture = Picture()
    with pytest.raises(fs.ContentMismatch, match=r"wrong(-original)?\.png"):
        picture.image.save(upload(encode(quadrants(300, 200), "JPEG"), "wrong.png"))
    assert not picture.image
    assert list(images.list_files()) == []


def test_renditions_are_named_after_their_format_without_content_check(make_fs_app):
    make_fs_app(IMAGES_FS_CHECK_CONTENT=False)
    # a JPEG uploaded under a .png name: renditions get the name of what they are
    other = Picture()
    other.image.save(upload(encode(quadrants(300, 200), "JPEG"), "wrong.png"))
    assert other.image.original == "wrong-original.png"
    assert other.image.filename == "wrong.jpg"
    assert other.image.thumbnail(100) == "wrong-100.jpg"
    assert stored_image(images, "wrong-100.jpg").format == "JPEG"


def test_exif_orientation_is_applied(app):
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, displayed rotated 90° clockwise
    data = encode(quadrants(300, 200), "JPEG", quality=95, exif=exif.tobytes())
    picture = Picture()
    picture.image.save(upload(data, "turned.jpg"))

    main = stored_image(images, "turned.jpg")
    assert main.size == (100, 150)
    thumb = stored_image(images, "turned-100.jpg")
    assert thumb.size == (100, 100)
    assert_quadrants(thumb, BLUE, RED, YELLOW, GREEN)


@pytest.mark.parametrize("backend", ["local", "s3-moto"])
def test_bbox_crops_the_thumbnails_only(app):
    picture = Picture()
    picture.image.save(upload(encode(quadrants(300, 200)), "crop.png"), bbox=(0, 0, 100, 100))
    for size in (100, 32):
        thumb = stored_image(images, f"crop-{size}.png")
        assert thumb.size == (size, size)
        assert_quadrants(thumb, RED, RED, RED, RED)
    assert_quadrants(stored_image(images, "crop.png"), RED, GREEN, BLUE, YELLOW)
    assert picture.image.bbox == [0, 0, 100, 100]


def test_small_image_is_kept_as_uploaded(app):
    source = encode(quadrants(80, 60))
    picture = Picture()
    picture.image.save(upload(source, "small.png"))
    assert picture.image.filename == picture.image.original == "small.png"
    assert images.read("small.png") == source
    assert sorted(images.list_files()) == ["small-100.png", "small-32.png", "small.png"]
    assert stored_image(images, "small-100.png").size == (100, 100)
    assert picture.image(120) == images.url("small.png")
    picture.save()
    assert raw(Picture, picture)["image"] == {  # no separate original, like Flask-FS 0.6
        "filename": "small.png",
        "thumbnails": {"100": "small-100.png", "32": "small-32.png"},
    }
    assert Picture.objects.get(pk=picture.pk).image.original == "small.png"


def test_best_url_without_max_size_picks_among_thumbnails(app):
    """Without max_size the displayed image has no known size: the largest thumbnail is the fallback,
    as in Flask-FS 0.6; without thumbnails it is the image itself."""
    picture = PlainPicture()
    picture.image.save(upload(encode(quadrants(300, 200)), "p.png"))
    assert picture.image.best_url(10) == images.url("p-64.png")
    assert picture.image.best_url(100) == images.url("p-64.png")
    assert picture.image.best_url() == images.url("p-64.png")
    assert picture.image.full() == images.url("p.png")
    doc = Optimized()
    assert doc.default.best_url() is None
    doc.default.save(upload(encode(quadrants(30, 30)), "d.png"))
    assert doc.default.best_url(500) == doc.default() == images.url("d.png")


def test_non_seekable_stream_upload(app):
    picture = Picture()
    picture.image.save(NonSeekable(encode(quadrants(300, 200))), "stream.png")
    assert stored_image(images, "stream.png").size == (150, 100)
    assert stored_image(images, "stream-original.png").size == (300, 200)


def test_embedded_document_image(app):
    gallery = Gallery(cover=Cover())
    gallery.cover.image.save(upload(encode(quadrants(64, 64)), "cover.png"))
    gallery.save()
    loaded = Gallery.objects.get(pk=gallery.pk)
    assert loaded.cover.image.thumbnail(32) == "cover-32.png"
    assert stored_image(images, "cover-32.png").size == (32, 32)
    loaded.cover.image.save(upload(encode(quadrants(64, 64)), "cover2.png"))
    loaded.save()
    assert Gallery.objects.get(pk=gallery.pk).cover.image.filename == "cover2.png"
    assert sorted(images.list_files()) == ["cover2-32.png", "cover2.png"]


# -- ImageField: validation --------------------------------------------------------------------------------


def test_invalid_images_store_nothing(app):
    picture = Picture()
    picture.image.save(upload(encode(quadrants(300, 200)), "good.png"))
    before = sorted(images.list_files())
    truncated = encode(quadrants(300, 200))[:-200]
    for data in (b"not an image at all", truncated, b""):
        with pytest.raises(fs.InvalidImage) as info:
            picture.image.save(upload(data, "bad.png"))
        assert isinstance(info.value, fs.ImageError) and info.value.__cause__ is not None
        assert sorted(images.list_files()) == before
        assert picture.image.filename == "good.png"
    with pytest.raises(fs.ImageError):
        picture.image.save(upload(encode(quadrants(300, 200)), "box.png"), bbox=(1000, 1000, 1100, 1100))
    with pytest.raises(fs.ImageError):
        picture.image.save(upload(encode(quadrants(300, 200)), "box.png"), bbox=(1, 2, 3))
    assert sorted(images.list_files()) == before


def test_pixel_limit_from_settings(make_fs_app):
    make_fs_app(IMAGES_FS_IMAGES_MAX_PIXELS=150 * 150)
    picture = Picture()
    with pytest.raises(fs.ImageTooLarge):
        picture.image.save(upload(encode(quadrants(300, 200)), "bomb.png"))
    assert list(images.list_files()) == []
    picture.image.save(upload(encode(quadrants(150, 150)), "fine.png"))
    assert picture.image.filename == "fine.png"


def test_pixel_limit_per_field(app):
    doc = Optimized()
    with pytest.raises(fs.ImageTooLarge):
        doc.limited.save(upload(encode(quadrants(101, 100)), "big.png"))
    assert list(images.list_files()) == []
    assert doc.limited.save(upload(encode(quadrants(100, 100)), "ok.png")) == "ok.png"


def test_byte_limit_is_checked_before_decoding(make_fs_app):
    make_fs_app(IMAGES_FS_MAX_SIZE=1000)
    with pytest.raises(fs.FileTooLarge):
        Picture().image.save(upload(os.urandom(2000), "huge.png"))
    assert list(images.list_files()) == []


# -- ImageField: replacing, deleting, failures -------------------------------------------------------------


def test_replacing_an_image_deletes_its_previous_files(app):
    picture = Picture()
    picture.image.save(upload(encode(quadrants(300, 200)), "first.png"))
    picture.save()
    picture.image.save(upload(encode(quadrants(300, 200)), "second.png"))
    picture.save()
    assert sorted(images.list_files()) == ["second-100.png", "second-32.png", "second-original.png", "second.png"]
    # the same name again: the document's own files are replaced
    picture.image.save(upload(encode(quadrants(200, 300)), "second.png"))
    assert stored_image(images, "second.png").size == (100, 150)
    assert len(list(images.list_files())) == 4
    assert Picture.objects.get(pk=picture.pk).image.filename == "second.png"


def test_failed_save_removes_what_it_stored_and_keeps_the_reference(app):
    picture = Picture()
    picture.image.save(upload(encode(quadrants(300, 200)), "keep.png"))
    images.write("clash-100.png", b"someone else's file")
    kept = sorted(images.list_files())

    with pytest.raises(fs.FileExists):  # the last rendition's name is taken
        picture.image.save(upload(encode(quadrants(300, 200)), "clash.png"))

    assert sorted(images.list_files()) == kept
    assert images.read("clash-100.png") == b"someone else's file"
    assert picture.image.filename == "keep.png"
    assert picture.image.thumbnail(100) == "keep-100.png"


def test_image_delete_removes_every_rendition(app):
    picture = Picture()
    picture.image.save(upload(encode(quadrants(300, 200)), "bye.png"))
    picture.save()
    picture.image.delete()
    assert not picture.image
    assert picture.image.best_url() is None
    assert list(images.list_files()) == []
    picture.save()
    assert "image" not in raw(Picture, picture)


def test_deleting_a_decorated_document_deletes_its_files(app):
    owned = Owned()
    owned.image.save(upload(encode(quadrants(300, 200)), "owned.png"))
    owned.attachment.save(io.BytesIO(b"x"), "owned.txt")
    owned.save()
    other = Owned()
    other.image.save(upload(encode(quadrants(300, 200)), "other.png"))
    other.save()

    owned.delete()
    assert sorted(images.list_files()) == ["other-32.png", "other-original.png", "other.png"]
    assert list(files.list_files()) == []

    Owned.objects.delete()  # queryset deletes go document by document
    assert list(images.list_files()) == []

    plain = Picture()  # not decorated: deleting the document leaves the files
    plain.image.save(upload(encode(quadrants(300, 200)), "plain.png"))
    plain.save()
    plain.delete()
    assert len(list(images.list_files())) == 4


def test_deleting_a_document_survives_a_storage_failure(app, monkeypatch, caplog):
    owned = Owned()
    owned.image.save(upload(encode(quadrants(60, 60)), "stuck.png"))
    owned.save()

    def broken(name):
        raise fs.BackendError("storage went away")

    monkeypatch.setattr(images.backend, "delete", broken)
    with caplog.at_level(logging.WARNING, logger="flask_fs.mongo"):
        owned.delete()
    assert Owned.objects.count() == 0
    assert "stuck.png" in caplog.text


# -- ImageField: rerender and optimization -----------------------------------------------------------------


@pytest.mark.parametrize("backend", ["local", "s3-moto"])
def test_rerender_applies_new_settings(app):
    source = encode(quadrants(300, 200))
    old = PlainPicture()
    old.image.save(upload(source, "r.png"))
    old.save()
    assert old.image.filename == old.image.original == "r.png"
    assert sorted(images.list_files()) == ["r-64.png", "r.png"]

    # a later release declares max_size=150 and thumbnails [100, 32]
    picture = Picture.objects.get(pk=old.pk)
    picture.image.rerender()
    picture.save()
    assert picture.image.filename == "r.png"
    assert picture.image.original == "r-original.png"
    assert sorted(images.list_files()) == ["r-100.png", "r-32.png", "r-original.png", "r.png"]
    assert images.read("r-original.png") == source
    assert stored_image(images, "r.png").size == (150, 100)
    assert stored_image(images, "r-32.png").size == (32, 32)
    assert Picture.objects.get(pk=old.pk).image.thumbnails == {"100": "r-100.png", "32": "r-32.png"}

    # and back: the displayed image is the original again, under the same name
    plain = PlainPicture.objects.get(pk=old.pk)
    plain.image.rerender()
    plain.save()
    assert plain.image.filename == plain.image.original == "r.png"
    assert sorted(images.list_files()) == ["r-64.png", "r.png"]
    assert images.read("r.png") == source


def test_rerender_keeps_the_bbox(app):
    picture = PlainPicture()
    picture.image.save(upload(encode(quadrants(300, 200)), "b.png"), bbox=(0, 0, 100, 100))
    picture.save()
    loaded = Picture.objects.get(pk=picture.pk)
    loaded.image.rerender()
    assert_quadrants(stored_image(images, "b-100.png"), RED, RED, RED, RED)
    with pytest.raises(fs.FSError):
        Picture().image.rerender()


def test_optimize_setting_and_field_override(make_fs_app):
    app = make_fs_app()
    source = encode(quadrants(120, 120), compress_level=0)  # a needlessly large PNG

    doc = Optimized()
    doc.image.save(upload(source, "opt.png"))  # optimize=True on the field
    assert doc.image.original == "opt-original.png"
    assert images.read("opt-original.png") == source
    assert len(images.read("opt.png")) < len(source) / 4
    assert stored_image(images, "opt.png").tobytes() == Image.open(io.BytesIO(source)).tobytes()

    doc.default.save(upload(source, "default.png"))  # FS_IMAGES_OPTIMIZE is off by default
    assert doc.default.filename == doc.default.original == "default.png"
    assert images.read("default.png") == source

    app.config["FS_IMAGES_OPTIMIZE"] = True
    doc.default.save(upload(source, "app.png"))
    assert doc.default.original == "app-original.png"
    assert len(images.read("app.png")) < len(source) / 4

    doc.unoptimized.save(upload(source, "never.png"))  # optimize=False wins over the app setting
    assert doc.unoptimized.filename == doc.unoptimized.original == "never.png"
    assert images.read("never.png") == source


# -- templates and declaration -----------------------------------------------------------------------------


def test_template_urls(app):
    picture = Picture()
    picture.image.save(upload(encode(quadrants(300, 200)), "tpl.png"))
    picture.save()
    loaded = Picture.objects.get(pk=picture.pk)
    with app.test_request_context():
        html = render_template_string("{{ doc.image.best_url(100) }} {{ doc.image(32) }} {{ doc.image }}", doc=loaded)
    assert html == "/images/tpl-100.png /images/tpl-32.png /images/tpl.png"
    with app.test_client() as client:
        response = client.get("/images/tpl-32.png")
        assert response.status_code == 200
        assert Image.open(io.BytesIO(response.data)).size == (32, 32)


def test_fields_need_a_storage_and_valid_sizes():
    with pytest.raises(fs.ConfigurationError):
        FileField()
    with pytest.raises(fs.ConfigurationError):
        ImageField(fs=images, thumbnails=[0])
    with pytest.raises(fs.ConfigurationError):
        ImageField(fs=images, max_size="big")
