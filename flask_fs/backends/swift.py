"""Files in an OpenStack Swift container, through python-swiftclient.

* **Container**: setting ``container`` (default: the storage name). A storage's first write creates it
  (reads of a missing container answer FileNotFound, listings are empty); a backend built directly,
  as Flask-FS's code does, creates it at once (a warning is logged if the server cannot be reached).
* **Uploads stream.** A rewindable stream up to ``segment_size`` bytes is one PUT. A larger one, or
  a one-way stream (pipe, request body) past 1 MiB, goes up segment by segment into
  ``<container>_segments`` and becomes a Static Large Object whose manifest is written last, so a
  failed upload never leaves an object under its real name (its segments are deleted if the server
  is reachable). Keep ``segment_size`` within the cluster's object size limit (5 GiB by default).
* **Checksums**: every object carries its SHA-256 as ``X-Object-Meta-Sha256``. A small file is hashed
  before its PUT; a larger one is hashed while it is sent, and its checksum set by a POST right after
  (Swift updates metadata without copying data), together with the ETag it was computed for
  (``X-Object-Meta-Sha256-Etag``): a checksum whose ETag no longer matches, because another writer
  replaced the object in between, is not reported. An SLO's checksum goes with its manifest, written last.
* **overwrite=False**: saves send ``If-None-Match: *``, which Swift checks as the upload starts (an
  SLO's manifest, written last, is checked at the end). Swift would apply that header to the source
  of a server-side copy too, so copy and move check the target with a HEAD first.
* **Connections**: ``swiftclient.Connection`` is not thread-safe: each thread has its own, sharing
  the token. Dropped connections are retried ``retries`` times and an expired token (401) is renewed.
* **Auth**: v1 (``authurl``, ``user``, ``key``) or Keystone (``auth_version`` 2/3 with
  ``project_name``, ``user_domain_name``, ``project_domain_name``, ``region_name``..., which needs
  python-keystoneclient). ``tempurl_key`` (the account's Temp-URL key) enables ``signed_url``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import importlib.util
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from email.utils import parsedate_to_datetime
from typing import IO, Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests
import swiftclient
import urllib3
from swiftclient.exceptions import ClientException
from swiftclient.utils import generate_temp_url

from ..config import STORAGE_NAME, URL, GiB, MiB, Setting, Size
from ..errors import BackendError, ConfigurationError, FileExists, FileNotFound, FSError, OperationNotSupported
from ..serving import ServedFile
from . import CHUNK_SIZE, BaseBackend, RangedReader, deferred_setup, file_not_found

log = logging.getLogger(__name__)

#: Keystone settings handed to swiftclient as ``os_options`` under the same names.
KEYSTONE_OPTIONS = (
    "tenant_name", "tenant_id", "project_name", "project_id", "user_domain_name", "user_domain_id",
    "project_domain_name", "project_domain_id", "region_name", "endpoint_type", "service_type",
)  # fmt: skip
#: A one-way stream up to this size is buffered and sent as one object; a longer one becomes an SLO.
PEEK_SIZE = CHUNK_SIZE
#: Rewindable uploads up to this size are hashed before their PUT (one request); larger ones are hashed
#: as they are sent, and their checksum set by a POST (no second pass over the data).
HASH_FIRST_SIZE = 8 * MiB
#: Headers Swift keeps with an object and sends back with it (its object server's default list).
SERVED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
_NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


class SwiftBackend(BaseBackend):
    """An OpenStack Swift storage. Settings: ``authurl``, ``user``, ``key`` (required), ``container``,
    ``auth_version`` and the Keystone options, ``tempurl_key``, ``segment_size``, ``retries``,
    ``starting_backoff``, ``max_backoff``, ``timeout`` (seconds)."""

    keeps_headers = True
    settings = (
        Setting("authurl", URL, required=True, doc="Authentication URL, with its scheme."),
        Setting("user", str, required=True, doc="User (``account:user`` with v1 auth)."),
        Setting("key", str, secret=True, required=True, doc="Key or password."),
        Setting("auth_version", str, "1", choices=("1", "1.0", "2", "2.0", "3", "3.0"),
                doc='``"2"`` or ``"3"`` for Keystone (needs ``python-keystoneclient``).'),
        *(Setting(option, str, doc="Keystone option, handed to python-swiftclient as it is.")
          for option in KEYSTONE_OPTIONS),
        Setting("container", str, STORAGE_NAME,
                doc="Container holding the files; large objects' segments go to ``<container>_segments``."),
        Setting("tempurl_key", str, secret=True,
                doc="The account's Temp-URL key; needed by :meth:`~flask_fs.Storage.signed_url`."),
        Setting("segment_size", Size, GiB, doc="Larger uploads become Static Large Objects made of segments of "
                "this size (keep it under the cluster's object size limit, 5 GiB by default)."),
        Setting("retries", int, 2, doc="Retries of a failed request."),
        Setting("starting_backoff", float, 0.25, doc="Wait before the first retry, in seconds (it doubles)."),
        Setting("max_backoff", float, 4, doc="Longest wait between retries, in seconds."),
        Setting("timeout", float, 30, doc="Socket timeout, in seconds."),
    )  # fmt: skip
    #: Names per container listing request.
    page_size = 10_000

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.container: str = self.config["container"]
        self.segments = f"{self.container}_segments"
        self.segment_size: int = self.config["segment_size"]
        if self.config["auth_version"][0] in "23" and not importlib.util.find_spec("keystoneclient"):
            raise ConfigurationError(
                f"{self.config.name_of('auth_version')} = {self.config['auth_version']!r} (Keystone) needs: "
                "pip install python-keystoneclient"
            )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[swiftclient.Connection] = []  # every thread's, for close()
        self._auth: tuple[str | None, str | None] = (None, None)  # storage URL and token, shared by threads
        self._ready: set[str] = set()  # containers this process created or found
        if deferred_setup.get():  # a storage's backend: the first write creates the container
            return
        try:  # built directly, as Flask-FS: the container exists once the backend is built
            self._ensure(self.container)
        except FSError as exc:  # server down, refused credentials...: the first write retries, reads report it
            log.warning("swift container %r could not be checked or created yet: %s", self.container, exc)

    # -- connections and errors ------------------------------------------------------------------

    @property
    def conn(self) -> swiftclient.Connection:
        """This thread's connection (Flask-FS's attribute name)."""
        return self.connection()

    def connection(self) -> swiftclient.Connection:
        """This thread's connection (swiftclient's are not thread-safe), starting with the shared token."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = swiftclient.Connection(**connection_options(self.config))
            conn.url, conn.token = self._auth
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection; threads open new ones on their next request."""
        with self._lock:
            connections, self._connections, self._local = self._connections, [], threading.local()
        for conn in connections:
            with suppress(Exception):  # a connection in use by its thread may already be broken
                conn.close()

    def _call(self, method: str, *args: Any, missing: str | None = None, **kwargs: Any) -> Any:
        """Call ``Connection.<method>``; a 404 is FileNotFound(``missing``), other failures BackendError."""
        conn = self.connection()
        try:
            return getattr(conn, method)(*args, **kwargs)
        except FSError:
            raise
        except Exception as exc:
            error = self.translate_error(exc, missing)
            if error is None:
                raise
            raise error from exc
        finally:
            if conn.token:
                self._auth = (conn.url, conn.token)

    def translate_error(self, exc: Exception, filename: str | None) -> FSError | None:
        """A 404 is FileNotFound (for ``filename``), refused credentials, other answers and network
        failures are BackendErrors."""
        if isinstance(exc, ClientException):
            if exc.http_status == 404 and filename is not None:
                return file_not_found(filename)
            if exc.http_status in (401, 403):
                user, url = self.config["user"], self.config["authurl"]
                return BackendError(f"swift authentication failed for user {user!r} at {url}: {exc.msg}")
            return BackendError(f"swift request failed: {exc}")
        if isinstance(exc, _NETWORK_ERRORS):
            return BackendError(f"swift server at {self.config['authurl']} is unreachable: {exc}")
        return None

    def _ensure(self, container: str) -> None:
        """Create ``container`` if needed, before this process's first write to it."""
        if container not in self._ready:
            try:
                self._call("head_container", container, missing=container)
            except FileNotFound:
                self._call("put_container", container)
            self._ready.add(container)

    def _head(self, filename: str) -> dict[str, str]:
        return self._call("head_object", self.container, filename, missing=filename)

    # -- reading ---------------------------------------------------------------------------------

    def exists(self, filename: str) -> bool:
        try:
            self._head(filename)
            return True
        except FileNotFound:
            return False

    def _get(
        self, filename: str, start: int = 0, end: int | None = None, etag: str | None = None
    ) -> tuple[dict[str, str], Any]:
        """GET the object, or bytes ``start`` to ``end`` (exclusive) of it, of the version ``etag`` if given."""
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if etag:
            headers["If-Match"] = etag
        kwargs = {"resp_chunk_size": CHUNK_SIZE, "headers": headers or None, "missing": filename}
        return self._call("get_object", self.container, filename, **kwargs)

    def _reader(self, filename: str, start: int = 0, end: int | None = None) -> tuple[RangedReader, dict[str, str]]:
        """Bytes ``start`` to ``end`` of the object as a seekable file, and its headers."""
        headers, body = self._get(filename, start, end)
        etag = headers.get("etag")

        def reopen(position: int) -> Any:  # the same version of the object, from ``position``
            return self._get(filename, start + position, end, etag)[1]

        return RangedReader(int(headers["content-length"]), reopen, body), headers

    def _open(self, filename: str) -> tuple[BinaryIO, dict[str, str]]:
        reader, headers = self._reader(filename)
        return io.BufferedReader(reader, CHUNK_SIZE), headers

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Stream bytes ``start`` to ``end`` with one ranged GET, straight from the response (no buffer copy)."""
        if end is not None and end <= start:
            self._head(filename)  # FileNotFound all the same
            return
        try:
            reader, _ = self._reader(filename, start, end)
        except BackendError as exc:
            if getattr(exc.__cause__, "http_status", None) == 416:  # starts past the end: nothing to send
                return
            raise
        yield from reader.chunks(chunk_size)

    def open_read(self, filename: str) -> BinaryIO:
        return self._open(filename)[0]

    def read(self, filename: str) -> bytes:
        return self._call("get_object", self.container, filename, missing=filename)[1]

    def metadata(self, filename: str) -> dict[str, Any]:
        return self._meta(self._head(filename))

    @staticmethod
    def _meta(headers: dict[str, str]) -> dict[str, Any]:
        """Metadata from object headers: our SHA-256, else the ETag, which is an MD5 except for large objects."""
        checksum, bound = None, headers.get("x-object-meta-sha256-etag")
        if headers.get("x-object-meta-sha256") and bound in (None, headers.get("etag", "").strip('"')):
            checksum = f"sha256:{headers['x-object-meta-sha256']}"
        elif not _is_slo(headers) and "x-object-manifest" not in headers:
            checksum = f"md5:{headers['etag'].strip(chr(34))}"
        return {
            "checksum": checksum,
            "size": int(headers["content-length"]),
            "mime": headers.get("content-type", "application/octet-stream").split(";")[0],
            "modified": parsedate_to_datetime(headers["last-modified"]),
        }

    def list_files(self) -> Iterator[str]:
        return self._names()

    def _names(self, prefix: str = "") -> Iterator[str]:
        marker = ""
        while True:
            try:
                kwargs = {"marker": marker, "limit": self.page_size, "missing": self.container, "prefix": prefix}
                _, page = self._call("get_container", self.container, **kwargs)
            except FileNotFound:
                return  # no container yet: nothing stored
            if not page:
                return
            for item in page:
                yield item["name"]
            marker = page[-1]["name"]

    def open_served(self, filename: str) -> ServedFile:
        """The stream and its metadata from a single GET (a large object without our checksum has
        its manifest's ETag as validator)."""
        stream, headers = self._open(filename)
        meta = self._meta(headers)
        etag = meta["checksum"].split(":", 1)[1] if meta["checksum"] else headers.get("etag", "").strip('"') or None
        return ServedFile(stream, meta["size"], meta["mime"], etag, meta["modified"])

    # -- writing ---------------------------------------------------------------------------------

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        extra = _object_headers(headers)
        stream, size, head = file_or_wfs, _remaining(file_or_wfs), b""
        if size is None:  # one-way stream: a short one is buffered, a long one goes up as segments
            while len(head) <= PEEK_SIZE and (block := stream.read(PEEK_SIZE + 1 - len(head))):
                head += block
            if len(head) <= PEEK_SIZE:
                stream, size, head = io.BytesIO(head), len(head), b""
        large = size is None or size > self.segment_size
        self._ensure(self.container)
        with self._replacing(filename, overwrite) if (large or overwrite) else nullcontext():
            if large:
                self._put_large(_Segments(stream, self.segment_size, head), filename, overwrite, extra)
            else:
                self._put_plain(stream, size or 0, filename, overwrite, extra)

    def _put_plain(self, stream: IO[bytes], size: int, filename: str, overwrite: bool, extra: dict) -> None:
        if size > HASH_FIRST_SIZE:
            body = _Segments(stream, size)
            etag = self._put(filename, body, headers=self._put_headers(None, overwrite, extra))
            self._set_checksum(filename, body.digest.hexdigest(), etag, extra)
            return
        start, digest = stream.tell(), hashlib.sha256()
        while block := stream.read(CHUNK_SIZE):
            digest.update(block)
        stream.seek(start)
        headers = self._put_headers(digest.hexdigest(), overwrite, extra)
        contents = stream if size else b""
        self._put(filename, contents, content_length=size, chunk_size=CHUNK_SIZE, headers=headers)

    def _set_checksum(self, filename: str, sha256: str, etag: str, extra: dict[str, str]) -> None:
        """Add the SHA-256 of a just-stored object, bound to its ETag. A POST replaces the metadata and
        served headers, so those of the upload are sent again. On failure the object keeps its MD5 label."""
        headers = {k: v for k, v in extra.items() if k != "content-type"}
        headers.update({"x-object-meta-sha256": sha256, "x-object-meta-sha256-etag": etag})
        try:
            self._call("post_object", self.container, filename, headers=headers, missing=filename)
        except FSError as exc:
            log.warning("swift object %s/%s stored without its sha256: %s", self.container, filename, exc)

    def _put_large(self, parts: _Segments, filename: str, overwrite: bool, extra: dict) -> None:
        """Upload the segments one by one, then the manifest (with the SHA-256) under the real name."""
        self._ensure(self.segments)
        prefix, manifest = self._segment_prefix(filename), []
        try:
            while parts.more():
                name = f"{prefix}{len(manifest):08d}"
                etag = self._call("put_object", self.segments, name, parts)
                manifest.append({"path": f"/{self.segments}/{name}", "etag": etag, "size_bytes": parts.sent})
            self._put_manifest(filename, manifest, parts.digest.hexdigest(), overwrite, extra)
        except BaseException:
            self._delete_segments([part["path"] for part in manifest])
            raise

    def _put_manifest(self, filename: str, manifest: list[dict], sha256: str, overwrite: bool, extra: dict) -> None:
        headers = self._put_headers(sha256, overwrite, extra)
        self._put(filename, json.dumps(manifest), headers=headers, query_string="multipart-manifest=put")

    def _put(self, filename: str, contents: Any, **kwargs: Any) -> str:
        """PUT an object under its real name and return its ETag; a 412 means it exists (``If-None-Match``)."""
        content_type = (kwargs.get("headers") or {}).pop("content-type", None)
        kwargs.setdefault("content_type", content_type or self.guess_type(filename))
        try:
            return self._call("put_object", self.container, filename, contents, **kwargs)
        except BackendError as exc:
            status = getattr(exc.__cause__, "http_status", None)
            if status == 412:
                raise FileExists(f"{filename!r} exists") from None
            if status == 404:  # the container was deleted behind our back: recreate it next time
                self._ready.discard(self.container)
            raise

    @staticmethod
    def _put_headers(sha256: str | None, overwrite: bool, extra: dict[str, str]) -> dict[str, str]:
        headers = {**extra, "x-object-meta-sha256": sha256} if sha256 else dict(extra)
        if not overwrite:
            headers["if-none-match"] = "*"
        return headers

    @staticmethod
    def _segment_prefix(filename: str) -> str:
        return f"{filename}/{uuid.uuid4().hex}/"

    @contextmanager
    def _replacing(self, filename: str, overwrite: bool) -> Iterator[None]:
        """Refuse an existing ``filename`` early unless ``overwrite``; once it is replaced, delete the
        segments of the large object it was."""
        try:
            old = self._head(filename)
        except FileNotFound:
            old = None
        if old is not None and not overwrite:
            raise FileExists(f"{filename!r} exists")
        segments = [part["name"] for part in self._manifest(filename)] if old and _is_slo(old) else []
        yield
        self._delete_segments(segments)

    def _manifest(self, filename: str) -> list[dict[str, Any]]:
        """The segments of a large object: dicts with ``name`` (``/container/object``), ``hash``, ``bytes``."""
        query = "multipart-manifest=get"
        return json.loads(self._call("get_object", self.container, filename, query_string=query, missing=filename)[1])

    def _delete_segments(self, paths: list[str]) -> None:
        """Best effort: a segment left behind wastes space but breaks nothing."""
        for path in paths:
            container, name = path.lstrip("/").split("/", 1)
            try:
                self._call("delete_object", container, name, missing=name)
            except FileNotFound:
                pass
            except BackendError as exc:
                log.warning("could not delete swift segment %s: %s", path, exc)

    # -- deleting, copying ----------------------------------------------------------------------

    def delete(self, filename: str) -> None:
        try:
            headers = self._head(filename)
        except FileNotFound:  # no such file: the files below it, as Flask-FS did
            for name in list(self._names(prefix=filename + "/")):
                self.delete(name)
            return
        query = "multipart-manifest=delete" if _is_slo(headers) else None  # the segments too
        with suppress(FileNotFound):
            self._call("delete_object", self.container, filename, query_string=query, missing=filename)

    def copy(self, source: str, target: str, overwrite: bool = False) -> None:
        """Server-side copy; a large object's segments are copied one by one under a new manifest."""
        self._transfer(source, target, overwrite, move=False)

    def move(self, source: str, target: str, overwrite: bool = False) -> None:
        """Server-side copy then delete; a large object's manifest moves, its segments stay."""
        self._transfer(source, target, overwrite, move=True)

    def _transfer(self, source: str, target: str, overwrite: bool, move: bool) -> None:
        headers = self._head(source)
        if source == target:
            if not overwrite:
                raise FileExists(f"{target!r} exists")
            return
        with self._replacing(target, overwrite):
            if not _is_slo(headers):
                self._call("copy_object", self.container, source, f"/{self.container}/{target}", missing=source)
            elif move:  # copy the manifest itself: the segments now belong to the target
                copy_from = {"X-Copy-From": quote(f"/{self.container}/{source}")}
                self._put(target, None, headers=copy_from, query_string="multipart-manifest=get", content_type=None)
            else:
                self._copy_segments(source, target, headers, overwrite)
        if move:
            with suppress(FileNotFound):
                self._call("delete_object", self.container, source, missing=source)  # the manifest only

    def _copy_segments(self, source: str, target: str, headers: dict[str, str], overwrite: bool) -> None:
        self._ensure(self.segments)
        prefix, manifest = self._segment_prefix(target), []
        try:
            for part in self._manifest(source):
                path = f"/{self.segments}/{prefix}{len(manifest):08d}"
                container, name = part["name"].lstrip("/").split("/", 1)
                self._call("copy_object", container, name, path, missing=source)
                manifest.append({"path": path, "etag": part["hash"], "size_bytes": part["bytes"]})
            kept = {k: v for k, v in headers.items() if k in ("content-type", *SERVED_HEADERS) or _is_meta(k)}
            self._put_manifest(target, manifest, headers.get("x-object-meta-sha256", ""), overwrite, kept)
        except BaseException:
            self._delete_segments([part["path"] for part in manifest])
            raise

    # -- URLs, health ------------------------------------------------------------------------------

    def signed_url(self, filename: str, expires: int) -> str:
        """A Swift temporary URL (``tempurl`` middleware), signed with the account's ``tempurl_key``."""
        key = self.config.get("tempurl_key")
        if not key:
            raise OperationNotSupported(
                "swift signed URLs need the account's Temp-URL key (X-Account-Meta-Temp-URL-Key) in the "
                "TEMPURL_KEY setting"
            )
        storage_url = self.connection().url or self._call("get_auth")[0]
        parts = urlsplit(storage_url)
        signed = generate_temp_url(f"{unquote(parts.path)}/{self.container}/{filename}", int(expires), key, "GET")
        path, _, query = signed.partition("?")
        return urlunsplit((parts.scheme, parts.netloc, quote(path), query, ""))

    def presign_upload(self, filename: str, max_size: int, content_type: str, expires: int) -> dict[str, Any] | None:
        """A FormPOST (``formpost`` middleware) of one file into ``filename``'s folder, signed with the
        ``tempurl_key``: the form's file must be named as ``filename``'s last segment. Without the key,
        None (the app's endpoint receives the upload)."""
        key = self.config.get("tempurl_key")
        if not key:
            return None
        self._ensure(self.container)
        storage_url = self.connection().url or self._call("get_auth")[0]
        parts = urlsplit(storage_url)
        folder = filename.rpartition("/")[0]
        path = f"{unquote(parts.path)}/{self.container}/{folder + '/' if folder else ''}"
        deadline = int(time.time() + expires)
        signed = f"{path}\n\n{max_size}\n1\n{deadline}"
        signature = hmac.new(key.encode(), signed.encode(), hashlib.sha256).hexdigest()
        fields = {
            "max_file_size": str(max_size), "max_file_count": "1", "expires": str(deadline),
            "signature": signature, "content-type": content_type,
        }  # fmt: skip
        url = urlunsplit((parts.scheme, parts.netloc, quote(path), "", ""))
        return {"url": url, "method": "POST", "fields": fields, "headers": {}}

    def check(self) -> None:
        """Authenticate and reach the account and container (a container not created yet is fine)."""
        self._call("head_account")
        with suppress(FileNotFound):
            self._call("head_container", self.container, missing=self.container)


def connection_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``swiftclient.Connection`` keyword arguments for a storage's settings."""
    return {
        "authurl": config["authurl"],
        "user": config["user"],
        "key": config["key"],
        "auth_version": config["auth_version"],
        "os_options": {key: config[key] for key in KEYSTONE_OPTIONS if config.get(key)},
        "retries": config["retries"],
        "starting_backoff": config["starting_backoff"],
        "max_backoff": config["max_backoff"],
        "timeout": config["timeout"],
    }


def _object_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Swift object headers for ``save(headers=...)``: served ones as given, others as user metadata."""
    result = {}
    for name, value in (headers or {}).items():
        key = name.lower()
        if key == "x-amz-acl":
            continue  # an S3 canned ACL: Swift's access rules are container ACLs
        if key not in ("content-type", *SERVED_HEADERS) and not _is_meta(key):
            key = "x-object-meta-" + key.removeprefix("x-amz-meta-")
        result[key] = str(value)
    return result


def _is_meta(key: str) -> bool:
    return key.lower().startswith("x-object-meta-")


def _is_slo(headers: dict[str, str]) -> bool:
    return headers.get("x-static-large-object", "").lower() == "true"


def _remaining(stream: IO[bytes]) -> int | None:
    """How many bytes are left in a rewindable stream; None for a one-way stream."""
    try:
        if stream.seekable():
            position = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(position)
            return end - position
    except (AttributeError, OSError, ValueError):
        pass
    return None


_HASHER: list[ThreadPoolExecutor] = []
_HASHER_LOCK = threading.Lock()


def _hasher() -> ThreadPoolExecutor:
    """Threads shared by large uploads to hash their blocks while they are sent."""
    with _HASHER_LOCK:
        if not _HASHER:
            _HASHER.append(ThreadPoolExecutor(4, thread_name_prefix="flask-fs-swift-hash"))
        return _HASHER[0]


class _Segments:
    """A stream cut into segments of ``size`` bytes, hashed (SHA-256) as they are sent.

    Each iteration yields the blocks of the next segment (a large plain object is one segment of
    the whole file). A block is hashed on a helper thread
    while swiftclient sends it (both release the GIL), so the checksum costs no time of its own.
    ``reset`` lets swiftclient retry a segment after a dropped connection, when the stream can be
    rewound to that segment's start.
    """

    def __init__(self, stream: IO[bytes], size: int, head: bytes = b"") -> None:
        self.stream, self.size, self.pending = stream, size, head
        self._digest, self.sent = hashlib.sha256(), 0
        self._hashing: Future | None = None
        self.rewindable = not head and _remaining(stream) is not None
        self.mark: tuple[Any, int] | None = None

    @property
    def digest(self) -> Any:
        """The SHA-256 of every block yielded so far."""
        self._settle()
        return self._digest

    def _settle(self) -> None:
        hashing, self._hashing = self._hashing, None
        if hashing is not None:
            hashing.result()

    def more(self) -> bool:
        """Whether bytes remain (reads ahead one block)."""
        if not self.pending:
            self.pending = self.stream.read(CHUNK_SIZE)
        return bool(self.pending)

    def __iter__(self) -> Iterator[bytes]:
        self.mark = (self.digest.copy(), self.stream.tell() - len(self.pending)) if self.rewindable else None
        self.sent = 0
        while self.sent < self.size and self.more():
            block = self.pending[: self.size - self.sent]
            self.pending = self.pending[len(block) :]
            self.sent += len(block)
            self._settle()  # blocks are hashed in order, one at a time
            self._hashing = _hasher().submit(self._digest.update, block)
            yield block

    def reset(self, *args: Any, **kwargs: Any) -> None:
        if self.mark is None:
            raise BackendError("the connection to swift dropped mid-upload; a one-way stream cannot be sent again")
        self._settle()
        self._digest, position = self.mark
        self.stream.seek(position)
        self.pending = b""
