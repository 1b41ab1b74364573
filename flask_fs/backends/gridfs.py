"""Files in MongoDB GridFS: one bucket (``<bucket>.files`` and ``<bucket>.chunks``) per storage.

Settings: ``mongo_url`` (required), ``mongo_db`` (default: the database named in the URL),
``bucket`` (default: the storage name) and ``server_selection_timeout_ms`` (default 5000, so a dead
server fails fast with :class:`~flask_fs.errors.BackendError`).

How it stays consistent with plain GridFS tools:

- GridFS inserts a file's document only after all its chunks are written, so readers never see a
  partial file; a failed upload is aborted (its chunks are deleted). The file document's
  ``metadata`` holds ``contentType`` and the ``sha256`` computed while streaming.
- A name may have several revisions; readers take the newest (by ``uploadDate``), as GridFS does.
  Saving with ``overwrite`` adds a revision, then deletes the older ones.
- ``overwrite=False`` is race-free: such saves mark their document ``metadata.fs_exclusive`` and a
  partial unique index on ``filename`` (over marked documents only) lets the server refuse a second
  marked document for a name, atomically. A marked save that then finds any other revision of the
  name (saved with overwrite, or by another tool) lost the race: it deletes its own document and
  raises FileExists. Of concurrent exclusive saves of a name, exactly one wins. (Such a loser's
  complete file can be the newest revision for the moment between its insert and its removal.)
- ``move`` renames the file document on the server, with the same rules; the moved file's
  ``modified`` date becomes the time of the move.
- Memory: pymongo's GridIn batches up to 48 MB of chunks per insert, for any upload (raw or not).
  A reader in the middle of a file that is overwritten or deleted gets an error, not mixed content.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO
from urllib.parse import unquote, urlsplit

import gridfs
import gridfs.errors
import pymongo
import pymongo.errors

from ..config import STORAGE_NAME, Setting
from ..errors import BackendError, ConfigurationError, FileExists, FSError
from ..serving import ServedFile
from . import CHUNK_SIZE, BaseBackend, file_not_found

#: The mark of documents saved with ``overwrite=False``, and the unique index that uses it.
EXCLUSIVE = "metadata.fs_exclusive"
EXCLUSIVE_INDEX = "filename_fs_exclusive"


def _database_in_url(url: str) -> str:
    """The database named in a ``mongodb://host/db`` URL, or ``''``."""
    return unquote(urlsplit(url).path.lstrip("/"))


