"""Files in an S3 bucket: AWS, or any server speaking the S3 API (MinIO, Ceph, Swift's s3api, ...).

Settings (``FS_S3_<KEY>`` or ``<NAME>_FS_<KEY>``): ``endpoint``, ``region``, ``access_key``,
``secret_key`` (unset: boto3's default credential chain), ``session_token``; ``bucket`` (default:
the storage name), ``prefix`` (a folder inside the bucket: give one to each storage sharing a
bucket), ``create_bucket`` (default true: create the bucket, in ``region``, if missing, as Flask-FS did:
at the first operation of a storage, when a backend built directly is built), ``addressing_style`` (``path``,
``virtual`` or ``auto``), ``acl`` (a canned ACL for new objects; none by default), ``object_params``
(more upload arguments, e.g. ``{'CacheControl': 'max-age=86400', 'ServerSideEncryption': 'AES256'}``),
``conditional_writes`` (see below), ``multipart_threshold``, ``multipart_chunksize``,
``max_concurrency``, ``connect_timeout``, ``read_timeout``, ``max_attempts``. ``url`` (a public or
CDN base) and ``signed_url_expires`` are read by the Storage. ``save(headers=...)`` stores
Content-Type, Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires and
``x-amz-acl`` as such, other names as user metadata; copies keep them.

How it works:

* One boto3 client per storage, created on first use and shared by all threads (clients are
  thread-safe). The first operation also checks, once, that the bucket exists, so a missing bucket
  is reported as such instead of as missing files.
* Uploads smaller than ``multipart_threshold`` are one PutObject. Larger ones go through s3transfer's
  managed multipart upload, ``max_concurrency`` parts at once (10, as boto3). The parts of a file on
  disk are read with ``os.pread`` as they are sent, so none is held in memory; other streams hold at
  most two parts of ``multipart_chunksize`` ahead (5 MiB, the smallest part S3 takes). A failed
  upload never shows under its name: s3transfer aborts it (if the server or the process is gone,
  the parts wait for a lifecycle rule or ``flask fs clean``, which aborts uploads started over a
  day ago).
* Every upload records the SHA-256 of its content as user metadata (``x-amz-meta-sha256``):
  ``metadata()`` reports ``sha256:<hex>``, and ``etag:<value>`` for objects written by other tools
  (an ETag is not an MD5 for multipart or KMS-encrypted objects). S3 takes metadata when an upload
  starts: seekable sources are hashed first; a large stream that cannot seek is hashed on the way
  and its checksum added afterwards by a server-side copy of the object onto itself.
* ``overwrite=False`` sends ``If-None-Match: *`` with the request that creates the object (PutObject
  or CompleteMultipartUpload), so two writers cannot both win (AWS, moto, Swift's s3api honour it).
  For servers that don't, set ``conditional_writes = False``: a HEAD then checks the name first,
  with a race between the check and the write.
* Copies without overwrite don't use a conditional CopyObject: Swift's s3api (2.38) applies its
  If-None-Match to the source and refuses every copy, moto (5.2.5) ignores it. Small files are read
  and written back with a conditional PutObject; large ones use a multipart copy (server-side)
  whose completion is conditional.
* Signed URLs are presigned GETs against ``endpoint``, even when ``url`` names a CDN: a CDN can only
  honour them if it forwards the query string to S3 (a CNAME'd bucket with ``virtual`` addressing).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import IO, Any, BinaryIO, Literal, cast
from urllib.parse import quote, unquote, urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.copies import CopySubmissionTask
from s3transfer.manager import TransferConfig, TransferManager
from s3transfer.upload import UploadFilenameInputManager, UploadSubmissionTask

from ..config import STORAGE_NAME, URL, MiB, Setting, Size
from ..errors import BackendError, ConfigurationError, FileExists, FSError
from ..serving import ServedFile
from ..streams import disk_fd
from . import CHUNK_SIZE, BaseBackend, RangedReader, deferred_setup, file_not_found

logger = logging.getLogger(__name__)
#: Connections kept per client: threads beyond it still work, on connections that are not kept.
MAX_POOL_CONNECTIONS = 32
#: Parts of a stream (anything but a file on disk) read ahead and held in memory at once.
IN_MEMORY_PARTS = 2
#: The most a part of a file on disk reads at once: its readers loop, and small buffers are not
#: kept by each thread's allocator as 1 MiB ones are.
PART_READ_SIZE = 256 * 1024
#: Upload arguments that ``object_params`` may set (SSE-C and requester-pays would need them on every read too).
OBJECT_PARAMS = (set(TransferManager.ALLOWED_UPLOAD_ARGS) & set(TransferManager.ALLOWED_COPY_ARGS)) - {
    "SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5", "RequestPayer", "ExpectedBucketOwner",
}  # fmt: skip
_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_NO_BUCKET = {"NoSuchBucket", "NotFound", "404"}
_EXISTS = {"PreconditionFailed", "412"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "403"}
#: Headers and ``Server`` names by which S3-compatible servers are known even in a body-less error.
_S3_HEADERS = ("x-amz", "x-goog-", "x-guploader-")
_S3_SERVERS = ("amazons3", "minio", "ceph", "cloudflare", "garage", "seaweed")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Keys that appear in a URL as they are (what ``quote(key, safe="/~")`` leaves alone).
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*")
#: ``save(headers=...)`` names that are S3 object parameters; other names are user metadata.
HEADER_PARAMS = {
    "content-type": "ContentType", "cache-control": "CacheControl", "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding", "content-language": "ContentLanguage", "expires": "Expires",
    "x-amz-acl": "ACL",
}  # fmt: skip
#: What a copy keeps of its source, as GetObject/PutObject parameters.
_KEPT = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "Metadata",
)


def _known_type(content_type: str | None) -> str | None:
    """A stored Content-Type, or None for S3's ``binary/octet-stream`` (what S3 records when none was given)."""
    return None if content_type in (None, "", "binary/octet-stream") else content_type


