"""Our own upload endpoint, for backends that cannot presign (local, gridfs, memory), and the Flask glue.

``init_app`` registers it at ``<FS_PREFIX>/.uploads/<storage>/<token>`` (a storage name has no dot,
so it never shadows a served file). It accepts nothing without a valid, unused token, and streams
every body to the backend in bounded memory, under the token's pending name:

* ``PUT``: the whole file in one request (what :func:`~flask_fs.uploads.presign` hands out);
* the **tus 1.0** core protocol with the *creation* extension, so that a dropped connection loses
  nothing: ``POST`` with ``Upload-Length`` creates the upload at the same URL, ``HEAD`` tells its
  ``Upload-Offset``, ``PATCH`` (``application/offset+octet-stream``) appends from that offset. Each
  PATCH is kept as a part object (what arrived before a connection dropped is kept too), and the
  parts are joined into the pending object when the last byte arrives. PATCHes of one upload are
  serialised within a process. Across processes the upload's state is one object written whole,
  so of two concurrent PATCHes at the same offset one is kept and the other's part is left for
  ``flask fs clean``; its client finds the offset moved (409) and asks again.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from typing import IO, Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_from_directory, url_for
from werkzeug.exceptions import ClientDisconnected

from . import uploads
from .backends import BaseBackend
from .bound import BoundStorage
from .errors import (
    FileNotFound,
    FileTooLarge,
    FSError,
    OperationNotSupported,
    UploadTokenExpired,
    UploadTokenInvalid,
    UploadTokenUsed,
)
from .streams import CHUNK_SIZE, LimitedReader, Reader, too_large

#: Also gives templates the ``flask_fs/upload.html`` macros.
_HERE = os.path.join(os.path.dirname(__file__), "uploads")
bp = Blueprint("fs_uploads", __name__, template_folder=os.path.join(_HERE, "templates"))
_ASSETS = os.path.join(_HERE, "assets")

TUS_VERSION = "1.0.0"
#: HTTP status for each refused token: forged or foreign 403, expired 410, already used 409.
TOKEN_STATUS = {UploadTokenExpired: 410, UploadTokenUsed: 409, UploadTokenInvalid: 403}

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def presign(bound: BoundStorage, name_hint: str, **options: Any) -> dict[str, Any]:
    """:func:`flask_fs.uploads.presign` with the app's secret and this endpoint's URLs."""
    return uploads.presign(bound, current_app.secret_key, name_hint, endpoint_url=endpoint_url, **options)


def finalize(bound: BoundStorage, token: str) -> str:
    """:func:`flask_fs.uploads.finalize` with the app's secret."""
    return uploads.finalize(bound, current_app.secret_key, token)


def endpoint_url(storage: str, token: str) -> str:
    """The URL of this endpoint for a token (a path, or absolute outside a request with ``SERVER_NAME``)."""
    return url_for("fs_uploads.receive", storage=storage, token=token)


def status_for(exc: Exception) -> int:
    """The HTTP status an app answers for a refused direct upload (token errors, missing upload, 413, 400)."""
    for cls, status in TOKEN_STATUS.items():
        if isinstance(exc, cls):
            return status
    if isinstance(exc, FileNotFound):
        return 404
    if isinstance(exc, FileTooLarge):
        return 413
    if isinstance(exc, OperationNotSupported):
        return 501
    return 400


@bp.route("/.uploads/_/fs-upload.js")
def script() -> Response:
    """The browser client, ``fs-upload.js`` (``_`` is no storage name). A view rather than the
    blueprint's static folder, which static publishing would copy with the app's own files."""
    return send_from_directory(_ASSETS, "fs-upload.js", mimetype="text/javascript", max_age=3600)


def _ticket(storage: str, token: str) -> tuple[BoundStorage, uploads.Ticket]:
    declared = current_app.extensions["fs"].storages.get(storage)
    if declared is None:
        abort(404)
    bound = declared.bind()
    try:
        return bound, uploads.verify(bound, current_app.secret_key, token)
    except UploadTokenInvalid as exc:
        abort(_tus(Response(str(exc), status_for(exc), mimetype="text/plain")))


