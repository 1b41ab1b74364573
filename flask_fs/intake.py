"""Upload intake: the one place that turns what a caller hands over into a checked stream and name.

``Storage.save``, the model fields and every later feature accept uploads through :func:`accept`:

1. **unwrap** a Werkzeug ``FileStorage``, a binary file object, ``bytes`` or ``str``;
2. **name** it: an explicit ``filename`` must be safe, a client-side name is sanitised, then the
   folder (``upload_to``/``prefix``) is prepended;
3. check the **extension policy** (the storage's ``file_allowed`` hook);
4. enforce the **size limit** while the bytes stream, never after buffering them;
5. check the **content**: the type is read from the first bytes (puremagic's signature database),
   and a file whose content contradicts its extension (a GIF or an HTML page named ``x.jpg``) is
   refused. On by default for storages that accept only images (``<NAME>_FS_CHECK_CONTENT``).

It imports no Flask: a worker or a script uses it as the request path does.
"""

from __future__ import annotations

import io
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import puremagic

from . import names
from .errors import ContentMismatch, UnauthorizedFileType
from .files import extension
from .streams import LimitedReader, peek

__all__ = ["Policy", "Upload", "accept", "check_head", "content_matches", "sniff", "unwrap"]

#: How many leading bytes the content check reads (every signature puremagic knows fits in it).
SNIFF_SIZE = 8192
#: MIME types a browser may run as a document: a text file must not turn out to be one of them.
_ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "application/xml", "text/xml"})
_TEXTUAL_TYPES = frozenset({"application/json", "application/xml", "application/yaml", "application/x-yaml"})


@dataclass(frozen=True)
class Policy:
    """What a storage accepts: ``allowed(upload, basename)`` decides on the extension."""

    storage: str
    allowed: Callable[[Any, str], bool]
    max_size: int | None = None
    check_content: bool = False


@dataclass
class Upload:
    """An accepted upload: the stream to store (size-limited, content-checked) and its final name.

    ``original`` is the object the caller gave when ``stream`` reads it unchanged (no limit, no
    check wrapped it): Flask-FS backends are handed that, as Flask-FS did.
    """

    stream: IO[bytes]
    filename: str
    original: Any = None


def unwrap(source: Any) -> tuple[IO[bytes], str]:
    """The binary stream and client-side name of a FileStorage, a file object, bytes or str."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source), ""
    if isinstance(source, str):
        return io.BytesIO(source.encode("utf-8")), ""
    stream = getattr(source, "stream", None)
    if stream is not None and hasattr(source, "filename"):  # a Werkzeug FileStorage
        return stream, source.filename or ""
    if not hasattr(source, "read"):
        raise TypeError(f"cannot store a {type(source).__name__}: give a file object, an upload, bytes or str")
    return source, os.path.basename(str(getattr(source, "name", "") or ""))


def accept(source: Any, filename: str | None, folder: str | None, policy: Policy) -> Upload:
    """Check an upload against ``policy`` and return the stream to store and its name.

    Raises InvalidFileName, UnauthorizedFileType, ContentMismatch, or (while the stream is read)
    FileTooLarge.
    """
    stream, client_name = unwrap(source)
    if filename is None:
        filename = names.secure_upload_name(client_name)
    name = names.join(folder, filename) if folder else names.clean(filename)
    basename = name.rpartition("/")[2]
    if not policy.allowed(source, basename):
        raise UnauthorizedFileType(
            f"files of type {extension(basename) or '(none)'!r} are not allowed in {policy.storage!r}"
        )
    unwrapped = stream
    if policy.check_content:
        head, stream = peek(stream, SNIFF_SIZE)
        check_head(head, basename)
    if policy.max_size is not None:
        stream = LimitedReader(stream, policy.max_size, repr(policy.storage))
    original = source if stream is unwrapped and hasattr(source, "read") else None
    return Upload(stream, name, original)


def check_head(head: bytes, basename: str) -> None:
    """Raise ContentMismatch unless content starting with ``head`` may be stored as ``basename``."""
    if not content_matches(head, basename):
        found = ", ".join(sorted({mime for _, mime in sniff(head) if mime})) or "unrecognised data"
        raise ContentMismatch(f"the content of {basename!r} is not what its extension says (found: {found})")


def sniff(head: bytes) -> list[tuple[str, str]]:
    """``(extension, mime)`` candidates for content starting with ``head``; empty when unknown."""
    if not head:
        return []
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return []
    return [(match.extension.lstrip(".").lower(), match.mime_type) for match in matches]


def content_matches(head: bytes, filename: str) -> bool:
    """Whether content starting with ``head`` may be stored under ``filename``.

    A binary format must be recognised as itself (by extension or MIME type); a text format (whose
    signature nobody can check) only must not turn out to be an HTML or SVG document.
    """
    ext = extension(filename)
    declared = mimetypes.guess_type(filename)[0]
    candidates = sniff(head)
    if any(ext == found or (declared and declared == mime) for found, mime in candidates):
        return True
    if declared is None or _is_textual(declared):
        return not any(mime in _ACTIVE_TYPES for _, mime in candidates)
    return False


def _is_textual(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXTUAL_TYPES or mime.endswith(("+json", "+xml"))
