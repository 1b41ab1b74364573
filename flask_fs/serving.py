"""What a backend hands over to serve a file: a stream and the facts an HTTP response needs.

Backends return a :class:`ServedFile` from ``open_served`` and never build responses: the Flask
layer (:mod:`flask_fs.views`) turns it into one, the same way for every backend (Range, ETag,
Last-Modified, 304, 206, 416 and the safety headers). This module has no Flask dependency: the
Flask layer registers its response builder here, for the callers of ``BaseBackend.serve()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from .errors import OperationNotSupported


@dataclass
class ServedFile:
    """A stored file opened for sending.

    ``stream`` is at byte 0 and is closed by whoever sends it. When ``stream.seekable()``, a Range
    request seeks it (a file seek, or a ranged GET from that byte for object stores, sent only once
    the first byte is read); otherwise the bytes before the range are read and dropped. ``size``
    (bytes) makes ranges possible; ``etag`` is a strong validator of this content (a checksum, or
    anything that changes with it) without quotes; ``mime`` is the type to send it with.
    """

    stream: BinaryIO
    size: int | None
    mime: str
    etag: str | None = None
    modified: datetime | None = None


Responder = Callable[[ServedFile, str], Any]
_responder: Responder | None = None


def set_responder(responder: Responder) -> None:
    """Register the web layer's response builder (``flask_fs.views`` does on import)."""
    global _responder
    _responder = responder


def respond(served: ServedFile, filename: str) -> Any:
    """An HTTP response sending ``served`` as ``filename``, from the registered web layer."""
    if _responder is None:
        served.stream.close()
        raise OperationNotSupported("serving files needs flask_fs's Flask layer: call flask_fs.init_app(app) first")
    return _responder(served, filename)
