"""Direct uploads: the browser sends a file to the object store (or our upload endpoint), never
through the app's own views, and the app accepts it afterwards.

1. :func:`presign` (``storage.presign_upload``) checks the name against the storage's policy and
   hands out a signed **token** naming the final name, the largest size, the type and a random
   *pending* name under ``UPLOAD_PREFIX``, with what the browser needs to send the bytes there: an
   S3 presigned POST, or our own endpoint (:mod:`flask_fs.upload_views`, plain PUT or tus 1.0).
2. :func:`finalize` (``storage.finalize``) checks the token, that the pending object exists, its
   size (and SHA-256 when announced), its content by the intake's rules (extension, signature,
   image limits), then moves it to its final name. Whatever is refused is deleted.

Tokens are signed with itsdangerous (``UPLOAD_SECRET``, by default the app's ``SECRET_KEY``) and
bound to one storage, one name, one size limit. Replays are refused through a marker object,
``<UPLOAD_PREFIX>/<id>.used``, created (without overwriting: the backend's create-only write
makes two concurrent finalizes of one token race safely) when a token is finalized; the marker
lives in the storage itself, so it holds across processes and servers. ``flask fs clean`` sweeps
markers, abandoned uploads and tus parts older than its grace period (:func:`sweep`).

Nothing here imports Flask: the Flask layer passes the secret and the endpoint's URL builder.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import intake, names
from ..errors import (
    ConfigurationError,
    FileExists,
    FileNotFound,
    FSError,
    OperationNotSupported,
    UnauthorizedFileType,
    UploadIncomplete,
    UploadTokenExpired,
    UploadTokenInvalid,
    UploadTokenUsed,
)
from ..files import IMAGES, extension
from ..streams import CHUNK_SIZE, sha256_hex, too_large

if TYPE_CHECKING:
    from ..bound import BoundStorage

__all__ = ["Ticket", "finalize", "presign", "presign_parts", "sweep", "verify"]

#: The largest object one S3 POST or PUT may create: the size limit when none is set.
SINGLE_UPLOAD_LIMIT = 5 * 1024**3
#: Smallest part of a resumable S3 upload (S3's minimum is 5 MiB), and the most parts S3 takes.
PART_SIZE, MAX_PARTS = 8 * 1024**2, 10_000
#: The name of a pending upload inside its folder, and the file name a form POST must give its file.
PENDING_NAME = "file"
_SALT = "flask_fs.upload"
_IMAGE_EXTENSIONS = frozenset(IMAGES)
#: Defaults of the ``UPLOAD_EXPIRES`` and ``UPLOAD_PREFIX`` settings.
DEFAULT_EXPIRES, DEFAULT_PREFIX = 3600, ".uploads"
#: Builds the URL of our own upload endpoint for a storage and a token.
EndpointURL = Callable[[str, str], str]


@dataclass(frozen=True)
class Ticket:
    """What a valid token grants: one upload to ``pending``, to become ``filename`` in ``storage``."""

    id: str
    storage: str
    filename: str
    pending: str
    max_size: int | None
    size: int | None
    sha256: str | None
    content_type: str
    expires: int
    issued: float

    @property
    def _base(self) -> str:
        return posixpath.dirname(self.pending)

    @property
    def marker(self) -> str:
        """The object whose existence says the token was finalized (outside the folder the client writes to)."""
        return f"{self._base}.used"

    @property
    def state(self) -> str:
        """The object holding a tus upload's length and parts (see :mod:`flask_fs.upload_views`)."""
        return f"{self._base}.tus"

    def part_prefix(self) -> str:
        """Where the tus parts of this upload are stored (see :mod:`flask_fs.upload_views`)."""
        return f"{self._base}.parts/"


def pending_prefix(config: Mapping[str, Any]) -> str:
    """The folder (ending with ``/``) where a storage's direct uploads wait for ``finalize``."""
    return (config.get("upload_prefix") or DEFAULT_PREFIX).strip("/") + "/"


def lifetime(config: Mapping[str, Any]) -> int:
    """How long a storage's upload tokens last, in seconds."""
    return int(config.get("upload_expires") or DEFAULT_EXPIRES)


def _serializer(secret: str | bytes | None, bound: BoundStorage) -> URLSafeTimedSerializer:
    key = bound.config.get("upload_secret") or secret
    if not key:
        raise ConfigurationError(
            f"storage {bound.name!r}: direct uploads need a signing key: set the app's SECRET_KEY "
            f"or {bound.config.names_to_set('upload_secret')}"
        )
    return URLSafeTimedSerializer(key, salt=_SALT)


