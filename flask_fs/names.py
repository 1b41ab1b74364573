"""Storage-relative names: the one place that decides which names are safe.

A name is a ``/``-separated relative path such as ``'avatars/2024/me.png'``. Every storage
operation passes its names through :func:`clean`, so no backend ever sees a name that could
escape its root. A name is refused (:class:`~flask_fs.errors.InvalidFileName`) when it

- is empty, not a ``str``, longer than 1024 UTF-8 bytes, or has a segment longer than 255 bytes;
- is absolute (``/etc/passwd``) or starts with a drive (``C:x``);
- contains a backslash, a double quote, a NUL or another control character (C0, DEL, C1), or a lone
  surrogate (a quote or a line break in a name could break out of an HTTP header or a quoted path);
- has an empty segment (``a//b``) or a segment made only of dots and spaces (``.``, ``..``,
  ``...``, ``'.. '``: some systems strip trailing dots and spaces, turning them into ``..``);
- would break one of these rules once compatibility-normalised (NFKC): ``'．．／x'`` with
  fullwidth dots and slash becomes ``'../x'`` in any tool that applies NFKC.

Accepted names are returned in NFC form, so ``'é'`` typed either way names one file. Anything else
is kept literally: ``'%2e%2e%2f'`` is a harmless name of nine characters (URLs quote it again), and
Windows device names (``con``, ``nul.txt``) are ordinary names on the Linux hosts and object
stores flask_fs targets.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata

from .errors import InvalidFileName

#: Longest accepted name, in UTF-8 bytes (S3's key limit); one segment is limited to 255 bytes.
MAX_NAME_BYTES = 1024
MAX_SEGMENT_BYTES = 255

_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f-\x9f\\"]')
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# What an uploaded file name may keep: letters and digits of any script, and a few safe marks.
_UNSAFE_UPLOAD = re.compile(r"[^\w.\-+@]+")
_SEPARATORS = re.compile(r"[\\/]")


def clean(name: object) -> str:
    """Return ``name`` in NFC form if it is a safe storage-relative name, else raise InvalidFileName."""
    if not isinstance(name, str):
        raise InvalidFileName(f"file names must be str, not {type(name).__name__}")
    if name.isascii():  # the common case: no normalisation to do, one pass per check
        if not name.isprintable() or "\\" in name or '"' in name:
            raise InvalidFileName(f"control character, backslash or double quote in file name {name!r}")
        if (  # fast path for one plain segment: the checks of _check_structure, inline
            "/" not in name
            and name.strip(". ")
            and len(name) <= MAX_SEGMENT_BYTES
            and not (name[1:2] == ":" and name[0] in _ASCII_LETTERS)
        ):
            return name
        _check_structure(name, len(name))
        return name
    name = unicodedata.normalize("NFC", name)
    if _FORBIDDEN.search(name):
        raise InvalidFileName(f"control character, backslash or double quote in file name {name!r}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidFileName(f"file name {name!r} is not valid Unicode") from None
    _check_structure(name, size)
    compatible = unicodedata.normalize("NFKC", name)
    if compatible != name:
        if _FORBIDDEN.search(compatible):
            raise InvalidFileName(f"file name {name!r} turns into a control character, backslash or quote under NFKC")
        _check_structure(compatible, 0)
    return name


def _check_structure(name: str, size: int) -> None:
    """Refuse empty, absolute, too long names and empty or dots-only segments."""
    if not name:
        raise InvalidFileName("empty file name")
    if name[0] == "/" or (name[1:2] == ":" and name[0] in _ASCII_LETTERS):
        raise InvalidFileName(f"absolute file name {name!r}: names are relative to the storage")
    if size > MAX_NAME_BYTES:
        raise InvalidFileName(f"file name longer than {MAX_NAME_BYTES} bytes")
    for segment in name.split("/") if "/" in name else (name,):
        if not segment.strip(". "):
            raise InvalidFileName(f"file name {name!r} has an empty segment or one made only of dots and spaces")
        if len(segment) > MAX_SEGMENT_BYTES // 4 and len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise InvalidFileName(f"a segment of {name!r} is longer than {MAX_SEGMENT_BYTES} bytes")


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
    name such as ``'照片.jpg'`` does not lose its stem. Folders, leading dots and unsafe characters go;
    the result always passes :func:`clean`.
    """
    name = unicodedata.normalize("NFC", filename or "")
    name = _SEPARATORS.split(name)[-1]
    name = _UNSAFE_UPLOAD.sub("_", name).strip("._-")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem, ext = stem.strip("._-") or default, ext[:32]
    name = f"{stem}.{ext}" if ext else stem
    while len(name.encode("utf-8")) > MAX_SEGMENT_BYTES:
        stem = stem[:-1] or default
        name = f"{stem}.{ext}" if ext else stem
    for candidate in (name, f"{default}.{ext}"):  # letters whose compatibility form is unsafe go
        try:
            return clean(candidate)
        except InvalidFileName:
            continue
    return clean(default)