class GridFsBackend(BaseBackend):
    """A GridFS storage, one bucket per storage name (see the module documentation)."""

    settings = (
        Setting("mongo_url", str, required=True, doc="MongoDB connection URL, e.g. ``mongodb://db.example.com/site`` "
                "(a password in it is masked by ``flask fs storages``)."),
        Setting("mongo_db", str, shown_default="the URL's database",
                doc="Database holding the bucket; one of the two must name it."),
        Setting("bucket", str, STORAGE_NAME,
                doc="GridFS bucket: collections ``<bucket>.files`` and ``<bucket>.chunks``."),
        Setting("server_selection_timeout_ms", int, 5000, doc="How long to wait for a reachable server, in "
                "milliseconds, before raising :class:`~flask_fs.errors.BackendError`."),
    )  # fmt: skip

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        config = self.config
        self.database_name = config.get("mongo_db") or _database_in_url(config["mongo_url"])
        if not self.database_name:
            raise ConfigurationError(
                f"storage {name!r} (gridfs): set {config.name_of('mongo_db')} or name a database in "
                f"{config.name_of('mongo_url')}"
            )
        self.bucket_name = config["bucket"]
        self._lock = threading.Lock()
        self._client: Any = None
        self._bucket: gridfs.GridFSBucket | None = None
        self._exclusive_index = False
        self._indexes_checked = False

    # -- connection -----------------------------------------------------------------------------

    @property
    def client(self) -> pymongo.MongoClient:
        """This backend's MongoDB client, created on first use (one per backend; it is thread-safe)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:  # looked up at call time, so tests can substitute mongomock
                        self._client = pymongo.MongoClient(
                            self.config["mongo_url"],
                            serverSelectionTimeoutMS=int(self.config["server_selection_timeout_ms"]),
                            appname="flask-fs",
                        )
                    except pymongo.errors.ConfigurationError as exc:
                        where = self.config.name_of("mongo_url")
                        raise ConfigurationError(f"storage {self.name!r}: invalid {where} ({exc})") from exc
        return self._client

    @property
    def database(self) -> Any:
        """The database holding this storage's bucket."""
        return self.client[self.database_name]

    @property
    def bucket(self) -> gridfs.GridFSBucket:
        """The GridFS bucket of this storage."""
        if self._bucket is None:
            self._bucket = gridfs.GridFSBucket(self.database, bucket_name=self.bucket_name)
        return self._bucket

    #: Flask-FS's name for :attr:`database`.
    db = database

    @property
    def fs(self) -> gridfs.GridFS:
        """The bucket through pymongo's legacy ``GridFS`` API (Flask-FS's attribute)."""
        return gridfs.GridFS(self.database, self.bucket_name)

    @property
    def files(self) -> Any:
        """The bucket's ``files`` collection (one document per stored revision)."""
        return self.database[f"{self.bucket_name}.files"]

    @property
    def chunks(self) -> Any:
        return self.database[f"{self.bucket_name}.chunks"]

    def translate_error(self, exc: Exception, filename: str | None) -> FSError | None:
        """MongoDB failures (server down, timeout, refused credentials, a file deleted while read...)
        are BackendErrors."""
        if isinstance(exc, pymongo.errors.PyMongoError):
            return BackendError(f"GridFS storage {self.name!r}: {exc}")
        return None

    def close(self) -> None:
        """Close the MongoDB client (its connection pools and monitoring threads)."""
        with self._lock:
            client, self._client, self._bucket = self._client, None, None
        if client is not None:
            client.close()

    # -- reading --------------------------------------------------------------------------------

    def _newest(self, filename: str) -> dict[str, Any]:
        """The file document of the newest revision of ``filename``; FileNotFound if none."""
        doc = self.files.find_one({"filename": filename}, sort=[("uploadDate", -1), ("_id", -1)])
        if doc is None:
            raise file_not_found(filename)
        return doc

    def _stream(self, doc: dict[str, Any]) -> gridfs.GridOut:
        """A GridOut of the revision; its ``content_type`` is the stored type, wherever it was stored."""
        doc.setdefault("contentType", (doc.get("metadata") or {}).get("contentType"))
        return gridfs.GridOut(self.database[self.bucket_name], file_document=doc)

    def exists(self, filename: str) -> bool:
        return self.files.find_one({"filename": filename}, {"_id": 1}) is not None

    def open_read(self, filename: str) -> BinaryIO:
        """A seekable GridOut streaming the newest revision."""
        return self._stream(self._newest(filename))  # type: ignore[return-value]

    def metadata(self, filename: str) -> dict[str, Any]:
        return self._metadata(self._newest(filename))

    def _metadata(self, doc: dict[str, Any], checksum: bool = True) -> dict[str, Any]:
        """The metadata of a revision; ``checksum`` false leaves out the checksum."""
        meta = doc.get("metadata") or {}
        modified = doc["uploadDate"]
        result = {
            "size": int(doc["length"]),
            "mime": meta.get("contentType") or doc.get("contentType") or self.guess_type(doc["filename"]),
            "modified": modified if modified.tzinfo else modified.replace(tzinfo=UTC),
        }
        if not checksum:
            return result
        if meta.get("sha256"):
            result["checksum"] = f"sha256:{meta['sha256']}"
        elif doc.get("md5"):  # stored by Flask-FS (pymongo 3 stored the MD5): the checksum it reported
            result["checksum"] = f"md5:{doc['md5']}"
        else:  # stored by another tool: compute the MD5, as Flask-FS reported it
            md5 = hashlib.md5(usedforsecurity=False)
            with self._stream(doc) as f:
                while chunk := f.read(CHUNK_SIZE):
                    md5.update(chunk)
            result["checksum"] = f"md5:{md5.hexdigest()}"
        return result

    def open_served(self, filename: str) -> ServedFile:
        """The newest revision and its own metadata (one lookup, so both always match). A revision
        never changes, so its id is the ETag of files stored without our checksum."""
        doc = self._newest(filename)
        meta = self._metadata(doc, checksum=False)
        etag = (doc.get("metadata") or {}).get("sha256") or str(doc["_id"])
        return ServedFile(self._stream(doc), meta["size"], meta["mime"], etag, meta["modified"])  # type: ignore[arg-type]

    def list_files(self) -> Iterator[str]:
        """Each stored name once, in name order, streamed from the bucket's filename index."""
        previous = None
        for doc in self.files.find({}, {"filename": 1, "_id": 0}).sort("filename", 1):
            if doc.get("filename") != previous:
                previous = doc.get("filename")
                yield previous

    # -- writing --------------------------------------------------------------------------------

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Upload a new revision; of ``headers``, only Content-Type is kept (as the stored type)."""
        mime = next((v for k, v in (headers or {}).items() if k.lower() == "content-type"), None)
        mime = mime or getattr(file_or_wfs, "content_type", None)  # a FileStorage's, as Flask-FS kept it
        if not overwrite:
            self._ensure_exclusive_index()
        file_id = self._upload(file_or_wfs, filename, mime or self.guess_type(filename), exclusive=not overwrite)
        if overwrite:
            self._delete_older(filename, file_id)
        elif self._has_other_revision(filename, file_id):  # lost to a file saved with overwrite
            self._delete_ids([file_id])
            raise FileExists(f"{filename!r} exists")

    def _upload(self, source: IO[bytes], filename: str, mime: str, exclusive: bool) -> Any:
        """Stream ``source`` into a new revision of ``filename``; return its id. Aborted on any error."""
        digest = hashlib.sha256()
        grid_in = self.bucket.open_upload_stream(filename)
        if self._indexes_checked and "_ensured_index" in vars(grid_in):
            # pymongo checks the bucket's indexes (two queries) for every upload stream; check them
            # once per bucket instead, as the GridFS spec allows (the first upload here did it).
            object.__setattr__(grid_in, "_ensured_index", True)
        try:
            while chunk := source.read(CHUNK_SIZE):
                digest.update(chunk)
                grid_in.write(chunk)
            metadata: dict[str, Any] = {"contentType": mime, "sha256": digest.hexdigest()}
            if exclusive:
                metadata["fs_exclusive"] = True
            grid_in.metadata = metadata  # stored in the file document, written by close()
            grid_in.close()
            self._indexes_checked = True
        except BaseException as exc:
            with contextlib.suppress(pymongo.errors.PyMongoError):  # keep the first error
                grid_in.abort()
            if isinstance(exc, gridfs.errors.FileExists):  # the unique index refused a 2nd exclusive one
                raise FileExists(f"{filename!r} exists") from None
            raise
        return grid_in._id

    def _ensure_exclusive_index(self) -> None:
        """Create (once per backend) the unique index that lets one exclusive document hold a name."""
        if not self._exclusive_index:
            self.files.create_index(
                [("filename", 1)], name=EXCLUSIVE_INDEX, unique=True, partialFilterExpression={EXCLUSIVE: True}
            )
            self._exclusive_index = True

    def _has_other_revision(self, filename: str, file_id: Any) -> bool:
        return self.files.find_one({"filename": filename, "_id": {"$ne": file_id}}, {"_id": 1}) is not None

    def _delete_older(self, filename: str, file_id: Any) -> None:
        """Delete the revisions of ``filename`` older than ``file_id`` (of concurrent overwrites, the newest stays)."""
        revisions = [
            (doc["uploadDate"], doc["_id"]) for doc in self.files.find({"filename": filename}, {"uploadDate": 1})
        ]
        mine = next((key for key in revisions if key[1] == file_id), None)
        if mine is not None:
            self._delete_ids([key[1] for key in revisions if key < mine])

    def _delete_ids(self, ids: list[Any]) -> None:
        """Delete file documents first (readers stop finding them), then their chunks."""
        if ids:
            self.files.delete_many({"_id": {"$in": ids}})
            self.chunks.delete_many({"files_id": {"$in": ids}})

    def delete(self, filename: str) -> None:
        """Delete every revision of ``filename``; without one, those of the files below ``filename/``."""
        ids = [doc["_id"] for doc in self.files.find({"filename": filename}, {"_id": 1})]
        if not ids:  # no such file: a folder, as Flask-FS deleted them
            below = {"filename": {"$regex": "^" + re.escape(filename + "/")}}
            ids = [doc["_id"] for doc in self.files.find(below, {"_id": 1})]
        self._delete_ids(ids)

    def move(self, source: str, target: str, overwrite: bool = False) -> None:
        """Rename the newest revision of ``source`` on the server (no copy), then drop the others."""
        doc = self._newest(source)
        if source == target:
            if overwrite:
                return
            raise FileExists(f"{target!r} exists")
        moved = {"filename": target, "uploadDate": datetime.now(UTC)}
        if overwrite:
            renamed = self.files.update_one({"_id": doc["_id"]}, {"$set": moved, "$unset": {EXCLUSIVE: ""}})
        else:
            self._ensure_exclusive_index()
            try:
                renamed = self.files.update_one({"_id": doc["_id"]}, {"$set": {**moved, EXCLUSIVE: True}})
            except pymongo.errors.DuplicateKeyError:
                raise FileExists(f"{target!r} exists") from None
        if not renamed.matched_count:  # deleted meanwhile
            raise file_not_found(source)
        if overwrite:
            self._delete_older(target, doc["_id"])
        elif self._has_other_revision(target, doc["_id"]):
            self.files.replace_one({"_id": doc["_id"]}, doc)  # lost the race: put it back as it was
            raise FileExists(f"{target!r} exists")
        self._delete_ids([d["_id"] for d in self.files.find({"filename": source}, {"_id": 1})])  # older revisions

    def check(self) -> None:
        """Ping the server, then read the bucket (ping needs no credentials, reading does)."""
        self.client.admin.command("ping")
        self.files.find_one({}, {"_id": 1})