def presign(
    bound: BoundStorage,
    secret: str | bytes | None,
    name_hint: str,
    *,
    max_size: int | None = None,
    content_type: str | None = None,
    expires: int | None = None,
    size: int | None = None,
    sha256: str | None = None,
    endpoint_url: EndpointURL | None = None,
) -> dict[str, Any]:
    """A signed token and the request that sends the file (see :meth:`flask_fs.Storage.presign_upload`)."""
    declaration = bound.declaration
    folder = declaration.upload_to() if callable(declaration.upload_to) else declaration.upload_to
    basename = names.secure_upload_name(name_hint)
    filename = names.join(folder, basename) if folder else basename
    _check_extension(bound, basename)
    limits = [limit for limit in (max_size, bound.max_size) if limit is not None]
    limit = min(limits) if limits else None
    if size is not None and size < 0:
        raise ValueError(f"size must be a number of bytes, not {size}")
    if size is not None and limit is not None and size > limit:
        raise too_large(limit, repr(bound.name))
    guessed = mimetypes.guess_type(basename)[0]
    if content_type and guessed and content_type.split(";")[0].strip().lower() != guessed:
        raise UnauthorizedFileType(f"{basename!r} is {guessed}, not {content_type}")
    content_type = guessed or content_type or "application/octet-stream"
    seconds = int(expires if expires is not None else lifetime(bound.config))
    upload_id = secrets.token_hex(16)
    # A folder of its own: a form POST (Swift) may name any object below its signed prefix.
    pending = names.join(pending_prefix(bound.config), f"{upload_id}/{PENDING_NAME}")
    payload = {
        "id": upload_id, "s": bound.name, "n": filename, "p": pending, "m": limit, "z": size,
        "h": sha256.lower() if sha256 else None, "t": content_type, "e": seconds,
    }  # fmt: skip
    token = _serializer(secret, bound).dumps(payload)
    target = bound.backend.presign_upload(pending, limit or SINGLE_UPLOAD_LIMIT, content_type, seconds)
    if target is None:
        if endpoint_url is None:
            raise OperationNotSupported(
                f"storage {bound.name!r}: its backend cannot presign uploads, and it is not bound to an app "
                "whose upload endpoint could receive them"
            )
        url = endpoint_url(bound.name, token)
        target = {
            "url": url, "method": "PUT", "fields": {}, "headers": {"Content-Type": content_type},
            "resumable": {"protocol": "tus", "url": url},
        }  # fmt: skip
    elif endpoint_url is not None and hasattr(bound.backend, "presign_parts"):
        target["resumable"] = {"protocol": "s3-multipart", "url": endpoint_url(bound.name, token) + "/parts"}
    return {"fields": {}, "headers": {}, "file_name": PENDING_NAME, **target, "token": token, "filename": filename}