class S3Backend(BaseBackend):
    """An S3 bucket (or a folder of one) holding one storage's files."""

    keeps_headers = True
    settings = (
        Setting("endpoint", URL, shown_default="AWS", doc="URL of the S3 API, with its scheme, for MinIO, Ceph, "
                "Swift's S3 API and other compatible servers."),
        Setting("region", str, shown_default="boto3's",
                doc="Region of the bucket (and of a bucket created by ``CREATE_BUCKET``)."),
        Setting("access_key", str, secret=True, shown_default="boto3's chain", doc="Access key ID. Set it with "
                "``SECRET_KEY``; unset, boto3 looks for credentials itself (environment, ``~/.aws``, instance role)."),
        Setting("secret_key", str, secret=True, shown_default="boto3's chain", doc="Secret access key."),
        Setting("session_token", str, secret=True, doc="Session token of temporary credentials."),
        Setting("bucket", str, STORAGE_NAME, doc="Bucket holding the files."),
        Setting("prefix", str, "", doc="Folder inside the bucket; give one to each storage that shares a bucket."),
        Setting("create_bucket", bool, True, doc="Create the bucket if it is missing (as Flask-FS did); set "
                "``False`` to get an error naming the bucket instead, e.g. to catch a typo in production."),
        Setting("addressing_style", str, "auto", choices=("path", "virtual", "auto"),
                doc='``"path"`` (``endpoint/bucket/key``), ``"virtual"`` (``bucket.endpoint/key``) or ``"auto"``.'),
        Setting("acl", str, doc='Canned ACL given to new objects, e.g. ``"public-read"``.'),
        Setting("object_params", dict, {}, doc='More arguments for every upload, e.g. ``{"CacheControl": '
                '"max-age=86400", "ServerSideEncryption": "AES256"}`` (customer-provided keys and requester-pays '
                "are refused)."),
        Setting("conditional_writes", bool, True, doc="``overwrite=False`` sends ``If-None-Match: *``. Set "
                "``False`` for servers that ignore it: a HEAD then checks the name first, with a race between "
                "check and write."),
        Setting("multipart_threshold", Size, 8 * MiB, doc="Uploads from this size on go up in parts."),
        Setting("multipart_chunksize", Size, 5 * MiB, doc="Size of a part (5 MiB is S3's minimum)."),
        Setting("max_concurrency", int, 10, doc="Parts sent at once. Parts of a file on disk are read as they are "
                "sent; other streams hold at most two parts ahead in memory."),
        Setting("connect_timeout", float, 5, doc="Socket connection timeout, in seconds."),
        Setting("read_timeout", float, 60, doc="Socket read timeout, in seconds."),
        Setting("max_attempts", int, 3, doc="Attempts per request, in botocore's *standard* retry mode."),
    )  # fmt: skip

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        config = self.config
        self.bucket: str = config["bucket"]
        self.prefix: str = config["prefix"].strip("/")
        params = dict(config["object_params"])
        unknown = set(params) - OBJECT_PARAMS
        if unknown:
            raise ConfigurationError(
                f"{config.name_of('object_params')}: unsupported S3 upload arguments {sorted(unknown)}; "
                f"allowed: {sorted(OBJECT_PARAMS)}"
            )
        if bool(config.get("access_key")) != bool(config.get("secret_key")):
            raise ConfigurationError(
                f"{config.name_of('access_key')} and {config.name_of('secret_key')} go together: "
                "set both, or neither for boto3's chain"
            )
        if config.get("acl"):
            params["ACL"] = config["acl"]
        self.object_params = params
        self.threshold: int = config["multipart_threshold"]
        self._lock, self._bucket_lock = threading.Lock(), threading.Lock()
        self._client: Any = None
        self._transfer: TransferManager | None = None
        self._bucket_checked = False
        self._presigner: _Presigner | Literal[False] | None = None
        if config["create_bucket"] and not deferred_setup.get():  # as Flask-FS: the bucket exists once built
            try:
                self._ready()
            except FSError as exc:  # server down, no permission...: the first operation retries and reports it
                logger.warning("S3 bucket %r could not be checked or created yet: %s", self.bucket, exc)

    # -- connection ----------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 S3 client, created on first use and shared by every thread."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        cfg = self.config
        botocfg = BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": cfg.get("addressing_style") or "auto"},
            connect_timeout=cfg["connect_timeout"],
            read_timeout=cfg["read_timeout"],
            retries={"max_attempts": int(cfg["max_attempts"]), "mode": "standard"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=cfg.get("endpoint") or None,
            region_name=cfg.get("region") or None,
            aws_access_key_id=cfg.get("access_key") or None,
            aws_secret_access_key=cfg.get("secret_key") or None,
            aws_session_token=cfg.get("session_token") or None,
            config=botocfg,
        )

    @property
    def transfer(self) -> TransferManager:
        """The s3transfer manager for large uploads and copies, tuned for bounded memory."""
        if self._transfer is None:
            concurrency = int(self.config["max_concurrency"])
            config = TransferConfig(
                multipart_threshold=self.threshold,
                multipart_chunksize=int(self.config["multipart_chunksize"]),
                max_request_concurrency=concurrency,
                max_in_memory_upload_chunks=min(concurrency, IN_MEMORY_PARTS),
            )
            with self._lock:
                if self._transfer is None:
                    self._transfer = _TransferManager(self.client, config)
        return self._transfer

    def close(self) -> None:
        """Wait for the transfers in progress, stop the transfer threads and close the client's connections."""
        with self._lock:
            transfer, client, self._transfer, self._client = self._transfer, self._client, None, None
        if transfer is not None:
            transfer.shutdown()
        if client is not None:
            client.close()

    def _ready(self) -> Any:
        """The client, after checking once that the bucket exists (creating it if ``create_bucket``)."""
        client = self.client
        if self._bucket_checked:
            return client
        with self._bucket_lock:
            if not self._bucket_checked:
                try:
                    self._check_bucket(client)
                except (ClientError, BotoCoreError) as exc:
                    raise self.translate_error(exc, None) from exc  # about the bucket, not a file
                self._bucket_checked = True
        return client

    def _check_bucket(self, client: Any) -> None:
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if self._not_s3(exc):
                raise
            if _code(exc) in _NO_BUCKET and self.config.get("create_bucket"):
                self._create_bucket()
            elif _code(exc) not in _DENIED:  # keys may be limited to objects: operations will tell
                raise

    def _create_bucket(self) -> None:
        region = self.client.meta.region_name
        args = {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            self.client.create_bucket(Bucket=self.bucket, **args)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise

    def _key(self, filename: str) -> str:
        return f"{self.prefix}/{filename}" if self.prefix else filename

    def _not_s3(self, exc: ClientError) -> bool:
        """Whether an error came from a configured endpoint that is not an S3 server at all (a web
        server answering 404 would otherwise read as a missing bucket): S3 servers send an XML error
        code, or request-id headers of their own (AWS, MinIO, Ceph, R2, moto, Swift's s3api)."""
        if not self.config.get("endpoint") or not _code(exc).isdigit():
            return False
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        server = str(headers.get("server", "")).lower()
        return not (
            any(name.lower().startswith(_S3_HEADERS) for name in headers) or any(s in server for s in _S3_SERVERS)
        )

    @property
    def _where(self) -> str:
        return self.config.get("endpoint") or "AWS"

    def translate_error(self, exc: Exception, filename: str | None) -> FSError | None:
        """botocore's exceptions as flask_fs errors: a missing key, a missing bucket, a refused key..."""
        if isinstance(exc, BotoCoreError):
            return BackendError(f"S3 at {self._where} failed: {exc}")
        if not isinstance(exc, ClientError):
            return None
        if self._not_s3(exc):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            return BackendError(
                f"the server at {self._where} does not answer like an S3 server (HTTP {status} without any S3 "
                f"header): check {self.config.name_of('endpoint')}"
            )
        code = _code(exc)
        if filename is not None and code in _NOT_FOUND:
            return file_not_found(filename)
        if code in _NO_BUCKET:
            return BackendError(
                f"bucket {self.bucket!r} does not exist at {self._where}: create it, or set "
                f"{self.name.upper()}_FS_CREATE_BUCKET = True (or FS_S3_CREATE_BUCKET) to have it created"
            )
        if filename is not None and code in _EXISTS:
            return FileExists(f"{filename!r} exists")
        if code in _DENIED:
            return BackendError(
                f"S3 at {self._where} refused access to bucket {self.bucket!r} ({code}): check "
                f"{self.config.name_of('access_key')}, {self.config.name_of('secret_key')} and their permissions"
            )
        return BackendError(f"S3 at {self._where} failed on bucket {self.bucket!r}: {exc}")

    # -- reading ---------------------------------------------------------------------------------------

    def _head(self, filename: str) -> dict[str, Any]:
        return self._ready().head_object(Bucket=self.bucket, Key=self._key(filename))

    def exists(self, filename: str) -> bool:
        try:
            self._head(filename)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND and not self._not_s3(exc):
                return False
            raise
        return True

    def metadata(self, filename: str) -> dict[str, Any]:
        head = self._head(filename)
        digest, etag = head.get("Metadata", {}).get("sha256", ""), head["ETag"].strip('"')
        return {
            "checksum": f"sha256:{digest}" if _SHA256.fullmatch(digest) else f"etag:{etag}",
            "size": head["ContentLength"],
            "mime": _known_type(head.get("ContentType")) or self.guess_type(filename),
            "modified": head["LastModified"],
        }

    def _get(self, filename: str, start: int = 0, end: int | None = None) -> dict[str, Any] | None:
        """GET the object, or bytes ``start`` to ``end`` (exclusive) of it; None when that range is empty."""
        s3 = self._ready()
        args = {"Range": f"bytes={start}-{'' if end is None else end - 1}"} if start or end is not None else {}
        try:
            return s3.get_object(Bucket=self.bucket, Key=self._key(filename), **args)
        except ClientError as exc:
            if _code(exc) != "InvalidRange":
                raise
        return None

    def _reader(self, filename: str, size: int, body: Any = None, start: int = 0) -> RangedReader:
        """The object (from byte ``start``) as a seekable file; a seek re-GETs from there."""

        def reopen(position: int) -> Any:
            response = self._get(filename, start + position)
            return response["Body"] if response else io.BytesIO()

        return RangedReader(size, reopen, body)

    def _open(self, filename: str) -> tuple[RangedReader, dict[str, Any]]:
        """The object as a file, and the headers a copy keeps."""
        response = self._get(filename)
        assert response is not None  # a GET without Range has no unsatisfiable range
        kept = {key: response[key] for key in _KEPT if response.get(key)}
        return self._reader(filename, response["ContentLength"], response["Body"]), kept

    def open_read(self, filename: str) -> BinaryIO:
        return cast(BinaryIO, self._open(filename)[0])

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Stream bytes ``start`` to ``end`` with one ranged GET."""
        if end is not None and end <= start:
            self._head(filename)  # FileNotFound all the same
            return
        response = self._get(filename, start, end)
        if response is None:
            return
        yield from self._reader(filename, response["ContentLength"], response["Body"], start).chunks(chunk_size)

    def open_served(self, filename: str) -> ServedFile:
        """One HEAD for the headers; the GET is only sent if a body is, from the first byte wanted."""
        meta = self.metadata(filename)
        stream = cast(BinaryIO, self._reader(filename, meta["size"]))
        return ServedFile(stream, meta["size"], meta["mime"], meta["checksum"].split(":", 1)[1], meta["modified"])

    def _listing(self) -> Iterator[tuple[str, dict[str, Any]]]:
        s3 = self._ready()
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                name = obj["Key"][len(prefix) :]
                if name and not name.endswith("/"):  # skip folder markers made by consoles
                    yield name, obj

    def list_files(self) -> Iterator[str]:
        for name, _ in self._listing():
            yield name

    def list_metadata(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """From the listing alone: size, modified and the ETag (the listing has no user metadata)."""
        for name, obj in self._listing():
            etag = obj["ETag"].strip('"')
            yield name, {"size": obj["Size"], "checksum": f"etag:{etag}", "modified": obj["LastModified"]}

    # -- writing ---------------------------------------------------------------------------------------

    def _object_args(self, filename: str, headers: Mapping[str, str] | None) -> dict[str, Any]:
        """Object parameters: the type from the name, ``object_params``, then the ``headers`` given."""
        args: dict[str, Any] = {"ContentType": self.guess_type(filename), **self.object_params}
        for name, value in (headers or {}).items():
            key = name.lower()
            if key in HEADER_PARAMS:
                args[HEADER_PARAMS[key]] = str(value)
            else:
                key = key.removeprefix("x-amz-meta-").removeprefix("x-object-meta-")
                args["Metadata"] = {**args.get("Metadata", {}), key: str(value)}
        return args

    def _only_new(self, filename: str) -> dict[str, str]:
        """Make the write fail if ``filename`` exists: If-None-Match, or a HEAD if the server can't."""
        if self.config["conditional_writes"]:
            return {"IfNoneMatch": "*"}
        if self.exists(filename):
            raise FileExists(f"{filename!r} exists")
        return {}

    def _with_checksum(self, args: dict[str, Any], source: _HashingReader) -> dict[str, Any]:
        return {**args, "Metadata": {**args.get("Metadata", {}), "sha256": source.sha256.hexdigest()}}

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._store(file_or_wfs, filename, overwrite, self._object_args(filename, headers))

    def _store(self, file_or_wfs: IO[bytes], filename: str, overwrite: bool, args: dict[str, Any]) -> None:
        s3, key = self._ready(), self._key(filename)
        args = args if overwrite else {**args, **self._only_new(filename)}
        seekable = _seekable(file_or_wfs)
        start = file_or_wfs.tell() if seekable else 0
        source = _HashingReader(file_or_wfs)
        head = source.read(self.threshold)
        try:
            if len(head) < self.threshold:  # small: one PutObject
                s3.put_object(Bucket=self.bucket, Key=key, Body=head, **self._with_checksum(args, source))
                return
            if seekable:  # hash it all first, so the checksum goes in with the object
                del head
                source.exhaust()
                end = file_or_wfs.tell()
                file_or_wfs.seek(start)
                body = _FileRegion.of(file_or_wfs, end - start) or file_or_wfs
                self.transfer.upload(body, self.bucket, key, self._with_checksum(args, source)).result()
                return
            source.push_back(head)  # hash on the way, then add the checksum with a server-side copy
            del head
            self.transfer.upload(source, self.bucket, key, args).result()
        except ClientError as exc:
            if _code(exc) in _EXISTS:  # If-None-Match: the name is taken (this may be a copy's target)
                raise FileExists(f"{filename!r} exists") from exc
            raise
        self._add_checksum(key, self._with_checksum(args, source))

    def _add_checksum(self, key: str, args: dict[str, Any]) -> None:
        """Set the checksum of a just-stored object, unless another writer replaced it meanwhile. On
        failure (or past CopyObject's 5 GiB) the object stays as stored, with its honest etag label."""
        args = {k: v for k, v in args.items() if k in OBJECT_PARAMS or k == "Metadata"}
        # A checksum of its own for the copy: moto 5.2.5 keeps the parts' composite one, failing whole reads.
        args.setdefault("ChecksumAlgorithm", "CRC32")
        try:
            etag = self.client.head_object(Bucket=self.bucket, Key=key)["ETag"]
            self.client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=etag, MetadataDirective="REPLACE", **args,
            )  # fmt: skip
        except (ClientError, BotoCoreError) as exc:
            logger.warning("S3 object %s/%s stored without its sha256: %s", self.bucket, key, exc)

    def delete(self, filename: str) -> None:
        s3 = self._ready()
        if self.exists(filename):
            s3.delete_object(Bucket=self.bucket, Key=self._key(filename))
            return
        folder = self._key(filename) + "/"  # no such file: the files below it, as Flask-FS did
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", ())]
            if keys:
                s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    def copy(self, source: str, target: str, overwrite: bool = False) -> None:
        """Server-side copy (managed: multipart for large files), keeping the source's checksum and headers."""
        args = {k: v for k, v in self.object_params.items() if k not in _KEPT}  # ACL, encryption, class...
        copy_source = {"Bucket": self.bucket, "Key": self._key(source)}
        if not overwrite:
            f, kept = self._open(source)
            with f:
                if f.size < self.threshold:  # small: GET, then a conditional PUT
                    return self._store(cast(BinaryIO, f), target, False, {**args, **kept})
            args.update(self._only_new(target))
        self._ready()
        try:
            self.transfer.copy(copy_source, self.bucket, self._key(target), args).result()
        except ClientError as exc:
            if _code(exc) in _EXISTS:
                raise FileExists(f"{target!r} exists") from exc
            raise

    def signed_url(self, filename: str, expires: int) -> str:
        """A presigned GET against ``endpoint`` (no request is sent), signed here: see :class:`_Presigner`."""
        presigner = self._presigner
        if presigner is None:
            client = self.client
            with self._lock:
                if self._presigner is None:
                    self._presigner = _Presigner.for_client(client, self.bucket)
            presigner = self._presigner
        key = self._key(filename)
        if presigner:
            return presigner.sign(key, expires)
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
        )

    def presign_upload(self, filename: str, max_size: int, content_type: str, expires: int) -> dict[str, Any]:
        """A presigned POST: S3 itself refuses a body outside ``0..max_size`` or of another type."""
        fields: dict[str, Any] = {"Content-Type": content_type}
        if self.config.get("acl"):
            fields["acl"] = self.config["acl"]
        conditions: list[Any] = [["content-length-range", 0, max_size], *({k: v} for k, v in fields.items())]
        post = self.client.generate_presigned_post(
            self.bucket, self._key(filename), Fields=fields, Conditions=conditions, ExpiresIn=expires
        )
        return {"url": post["url"], "method": "POST", "fields": post["fields"], "headers": {}}

    def presign_parts(
        self, filename: str, size: int, part_size: int, content_type: str, expires: int
    ) -> dict[str, Any]:
        """A resumable multipart upload of ``size`` bytes to ``filename``: the parts already stored
        (``{number: size}``) and a presigned PUT for each missing one (``{number: url}``), each
        signed for its exact length. The upload is found again by its key, so asking twice resumes."""
        s3, key = self._ready(), self._key(filename)
        count = max(1, -(-size // part_size))
        upload_id = (
            self._multipart_id(key)
            or s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, **self._object_args(filename, {"Content-Type": content_type})
            )["UploadId"]
        )
        stored = {part["PartNumber"]: part["Size"] for part in self._parts(key, upload_id)}
        done, urls = {}, {}
        for number in range(1, count + 1):
            length = min(part_size, size - (number - 1) * part_size)
            if stored.get(number) == length:  # a part of another length is sent again
                done[number] = length
                continue
            params = {
                "Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number,
                "ContentLength": length,
            }  # fmt: skip
            urls[number] = s3.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires)
        return {"part_size": part_size, "parts": done, "urls": urls}

    def complete_parts(self, filename: str) -> bool:
        """Complete the multipart upload to ``filename`` with the parts stored; False if there is none."""
        s3, key = self._ready(), self._key(filename)
        upload_id = self._multipart_id(key)
        if upload_id is None:
            return False
        parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in self._parts(key, upload_id)]
        if not parts:
            return False
        s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        return True

    def _multipart_id(self, key: str) -> str | None:
        """The id of the multipart upload in progress to ``key``, if any."""
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=key):
            for upload in page.get("Uploads", ()):
                if upload["Key"] == key:
                    return upload["UploadId"]
        return None

    def _parts(self, key: str, upload_id: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
            yield from page.get("Parts", ())

    def clean_stale(self, grace: float) -> list[str]:
        """Abort the multipart uploads under this storage's prefix started over ``grace`` seconds ago:
        a process killed mid-upload leaves them, and their parts are billed until aborted."""
        s3, prefix = self._ready(), f"{self.prefix}/" if self.prefix else ""
        limit, removed = datetime.now(UTC) - timedelta(seconds=grace), []
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] < limit:
                    s3.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                    name = upload["Key"][len(prefix) :]
                    removed.append(f"multipart upload of {name} started {upload['Initiated']:%Y-%m-%d %H:%M}")
        return removed

    def check(self) -> None:
        self._ready()
        self.client.head_bucket(Bucket=self.bucket)