def _tus(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/.uploads/<storage>/<token>", methods=["PUT", "POST", "HEAD", "PATCH", "OPTIONS"])
def receive(storage: str, token: str) -> Response:
    """Receive a direct upload: PUT the whole file, or the tus 1.0 core protocol."""
    if request.method == "OPTIONS":
        bound, ticket = _ticket(storage, token)
        response = _tus(Response(status=204))
        response.headers.update({"Tus-Version": TUS_VERSION, "Tus-Extension": "creation"})
        if ticket.max_size is not None:
            response.headers["Tus-Max-Size"] = str(ticket.max_size)
        return response
    bound, ticket = _ticket(storage, token)
    request.max_content_length = ticket.max_size  # the token's limit, not the app's form limit
    if request.method == "PUT":
        return _put(bound, ticket)
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        response = _tus(Response("Tus-Resumable: 1.0.0 is required", 412))
        response.headers["Tus-Version"] = TUS_VERSION
        return response
    if request.method == "POST":
        return _create(bound, ticket)
    with _lock(ticket.id):
        state = _state(bound.backend, ticket)
        if state is None:
            return _tus(Response("no such upload: create it with POST first", 404))
        offset = sum(size for _, size in state["parts"])
        if request.method == "HEAD":
            response = _tus(Response(status=200))
            response.headers.update({"Upload-Offset": str(offset), "Upload-Length": str(state["length"])})
            return response
        return _patch(bound, ticket, state, offset)


@bp.route("/.uploads/<storage>/<token>/parts", methods=["POST"])
def parts(storage: str, token: str) -> Response:
    """A resumable upload to an object store: JSON ``{"size": n}`` in; the part size, the parts
    already stored and presigned URLs for the missing ones out (:func:`flask_fs.uploads.presign_parts`)."""
    declared = current_app.extensions["fs"].storages.get(storage)
    if declared is None:
        abort(404)
    size = (request.get_json(silent=True) or {}).get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        return Response('send {"size": <bytes>} as JSON', 400)
    try:
        result = uploads.presign_parts(declared.bind(), current_app.secret_key, token, size)
    except FSError as exc:
        return Response(str(exc), status_for(exc), mimetype="text/plain")
    return jsonify(result)


def _put(bound: BoundStorage, ticket: uploads.Ticket) -> Response:
    length = request.content_length
    if ticket.max_size is not None and length is not None and length > ticket.max_size:
        return Response(f"the upload is limited to {ticket.max_size} bytes", 413)
    stream: IO[bytes] = request.stream
    if ticket.max_size is not None:
        stream = LimitedReader(stream, ticket.max_size, repr(bound.name))
    try:
        bound.backend.save(stream, ticket.pending, overwrite=True)
    except FileTooLarge as exc:
        return Response(str(exc), 413)
    except ClientDisconnected:
        return Response("the connection dropped before the whole body arrived", 400)
    return Response(status=204)


def _state(backend: BaseBackend, ticket: uploads.Ticket) -> dict[str, Any] | None:
    try:
        return json.loads(backend.read(ticket.state))
    except FileNotFound:
        return None


def _create(bound: BoundStorage, ticket: uploads.Ticket) -> Response:
    try:
        length = int(request.headers["Upload-Length"])
    except (KeyError, ValueError):
        return _tus(Response("Upload-Length is required (creation with a deferred length is not supported)", 400))
    if length < 0 or (ticket.max_size is not None and length > ticket.max_size):
        return _tus(Response(f"the upload is limited to {ticket.max_size} bytes", 413))
    if ticket.size is not None and length != ticket.size:
        return _tus(Response(f"this token is for {ticket.size} bytes, not {length}", 400))
    with _lock(ticket.id):
        state = _state(bound.backend, ticket)
        if state is None:  # a second POST with the same token continues the same upload
            bound.backend.write(ticket.state, json.dumps({"length": length, "parts": []}), overwrite=True)
        elif state["length"] != length:
            return _tus(Response(f"this upload was created for {state['length']} bytes", 409))
    response = _tus(Response(status=201))
    response.headers["Location"] = request.base_url
    return response


def _patch(bound: BoundStorage, ticket: uploads.Ticket, state: dict[str, Any], offset: int) -> Response:
    if request.mimetype != "application/offset+octet-stream":
        return _tus(Response("PATCH bodies are application/offset+octet-stream", 415))
    try:
        claimed = int(request.headers["Upload-Offset"])
    except (KeyError, ValueError):
        return _tus(Response("Upload-Offset is required", 400))
    if claimed != offset:
        response = _tus(Response(f"the upload is at offset {offset}, not {claimed}", 409))
        response.headers["Upload-Offset"] = str(offset)
        return response
    backend, remaining = bound.backend, state["length"] - offset
    length = request.content_length
    if length is not None and length > remaining:
        return _tus(Response(f"only {remaining} bytes are missing", 413))
    part = f"{ticket.part_prefix()}{offset:015d}-{secrets.token_hex(4)}"
    received = _Received(request.stream, remaining)
    try:
        backend.save(received, part, overwrite=True)
    except FileTooLarge as exc:
        backend.delete(part)
        return _tus(Response(str(exc), 413))
    if received.count:
        state["parts"].append([part, received.count])
        backend.write(ticket.state, json.dumps(state), overwrite=True)
    else:
        backend.delete(part)
    offset += received.count
    if offset == state["length"]:
        _assemble(backend, ticket, [name for name, _ in state["parts"]])
    response = _tus(Response(status=204))
    response.headers["Upload-Offset"] = str(offset)
    return response


def _assemble(backend: BaseBackend, ticket: uploads.Ticket, parts: list[str]) -> None:
    """Join the parts into the pending object, then remove them (the state last: HEAD keeps working)."""
    backend.save(_Joined(backend, parts), ticket.pending, overwrite=True)
    for name in parts:
        backend.delete(name)
    with _locks_guard:
        _locks.pop(ticket.id, None)


class _Received(Reader):
    """A request body read until its end or until the client goes away, counting what came;
    FileTooLarge past ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__()
        self._stream, self._limit, self.count = stream, limit, 0

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self._stream.read(CHUNK_SIZE if size is None or size < 0 else size)
        except (ClientDisconnected, ConnectionError, TimeoutError):
            return b""  # keep what arrived: the client resumes from there
        self.count += len(data)
        if self.count > self._limit:
            raise too_large(self._limit, "this upload")
        return data


class _Joined(Reader):
    """The parts of an upload read one after the other, as one stream."""

    def __init__(self, backend: BaseBackend, parts: list[str]) -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = (chunk for name in parts for chunk in backend.read_chunks(name))
        self._pending = b""

    def read(self, size: int | None = -1) -> bytes:
        size = CHUNK_SIZE if size is None or size < 0 else size
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = chunk
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def _lock(upload_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(upload_id, threading.Lock())
