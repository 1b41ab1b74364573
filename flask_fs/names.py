"""Storage-relative names: the one place that decides which names are safe.

A name is a ``/``-separated relative path such as ``'avatars/2024/me.png'``. Every storage
operation passes its names through :func:`clean`, so no backend ever sees a name that could
escape its root: no ``..`` or ``.`` segment, no absolute path or drive, no backslash, no NUL or
other control character, no empty segment.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata

from .errors import InvalidFileName

#: Longest accepted name, in UTF-8 bytes (S3's key limit); one segment is limited to 255 bytes.
MAX_NAME_BYTES = 1024
MAX_SEGMENT_BYTES = 255

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")
# What an uploaded file name may keep: letters and digits of any script, and a few safe marks.
_UNSAFE_UPLOAD = re.compile(r"[^\w.\-+@]+")


def clean(name: object) -> str:
    """Return ``name`` in NFC form if it is a safe storage-relative name, else raise InvalidFileName."""
    if not isinstance(name, str):
        raise InvalidFileName(f"file names must be str, not {type(name).__name__}")
    if not name:
        raise InvalidFileName("empty file name")
    name = unicodedata.normalize("NFC", name)
    if _FORBIDDEN.search(name):
        raise InvalidFileName(f"control character or backslash in file name {name!r}")
    if name.startswith("/") or _DRIVE.match(name):
        raise InvalidFileName(f"absolute file name {name!r}: names are relative to the storage")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidFileName(f"file name longer than {MAX_NAME_BYTES} bytes")
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidFileName(f"file name {name!r} has an empty, '.' or '..' segment")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise InvalidFileName(f"a segment of {name!r} is longer than {MAX_SEGMENT_BYTES} bytes")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFileName(f"file name {name!r} is not valid Unicode") from None
    return name


def clean_prefix(prefix: str | None) -> str:
    """Return a folder prefix (``''`` or a clean name), tolerating one trailing slash."""
    if not prefix:
        return ""
    return clean(prefix[:-1] if prefix.endswith("/") else prefix)


def join(prefix: str | None, name: str) -> str:
    """Join a folder prefix and a name, checking both."""
    prefix = clean_prefix(prefix)
    return clean(posixpath.join(prefix, name) if prefix else name)


def secure_upload_name(filename: str | None, default: str = "file") -> str:
    """Turn a client-supplied upload name into one safe segment, keeping its letters and extension.

    Unlike Werkzeug's ``secure_filename`` it keeps non-ASCII letters (``'été.jpg'`` stays), so a
    name such as ``'照片.jpg'`` does not lose its stem. Folders, leading dots and unsafe characters go.
    """
    name = unicodedata.normalize("NFC", filename or "")
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE_UPLOAD.sub("_", name).strip("._-")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem, ext = stem.strip("._-") or default, ext[:32]
    name = f"{stem}.{ext}" if ext else stem
    while len(name.encode("utf-8")) > MAX_SEGMENT_BYTES:
        stem = stem[:-1] or default
        name = f"{stem}.{ext}" if ext else stem
    return name