class _HashingReader(io.RawIOBase):
    """Reads a stream once, hashing it (SHA-256); reads return the full size asked for until the end,
    as s3transfer expects of a stream it cuts into parts."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream, self.sha256, self._pending = stream, hashlib.sha256(), b""

    def readable(self) -> bool:
        return True

    def push_back(self, data: bytes) -> None:
        """Serve ``data`` (already hashed) again before the rest of the stream."""
        self._pending = data

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        parts = []
        if self._pending:
            take = self._pending if size < 0 or size >= len(self._pending) else self._pending[:size]
            self._pending = self._pending[len(take) :]
            parts.append(take)
            size = size if size < 0 else size - len(take)
        while size != 0:
            chunk = self._stream.read(size if size > 0 else CHUNK_SIZE)
            if not chunk:
                break
            self.sha256.update(chunk)
            parts.append(chunk)
            size = size if size < 0 else size - len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def exhaust(self) -> None:
        """Read (and hash) the rest of the stream."""
        while chunk := self._stream.read(CHUNK_SIZE):
            self.sha256.update(chunk)


class _Presigner:
    """Presigned S3 GETs (SigV4 query signing) for one bucket, at a few microseconds each.

    botocore builds a request, resolves the endpoint and derives the signing key for every URL
    (about 1 ms); a page listing hundreds of files pays that hundreds of times. The URL's base
    (scheme, host, path-style or virtual-hosted, the signing region) depends only on the bucket,
    so it is taken once from a URL that botocore presigns; the signing key changes once a day.
    Each URL then costs one SHA-256 and four HMACs at most. The result is checked once against
    botocore's own URL for a key with spaces, non-ASCII and reserved characters; on any difference
    (another signature version, extra query parameters), botocore presigns every URL instead.
    """

    PROBE = "flask-fs probe/é+~ %.txt"
    #: The time now, in seconds (a class attribute, so tests can set the instant).
    clock = staticmethod(time.time)

    def __init__(self, credentials: Any, base: str, path: str, host: str, region: str, service: str) -> None:
        self._credentials, self._base, self._path, self._host = credentials, base, path, host
        self._region, self._service = region, service
        self._day: tuple[str, str, bytes] = ("", "", b"")
        self._second: tuple[int, str] = (-1, "")
        self._cached: tuple[Any, Any] = (None, None)

    @classmethod
    def for_client(cls, client: Any, bucket: str) -> _Presigner | Literal[False]:
        """The presigner for ``client`` and ``bucket``, or False when botocore must sign each URL."""
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": cls.PROBE}, ExpiresIn=60)
        parts, quoted = urlsplit(url), quote(cls.PROBE, safe="/~")
        query = dict(pair.partition("=")[::2] for pair in parts.query.split("&"))
        scope = unquote(query.get("X-Amz-Credential", "")).split("/")
        if (
            credentials is None
            or not parts.path.endswith(quoted)
            or query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256"
            or query.get("X-Amz-SignedHeaders") != "host"
            or len(scope) != 5
            or any(not name.startswith("X-Amz-") for name in query)
        ):
            return False
        port = parts.port if parts.port not in (None, {"http": 80, "https": 443}.get(parts.scheme)) else None
        host = parts.netloc.rpartition("@")[2].lower() if port else (parts.hostname or "")
        presigner = cls(credentials, f"{parts.scheme}://{parts.netloc}", parts.path[: -len(quoted)], host,
                        scope[2], scope[3])  # fmt: skip
        return presigner if presigner.sign(cls.PROBE, 60, query["X-Amz-Date"]) == url else False

    def _query(self, credentials: Any, timestamp: str, expires: int) -> tuple[str, str, bytes, str]:
        """What every URL signed in this second shares: the canonical query, the string-to-sign's
        head, the signing key (derived once a day) and the URL's query."""
        cached = self._cached
        if cached[0] == (timestamp, expires, credentials):
            return cached[1]
        day = timestamp[:8]
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": quote(f"{credentials.access_key}/{scope}", safe="-_.~"),
            "X-Amz-Date": timestamp,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": "host",
        }
        if credentials.token is not None:
            params["X-Amz-Security-Token"] = quote(credentials.token, safe="-_.~")
        canonical_query = "&".join(f"{name}={params[name]}" for name in sorted(params))
        if self._day[:2] != (credentials.secret_key, day):
            key = f"AWS4{credentials.secret_key}".encode()
            for part in (day, self._region, self._service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._day = (credentials.secret_key, day, key)
        query = "&".join(f"{name}={value}" for name, value in params.items())
        shared = (canonical_query, f"AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n", self._day[2], query)
        self._cached = ((timestamp, expires, credentials), shared)
        return shared

    def sign(self, key: str, expires: int, timestamp: str | None = None) -> str:
        """The presigned GET URL of ``key``, valid ``expires`` seconds from now (or from ``timestamp``)."""
        credentials = self._credentials.get_frozen_credentials()  # refreshes temporary credentials
        if timestamp is None:
            now = int(self.clock())
            if now != self._second[0]:
                self._second = (now, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)))
            timestamp = self._second[1]
        canonical_query, head, signing_key, query = self._query(credentials, timestamp, int(expires))
        path = self._path + (key if _URL_SAFE.fullmatch(key) else quote(key, safe="/~"))
        canonical = f"GET\n{path}\n{canonical_query}\nhost:{self._host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = head + hashlib.sha256(canonical.encode()).hexdigest()
        signature = hmac.digest(signing_key, to_sign.encode(), "sha256").hex()
        return f"{self._base}{path}?{query}&X-Amz-Signature={signature}"


