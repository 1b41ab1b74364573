"""The gallery: a small app on flask_fs. Upload images (thumbnails, metadata, download, delete) and
other documents; its own CSS and JS are published to a storage too.

Run it with ``./scripts/demo.sh``. It needs nothing else installed: files go to the local disk
(``FS_ROOT``, default ``instance/fs``) and, without ``GALLERY_MONGO_URL``, the photo records live
in an in-memory MongoDB (mongomock). ``GALLERY_RECORDS=sql`` keeps them in SQL instead, through
:mod:`flask_fs.sqla` (``GALLERY_DATABASE_URL``, default a SQLite file in the instance folder).
Every ``FS_*`` / ``<NAME>_FS_*`` environment variable is read
as a setting, so ``FS_BACKEND=s3 FS_S3_ENDPOINT=...`` moves every storage to another backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import mongoengine
from bson import ObjectId
from bson.errors import InvalidId
from flask import Flask, abort, flash, redirect, render_template, request, url_for
from jinja2.filters import do_filesizeformat
from mongoengine import DateTimeField, Document, ObjectIdField, StringField
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Response

import flask_fs as fs
from flask_fs import sqla
from flask_fs.mongo import ImageField, delete_files_with_document
from flask_fs.static import StaticFiles
from flask_fs.static import publish as publish_static_files

MiB = 1024 * 1024
THUMBNAIL = 300  # px, the grid's thumbnails
DISPLAY = 1600  # px, the largest side of the image shown on a photo's page

images = fs.Storage("images", fs.IMAGES)
documents = fs.Storage("documents", fs.AllExcept(fs.SCRIPTS + fs.EXECUTABLES), rename=True)
assets = fs.Storage("assets", fs.ALL, overwrite=True)  # where the static files are published

#: What a visitor reads for each kind of bad input, the HTTP status it comes with, and whether the
#: error's own text helps (it names the type or the limit) or is noise (a decoder's complaint).
MESSAGES: list[tuple[type[Exception], int, str, bool]] = [
    (fs.UnauthorizedFileType, 415, "this type of file is not accepted here", True),
    (fs.ContentMismatch, 415, "this file is not what its name says", True),
    (fs.UploadIncomplete, 400, "this upload did not arrive whole; please send it again", False),
    (fs.UploadTokenUsed, 409, "this upload was already saved", False),
    (fs.UploadTokenExpired, 410, "this upload took too long; please send it again", False),
    (fs.UploadTokenInvalid, 403, "this upload is not valid here", False),
    (fs.FileTooLarge, 413, "this file is too large", True),
    (fs.ImageTooLarge, 413, "this image has too many pixels", False),
    (fs.ImageError, 422, "this file is not an image we can read, or it is damaged", False),
    (fs.FileNotFound, 404, "this file does not exist (any more)", False),
    (fs.InvalidFileName, 400, "this file name is not acceptable", False),
    (fs.FSError, 503, "the file storage failed; please try again later", False),
]


@delete_files_with_document
class Photo(Document):
    """An uploaded image: its files live in the ``images`` storage, in a folder named after its id."""

    meta = {"db_alias": "gallery", "collection": "photos", "ordering": ["-created"]}
    id = ObjectIdField(primary_key=True, default=ObjectId)
    title = StringField(required=True)
    created = DateTimeField(default=lambda: datetime.now(UTC))
    image = ImageField(fs=images, max_size=DISPLAY, thumbnails=[THUMBNAIL], upload_to=lambda photo: str(photo.id))


class SqlBase(DeclarativeBase):
    pass


class SqlPhoto(SqlBase):
    """The same record in SQL: the image column stores it at commit, deletes it on rollback, and
    deletes the files of a deleted row once the deletion is committed."""

    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    title: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))
    image = mapped_column(
        sqla.ImageField(images, max_size=DISPLAY, thumbnails=[THUMBNAIL], upload_to=lambda photo: photo.key),
        nullable=True,
    )


class MongoRecords:
    """Photo records in MongoDB (mongoengine): the files are saved first, then the document."""

    def all(self) -> Iterable[Photo]:
        return Photo.objects

    def get(self, photo_id: str) -> Photo | None:
        try:
            return Photo.objects.get(id=ObjectId(photo_id))
        except (InvalidId, Photo.DoesNotExist):
            return None

    def add(self, upload: FileStorage) -> str:
        photo = Photo(title=upload.filename or "untitled")
        photo.image.save(upload)
        try:
            photo.save()
        except Exception:
            photo.image.delete()
            raise
        return photo.title

    def delete(self, photo: Photo) -> None:
        photo.delete()  # delete_files_with_document removes its files from the storage

    def close(self) -> None:
        pass


class SqlRecords:
    """Photo records in SQL (flask_fs.sqla): one transaction per change, the files follow it."""

    def __init__(self, url: str) -> None:
        engine = create_engine(url)
        SqlBase.metadata.create_all(engine)
        self.session = scoped_session(sessionmaker(engine))

    def all(self) -> Iterable[SqlPhoto]:
        return self.session.scalars(select(SqlPhoto).order_by(SqlPhoto.created.desc())).all()

    def get(self, photo_id: str) -> SqlPhoto | None:
        return self.session.get(SqlPhoto, int(photo_id)) if photo_id.isdigit() else None

    def add(self, upload: FileStorage) -> str:
        photo = SqlPhoto(title=upload.filename or "untitled", key=uuid.uuid4().hex)
        photo.image = upload  # checked now, stored at commit
        self.session.add(photo)
        try:
            self.session.commit()
        except Exception:
            self.session.rollback()  # deletes whatever the commit had stored
            raise
        return photo.title

    def delete(self, photo: SqlPhoto) -> None:
        self.session.delete(photo)
        self.session.commit()  # then its files are deleted

    def close(self) -> None:
        self.session.remove()


def explain(error: Exception) -> tuple[int, str]:
    """The status and the friendly message for an error raised while handling a file."""
    for error_type, status, message, detailed in MESSAGES:
        if isinstance(error, error_type):
            return status, f"{message} ({error})" if detailed else message
    return 500, "something went wrong"


def connect_records(app: Flask) -> None:
    """Connect the ``gallery`` mongoengine alias: to ``MONGO_URL``, else to a fresh in-memory store."""
    mongoengine.disconnect(alias="gallery")
    if app.config.get("MONGO_URL"):
        mongoengine.connect(alias="gallery", host=app.config["MONGO_URL"], uuidRepresentation="standard")
    else:
        import mongomock

        mongoengine.connect(
            "gallery", alias="gallery", mongo_client_class=mongomock.MongoClient, uuidRepresentation="standard"
        )


def publish_static(app: Flask) -> None:
    """Publish the app's CSS and JS to the ``assets`` storage (only what changed since the last
    run) and make ``url_for('static', ...)`` in templates give the published copies' URLs."""
    StaticFiles(app, storage=assets)
    result = publish_static_files(app)
    app.logger.info("static files: %s", result.summary())


