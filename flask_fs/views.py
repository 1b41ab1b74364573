"""The ``fs`` blueprint: serves stored files when ``FS_SERVE`` is true, under ``FS_PREFIX``.

Responses are built by Werkzeug's ``send_file`` machinery: Content-Type, ETag, Last-Modified,
304 answers to conditional requests and 206 answers to Range requests. Files are never allowed
to act in the application's origin: every response carries ``X-Content-Type-Options: nosniff``
and a sandboxing ``Content-Security-Policy``, and active content (HTML, SVG, XML, JS) is sent as
an attachment.
"""

from __future__ import annotations

import posixpath
from typing import IO, Any
from urllib.parse import quote

from flask import Blueprint, abort, current_app, request, send_file
from werkzeug.wrappers import Response

from .errors import FileNotFound, InvalidFileName
from .files import ACTIVE_CONTENT, extension

bp = Blueprint("fs", __name__)

#: Sent with every served file: no script, no plugin, no form, no same-origin access.
SANDBOX_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox"


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
        return storage.serve(filename)
    except (FileNotFound, InvalidFileName):
        abort(404)


def send_stream(stream: IO[bytes], filename: str, meta: dict[str, Any]) -> Response:
    """Send a backend's stream with the size and validators from its metadata.

    With a known ``size``, Werkzeug answers Range requests (skipping or seeking in the stream);
    the checksum is the strong ETag and ``modified`` the Last-Modified date.
    """
    response = send_file(
        stream,
        mimetype=meta.get("mime") or None,
        download_name=posixpath.basename(filename),
        conditional=False,
        etag=False,
        last_modified=meta.get("modified"),
    )
    size = meta.get("size")
    if size is not None:
        response.content_length = size
    if meta.get("checksum"):
        response.set_etag(str(meta["checksum"]).split(":", 1)[-1])
    return response.make_conditional(request.environ, accept_ranges=True, complete_length=size)


def protect(response: Response, filename: str) -> Response:
    """Add the headers that keep a served file from running in our origin."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = SANDBOX_CSP
    if extension(filename) in ACTIVE_CONTENT:
        name = posixpath.basename(filename)
        try:
            name.encode("ascii")
            disposition = f'attachment; filename="{name}"'
        except UnicodeEncodeError:
            disposition = f"attachment; filename*=UTF-8''{quote(name)}"
        response.headers["Content-Disposition"] = disposition
    return response
