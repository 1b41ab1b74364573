"""The ``fs`` blueprint: serves stored files when ``FS_SERVE`` is true, under ``FS_PREFIX``.

Backends hand over a :class:`~flask_fs.serving.ServedFile` (a stream, its size, type and
validators); the response is built here once for every backend, by Werkzeug's ``send_file``
machinery: Content-Type, ETag, Last-Modified, 304 answers to conditional requests, 206 and 416
answers to Range requests. Files are never allowed to act in the application's origin: every
response carries ``X-Content-Type-Options: nosniff`` and a sandboxing ``Content-Security-Policy``,
and only the types of :data:`INLINE_TYPES` are shown inline; everything else is an attachment.
"""

from __future__ import annotations

import posixpath
import unicodedata
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, current_app, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from . import serving, signals
from .backends import BaseBackend, file_not_found
from .backends.legacy import LegacyBackend
from .errors import FileNotFound, InvalidFileName
from .serving import ServedFile

bp = Blueprint("fs", __name__)

#: Sent with every served file: no script, no plugin, no form, no same-origin access.
SANDBOX_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox"

#: The types a browser displays without running anything in them, which are served inline: raster
#: images, audio, video and plain text. Every other type (HTML, SVG, any ``+xml``, XML, JavaScript,
#: PDF, unknown types...) is sent as an attachment.
INLINE_TYPES = frozenset(
    [
        "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp", "image/x-icon",
        "image/vnd.microsoft.icon", "image/apng", "image/tiff",
        "audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg", "audio/opus", "audio/flac", "audio/x-flac",
        "audio/wav", "audio/x-wav", "audio/wave", "audio/webm",
        "video/mp4", "video/webm", "video/ogg", "video/mpeg", "video/quicktime",
        "text/plain",
    ]
)  # fmt: skip


@bp.route("/<fs>/<path:filename>")
def get_file(fs: str, filename: str) -> Any:
    """Serve ``filename`` from storage ``fs``: 404 when serving is off for it or either is unknown.

    ``<NAME>_FS_SERVE`` decides for one storage, else ``FS_SERVE``; left unset (the default outside
    debug), storages without a URL of their own are served, so the URLs they hand out work.
    """
    storage = current_app.extensions["fs"].storages.get(fs)
    if storage is None:
        abort(404)
    serve = storage.config.get("serve", current_app.config.get("FS_SERVE"))
    if serve is None:
        serve = not storage.has_url
    if not serve:
        abort(404)
    try:
        with signals.observed(storage, "serve", filename, signals.file_served) as event:
            response = storage.serve(filename)
            event["status"] = response.status_code
    except (FileNotFound, InvalidFileName):
        abort(404)
    return response


def serve_file(backend: BaseBackend, filename: str) -> Response:
    """The response for a stored file (``filename`` already clean), built from ``open_served``.

    A backend that overrides Flask-FS 0.6.1's hooks (a third-party backend, a test double) is
    obeyed as 0.6.1 did: its own ``exists()`` decides the 404, its own ``serve()`` the response
    (which still gets the safety headers).
    """
    if not _builtin(backend, "exists") and not backend.exists(filename):
        raise file_not_found(filename)
    if not _builtin(backend, "serve"):
        return protect(current_app.make_response(backend.serve(filename)), filename)
    return send_served(backend.open_served(filename), filename)


def _builtin(backend: BaseBackend, method: str) -> bool:
    """Whether ``backend.<method>`` is flask_fs's own code (which agrees with ``open_served``)."""
    if isinstance(backend, LegacyBackend):  # a Flask-FS backend: its hooks decide
        return False
    function = getattr(getattr(backend, method), "__func__", None)
    return (getattr(function, "__module__", None) or "").startswith("flask_fs.backends")


def send_served(served: ServedFile, filename: str) -> Response:
    """A safe response for an opened file: 200, or 304, 206 or 416 as the request's headers ask.

    With a known ``size``, Werkzeug answers Range requests, seeking the stream when it can (see
    :class:`~flask_fs.serving.ServedFile`); ``etag`` is the strong ETag.
    """
    response = send_file(
        served.stream, mimetype=served.mime, conditional=False, etag=False, last_modified=served.modified
    )
    if served.size is not None:
        response.content_length = served.size
    if served.etag:
        response.set_etag(served.etag)
    try:
        response = response.make_conditional(request.environ, accept_ranges=True, complete_length=served.size)
    except HTTPException:  # 416: no body will be sent
        response.close()
        raise
    return protect(response, filename)


def protect(response: Response, filename: str) -> Response:
    """Add the headers that keep a served file from running in our origin.

    Whether it is an attachment depends on the type the response declares, not on the name: only
    :data:`INLINE_TYPES` may be displayed. The file name is quoted by Werkzeug (RFC 6266, with an
    RFC 5987 ``filename*`` for non-ASCII names).
    """
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = SANDBOX_CSP
    inline = (response.mimetype or "").lower() in INLINE_TYPES
    if not inline or "Content-Disposition" not in response.headers:
        name = posixpath.basename(filename)
        try:
            name.encode("ascii")
            params = {"filename": name}
        except UnicodeEncodeError:
            ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
            params = {"filename": ascii_name, "filename*": "UTF-8''" + quote(name, safe="!#$&+-.^_`|~")}
        response.headers.set("Content-Disposition", "inline" if inline else "attachment", **params)
    return response


serving.set_responder(send_served)