class _FileRegion:
    """``size`` bytes of a file on disk, uploaded in parts that threads read with ``os.pread``: no part
    is held in memory, and the threads share no file offset."""

    def __init__(self, fd: int, start: int, size: int) -> None:
        self.fd, self.start, self.size = fd, start, size

    @classmethod
    def of(cls, stream: IO[bytes], size: int) -> _FileRegion | None:
        """The ``size`` bytes from the position of ``stream`` (bytes already read, hashed and counted
        through it), if it is a regular file on disk; else None."""
        fd = disk_fd(stream) if hasattr(os, "pread") else None
        start = stream.tell()
        if fd is None or start + size > os.fstat(fd).st_size:
            return None
        return cls(fd, start, size)


class _RegionReader(io.RawIOBase):
    """A part's view of a :class:`_FileRegion`, with a position of its own (closing it leaves the file open)."""

    def __init__(self, region: _FileRegion, position: int) -> None:
        super().__init__()
        self.region, self.position = region, position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = (offset, self.position + offset, self.region.size + offset)[whence]
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        left = self.region.size - self.position
        wanted = left if size is None or size < 0 else min(size, left, PART_READ_SIZE)
        if wanted <= 0:
            return b""
        data = os.pread(self.region.fd, wanted, self.region.start + self.position)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _RegionInputManager(UploadFilenameInputManager):
    """s3transfer's input for filenames (parts read lazily, not kept in memory), over a :class:`_FileRegion`."""

    @classmethod
    def is_compatible(cls, upload_source: Any) -> bool:
        return isinstance(upload_source, _FileRegion)

    def provide_transfer_size(self, transfer_future: Any) -> None:
        transfer_future.meta.provide_transfer_size(transfer_future.meta.call_args.fileobj.size)

    def _get_deferred_open_file(self, fileobj: _FileRegion, start_byte: int) -> _RegionReader:
        return _RegionReader(fileobj, start_byte)


