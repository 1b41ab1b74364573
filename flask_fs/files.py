"""Extension presets and the containers that decide which uploads a storage accepts."""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Iterable

TEXT = ["txt"]
DOCUMENTS = ["rtf", "odf", "ods", "gnumeric", "abw", "doc", "docx", "xls", "xlsx"]
IMAGES = ["jpg", "jpe", "jpeg", "png", "gif", "svg", "bmp", "webp"]
AUDIO = ["wav", "mp3", "aac", "ogg", "oga", "flac"]
DATA = ["csv", "ini", "json", "plist", "xml", "yaml", "yml"]
SCRIPTS = ["js", "php", "pl", "py", "rb", "sh", "bat"]
ARCHIVES = ["gz", "bz2", "zip", "tar", "tgz", "txz", "7z"]
EXECUTABLES = ["so", "exe", "dll"]
DEFAULTS = TEXT + DOCUMENTS + IMAGES + DATA


class All:
    """Contains every extension: ``Storage('x', ALL)`` accepts any file."""

    def __contains__(self, item: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALL"


class AllExcept:
    """Contains every extension but the given ones: ``AllExcept(SCRIPTS + EXECUTABLES)``."""

    def __init__(self, items: Iterable[str] | str) -> None:
        items = [items] if isinstance(items, str) else items  # AllExcept('exe') is one extension, not 3 letters
        self.items = frozenset(item.lower() for item in items)

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and item.lower() not in self.items

    def __repr__(self) -> str:
        return f"AllExcept({sorted(self.items)!r})"


ALL = All()
NONE: list[str] = []


def extension(filename: str) -> str:
    """The lower-cased final extension, without its dot (``'a.php.PNG'`` gives ``'png'``)."""
    stem, dot, ext = filename.rpartition(".")
    if not dot or "/" in ext:  # no dot, or only in a folder name
        return ""
    stem = stem.rpartition("/")[2]
    return ext.lower() if stem.strip(".") else ""


def lowered(extensions: Iterable[str] | All | AllExcept) -> frozenset[str] | All | AllExcept:
    """Normalise a plain extension collection for case-insensitive checks; keep ALL/AllExcept."""
    if isinstance(extensions, (All, AllExcept)) or not isinstance(extensions, Iterable):
        return extensions
    return frozenset(ext.lower().lstrip(".") for ext in extensions)


def lower_extension(filename: str) -> str:
    """``filename`` with its extension lower-cased (``'ARCHIVE.TAR.GZ'`` gives ``'ARCHIVE.TAR.gz'``)."""
    stem, ext = posixpath.splitext(filename)
    return stem + ext.lower()


def mime(filename: str, default: str | None = None) -> str | None:
    """The MIME type guessed from a name or URL, or ``default`` when unknown."""
    return mimetypes.guess_type(filename)[0] or default