def attachment(response: Response, name: str) -> Response:
    """Make a served file a download named ``name`` (non-ASCII names per RFC 6266)."""
    try:
        name.encode("ascii")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    except UnicodeEncodeError:
        response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return response


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The gallery app. ``config`` wins over the environment, which wins over the defaults below."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="demo-only: set GALLERY_SECRET_KEY",
        FS_SERVE=True,
        FS_STATIC_DEBUG=True,  # published URLs under `flask run --debug` too: that's what the demo shows
        FS_PREFIX="/fs",  # stored files are served under /fs/<storage>/... unless a storage has a URL
        MAX_CONTENT_LENGTH=64 * MiB,  # a whole request, several files
        IMAGES_FS_MAX_SIZE=16 * MiB,  # one image
        DOCUMENTS_FS_MAX_SIZE=2048 * MiB,  # large documents go straight to the storage (form uploads: 64 MiB)
        MONGO_URL=None,
        RECORDS="mongo",  # or "sql"
        DATABASE_URL=None,  # for RECORDS="sql"; default: a SQLite file in the instance folder
    )
    app.config.from_prefixed_env(prefix="GALLERY")  # GALLERY_MONGO_URL, GALLERY_SECRET_KEY, ...
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("FS_") or "_FS_" in k})
    app.config.update(config or {})
    fs.init_app(app, images, documents, assets)
    if app.config["RECORDS"] == "sql":
        os.makedirs(app.instance_path, exist_ok=True)
        records: MongoRecords | SqlRecords = SqlRecords(
            app.config["DATABASE_URL"] or f"sqlite:///{os.path.join(app.instance_path, 'gallery.db')}"
        )
    else:
        connect_records(app)
        records = MongoRecords()
    app.extensions["gallery_records"] = records
    app.teardown_appcontext(lambda error: records.close())
    publish_static(app)

    @app.context_processor
    def about() -> dict[str, Any]:
        return {
            "backend": images.config.backend,
            "in_memory": app.config["RECORDS"] != "sql" and not app.config.get("MONGO_URL"),
            "assets_backend": assets.config.backend,
        }

    @app.get("/")
    def index() -> str:
        listing = [documents.metadata(name) | {"name": name} for name in sorted(documents.list_files())]
        forbidden = ", ".join(f".{ext}" for ext in sorted(documents.extensions.items))
        return render_template(
            "index.html", photos=records.all(), documents=listing, thumbnail=THUMBNAIL, forbidden=forbidden
        )

    @app.post("/photos")
    def upload_photos() -> Any:
        return save_uploads(request.files.getlist("images"), records.add)

    @app.post("/documents")
    def upload_documents() -> Any:
        return save_uploads(request.files.getlist("documents"), documents.save)

    # Direct uploads: the browser asks for a token, sends the bytes to the storage itself (or to
    # flask_fs's upload endpoint), then posts the tokens here; finalize checks and names each file.
    direct = {"photos": images, "documents": documents}

    @app.post("/uploads/presign/<kind>")
    def presign(kind: str) -> Any:
        storage = direct.get(kind) or abort(404)
        asked = request.get_json(silent=True) or {}
        size = asked.get("size")
        try:
            return storage.presign_upload(str(asked.get("name") or ""), size=size if isinstance(size, int) else None)
        except fs.FSError as error:
            status, message = explain(error)
            return {"error": message}, status

    @app.post("/photos/direct")
    def finalize_photos() -> Any:
        return finalize_uploads(request.form.getlist("tokens"), adopt_photo)

    @app.post("/documents/direct")
    def finalize_documents() -> Any:
        return finalize_uploads(request.form.getlist("tokens"), documents.finalize)

    def adopt_photo(token: str) -> str:
        """A finalized image becomes a photo record: its renditions are made from the stored file."""
        name = images.finalize(token)
        try:
            with images.open(name, "rb") as stored:
                return records.add(FileStorage(stored, filename=os.path.basename(name)))
        finally:
            images.delete(name)

    def finalize_uploads(tokens: list[str], finalize: Callable[[str], str]) -> Any:
        return save_all(tokens, finalize, lambda token: "")

    def save_uploads(uploads: list[FileStorage], save: Callable[[FileStorage], str]) -> Any:
        return save_all([upload for upload in uploads if upload.filename], save, lambda upload: upload.filename)

    def save_all(items: list[Any], save: Callable[[Any], str], name_of: Callable[[Any], str]) -> Any:
        """Save each item; on any failure show the page with the messages and the worst status."""
        if not items:
            return show_index("Choose at least one file first.", 400)
        statuses = []
        for item in items:
            try:
                flash(f"Saved {save(item)}.", "ok")
            except fs.FSError as error:
                status, message = explain(error)
                name = name_of(item)
                app.logger.info("upload %s refused: %s", name or "(direct)", error)
                flash(f"{name}: {message}." if name else f"{message[0].upper() + message[1:]}.", "error")
                statuses.append(status)
        if statuses:
            return show_index(None, max(statuses))
        return redirect(url_for("index"), 303)

    def show_index(message: str | None, status: int) -> tuple[str, int]:
        if message:
            flash(message, "error")
        return index(), status

    def find_photo(photo_id: str) -> Photo | SqlPhoto:
        found = records.get(photo_id)
        if found is None:
            abort(404)
        return found

    @app.get("/photos/<photo_id>")
    def photo(photo_id: str) -> str:
        found = find_photo(photo_id)
        image = found.image
        pairs = [("original", image.original), ("displayed", image.filename)]
        pairs += [(f"{size} px thumbnail", name) for size, name in image.thumbnails.items()]
        roles: dict[str, list[str]] = {}  # stored name: what it is (an upload shown as it is is both)
        for role, name in pairs:
            roles.setdefault(name, []).append(role)
        files = [(", ".join(what), images.metadata(name)) for name, what in roles.items()]
        return render_template("photo.html", photo=found, files=files)

    @app.get("/photos/<photo_id>/download")
    def download_photo(photo_id: str) -> Response:
        found = find_photo(photo_id)
        return attachment(images.serve(found.image.original), os.path.basename(found.image.original))

    @app.post("/photos/<photo_id>/delete")
    def delete_photo(photo_id: str) -> Response:
        found = find_photo(photo_id)
        records.delete(found)
        flash(f"Deleted {found.title}.", "ok")
        return redirect(url_for("index"), 303)

    @app.get("/documents/<path:name>")
    def download_document(name: str) -> Response:
        return attachment(documents.serve(name), os.path.basename(name))

    @app.post("/documents/<path:name>/delete")
    def delete_document(name: str) -> Response:
        documents.delete(name)
        flash(f"Deleted {name}.", "ok")
        return redirect(url_for("index"), 303)

    @app.errorhandler(fs.FSError)
    def storage_error(error: fs.FSError) -> tuple[str, int]:
        status, message = explain(error)
        app.logger.warning("storage error: %s", error, exc_info=error if status >= 500 else None)
        return render_template("error.html", title=message[0].upper() + message[1:], detail=None), status

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
        limit = do_filesizeformat(app.config["MAX_CONTENT_LENGTH"], binary=True)
        detail = f"An upload may send at most {limit} at once: send fewer or smaller files."
        return render_template("error.html", title="These files are too large", detail=detail), 413

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        return render_template("error.html", title=error.name, detail=error.description), error.code or 500

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        detail = "The error was logged. Please try again later."
        return render_template("error.html", title="Something went wrong", detail=detail), 500

    return app


def __getattr__(name: str) -> Flask:
    """``app``, made on first use (``flask --app examples.gallery.app run``) rather than on import,
    so that importing this module (tests) neither connects to MongoDB nor publishes anything."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()["app"] = made = create_app()
    return made