class _UploadTask(UploadSubmissionTask):
    CREATE_MULTIPART_BLOCKLIST = [*UploadSubmissionTask.CREATE_MULTIPART_BLOCKLIST, "IfNoneMatch"]
    COMPLETE_MULTIPART_ARGS = [*UploadSubmissionTask.COMPLETE_MULTIPART_ARGS, "IfNoneMatch"]

    def _get_upload_input_manager_cls(self, transfer_future: Any) -> Any:
        if isinstance(transfer_future.meta.call_args.fileobj, _FileRegion):
            return _RegionInputManager
        return super()._get_upload_input_manager_cls(transfer_future)


class _CopyTask(CopySubmissionTask):
    CREATE_MULTIPART_ARGS_BLACKLIST = [*CopySubmissionTask.CREATE_MULTIPART_ARGS_BLACKLIST, "IfNoneMatch"]
    COMPLETE_MULTIPART_ARGS = [*CopySubmissionTask.COMPLETE_MULTIPART_ARGS, "IfNoneMatch"]


class _TransferManager(TransferManager):
    """s3transfer's manager, passing ``IfNoneMatch`` to the request that creates the object
    (PutObject or CompleteMultipartUpload), which s3transfer 0.19 does not."""

    ALLOWED_UPLOAD_ARGS = [*TransferManager.ALLOWED_UPLOAD_ARGS, "IfNoneMatch"]
    ALLOWED_COPY_ARGS = [*TransferManager.ALLOWED_COPY_ARGS, "IfNoneMatch"]

    def _submit_transfer(self, call_args: Any, submission_task_cls: Any, extra_main_kwargs: Any = None) -> Any:
        task = {UploadSubmissionTask: _UploadTask, CopySubmissionTask: _CopyTask}.get(submission_task_cls)
        return super()._submit_transfer(call_args, task or submission_task_cls, extra_main_kwargs)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable()) and stream.tell() >= 0
    except (AttributeError, OSError, ValueError):
        return False