def presign_parts(bound: BoundStorage, secret: str | bytes | None, token: str, size: int) -> dict[str, Any]:
    """For a resumable upload of ``size`` bytes to an object store: ``part_size``, the parts already
    stored (``{number: size}``) and a presigned PUT for each missing part (``{number: url}``).

    Ask again after a dropped connection: only the missing parts come back. ``finalize`` completes
    the upload. OperationNotSupported for backends without multipart uploads.
    """
    ticket = verify(bound, secret, token)
    presigner = getattr(bound.backend, "presign_parts", None)
    if presigner is None:
        raise OperationNotSupported(f"storage {bound.name!r}: its backend has no multipart uploads (use tus)")
    if size < 0 or (ticket.max_size is not None and size > ticket.max_size):
        raise too_large(ticket.max_size or 0, repr(bound.name))
    if ticket.size is not None and size != ticket.size:
        raise UploadIncomplete(f"this token is for {ticket.size} bytes, not {size}")
    part_size = max(PART_SIZE, -(-size // MAX_PARTS))
    remaining = max(1, int(ticket.expires - (time.time() - ticket.issued)))
    return presigner(ticket.pending, size, part_size, ticket.content_type, remaining)


def verify(bound: BoundStorage, secret: str | bytes | None, token: str, *, unused: bool = True) -> Ticket:
    """The ticket a token grants on this storage; UploadTokenInvalid, UploadTokenExpired or (with
    ``unused``) UploadTokenUsed when it grants nothing."""
    serializer = _serializer(secret, bound)
    try:
        payload, issued = serializer.loads(token, return_timestamp=True)
    except (BadSignature, TypeError, ValueError):
        raise UploadTokenInvalid(f"invalid upload token for storage {bound.name!r}") from None
    try:
        ticket = Ticket(
            payload["id"], payload["s"], payload["n"], payload["p"], payload["m"], payload["z"], payload["h"],
            payload["t"], int(payload["e"]), issued.timestamp(),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        raise UploadTokenInvalid(f"invalid upload token for storage {bound.name!r}") from None
    if ticket.storage != bound.name:
        raise UploadTokenInvalid(f"this upload token is for storage {ticket.storage!r}, not {bound.name!r}")
    if time.time() - ticket.issued > ticket.expires:
        raise UploadTokenExpired(f"this upload token for {ticket.filename!r} expired (it lasted {ticket.expires} s)")
    if unused and bound.backend.exists(ticket.marker):
        raise UploadTokenUsed(f"this upload token for {ticket.filename!r} was already used")
    return ticket


def finalize(bound: BoundStorage, secret: str | bytes | None, token: str) -> str:
    """Check a direct upload and move it to its final name, which is returned.

    Raises the token errors, FileNotFound when nothing was uploaded, and the intake's errors
    (FileTooLarge, ContentMismatch, UploadIncomplete, ImageTooLarge, InvalidImage, FileExists), after
    deleting the upload.
    """
    ticket = verify(bound, secret, token)
    backend = bound.backend
    try:
        meta = _uploaded(backend, ticket.pending)
    except FileNotFound:
        raise FileNotFound(f"nothing was uploaded for {ticket.filename!r} with this token") from None
    try:
        backend.write(ticket.marker, b"", overwrite=False)
    except FileExists:
        raise UploadTokenUsed(f"this upload token for {ticket.filename!r} was already used") from None
    try:
        _check(bound, ticket, int(meta["size"]))
        return _move(bound, ticket)
    except BaseException:
        backend.delete(ticket.pending)
        raise
    finally:
        backend.delete(ticket.state)
        _remove_folder(backend, ticket.pending)


def _remove_folder(backend: Any, pending: str) -> None:
    """Remove the pending upload's folder where folders exist apart from files (a local disk)."""
    with suppress(OperationNotSupported, OSError):
        os.rmdir(os.path.dirname(backend.path(pending)))


def _uploaded(backend: Any, pending: str) -> dict[str, Any]:
    """The metadata of the pending object, once a multipart upload to it is completed."""
    try:
        return backend.metadata(pending)
    except FileNotFound:
        complete = getattr(backend, "complete_parts", None)
        if complete is None or not complete(pending):
            raise
    return backend.metadata(pending)


def _check(bound: BoundStorage, ticket: Ticket, size: int) -> None:
    """Size, checksum and content of the pending object, by the intake's rules."""
    if ticket.max_size is not None and size > ticket.max_size:
        raise too_large(ticket.max_size, repr(bound.name))
    if ticket.size is not None and size != ticket.size:
        raise UploadIncomplete(f"{ticket.filename!r}: {size} bytes arrived, {ticket.size} were announced")
    backend = bound.backend
    if ticket.sha256 and sha256_hex(backend.read_chunks(ticket.pending, CHUNK_SIZE)) != ticket.sha256:
        raise UploadIncomplete(f"{ticket.filename!r}: the bytes that arrived do not have the announced SHA-256")
    basename = posixpath.basename(ticket.filename)
    _check_extension(bound, basename)
    if not bound.check_content:
        return
    head = b"".join(backend.read_chunks(ticket.pending, intake.SNIFF_SIZE, 0, intake.SNIFF_SIZE))
    intake.check_head(head, basename)
    if extension(basename) in _IMAGE_EXTENSIONS and extension(basename) != "svg":
        _check_image(bound, ticket.pending)


def _check_extension(bound: BoundStorage, basename: str) -> None:
    """The storage's extension policy (its declaration's ``file_allowed`` hook), as ``save`` applies it."""
    with bound._running():
        if not bound.declaration.file_allowed(None, basename):
            kind = extension(basename) or "(none)"
            raise UnauthorizedFileType(f"files of type {kind!r} are not allowed in {bound.name!r}")


def _check_image(bound: BoundStorage, pending: str) -> None:
    """Decode the image within the storage's pixel limit (InvalidImage, ImageTooLarge); skipped without Pillow."""
    try:
        from ..images import open_image
    except ImportError:  # pragma: no cover - Pillow is the images extra
        return
    with bound.backend.open_read(pending) as stream:
        open_image(stream, bound.config.get("images_max_pixels")).close()


def _move(bound: BoundStorage, ticket: Ticket) -> str:
    """Move the pending object to its final name, or the first free one when the storage renames."""
    declaration = bound.declaration
    target, folder = ticket.filename, posixpath.dirname(ticket.filename)
    if declaration.overwrite or not declaration.rename:
        bound.move(ticket.pending, target, declaration.overwrite)
        return target
    for _ in range(1000):
        try:
            bound.move(ticket.pending, target, False)
            return target
        except FileExists:
            with bound._running():
                target = names.join(folder, declaration.resolve_conflict(folder, posixpath.basename(ticket.filename)))
    raise FileExists(f"no free name for {ticket.filename!r}")


def pending_items(bound: BoundStorage) -> Iterator[tuple[str, datetime | None]]:
    """Every object under the storage's upload prefix, with its modification time."""
    prefix = pending_prefix(bound.config)
    for name, meta in bound.backend.list_metadata():
        if name.startswith(prefix):
            yield name, meta.get("modified")


def sweep(bound: BoundStorage, grace: float) -> list[str]:
    """Delete pending uploads, tus parts and used-token markers untouched for ``grace`` seconds.

    A grace shorter than ``UPLOAD_EXPIRES`` would let a token be finalized again once its marker
    is gone, so the grace used is never shorter than that.
    """
    grace = max(grace, float(lifetime(bound.config)))
    limit = datetime.now(UTC) - timedelta(seconds=grace)
    removed = []
    for name, modified in list(pending_items(bound)):
        if modified is not None and _aware(modified) < limit:
            try:
                bound.backend.delete(name)
            except FSError:
                continue
            removed.append(f"pending upload {name}")
    return removed


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
