"""Extension presets and the containers that decide which uploads a storage accepts."""

from __future__ import annotations

from collections.abc import Iterable

TEXT = ["txt"]
DOCUMENTS = "rtf odf ods gnumeric abw doc docx xls xlsx".split()
IMAGES = "jpg jpe jpeg png gif svg bmp webp".split()
AUDIO = "wav mp3 aac ogg oga flac".split()
DATA = "csv ini json plist xml yaml yml".split()
SCRIPTS = "js php pl py rb sh bat".split()
ARCHIVES = "gz bz2 zip tar tgz txz 7z".split()
EXECUTABLES = "so exe dll".split()
DEFAULTS = TEXT + DOCUMENTS + IMAGES + DATA

#: Extensions a browser may execute or render as a document: served as attachments, sandboxed.
ACTIVE_CONTENT = frozenset("svg svgz html htm xhtml xht xml xsl xslt js mjs".split())


class All:
    """Contains every extension: ``Storage('x', ALL)`` accepts any file."""

    def __contains__(self, item: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALL"


class AllExcept:
    """Contains every extension but the given ones: ``AllExcept(SCRIPTS + EXECUTABLES)``."""

    def __init__(self, items: Iterable[str]) -> None:
        self.items = frozenset(item.lower() for item in items)

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and item.lower() not in self.items

    def __repr__(self) -> str:
        return f"AllExcept({sorted(self.items)!r})"


ALL = All()
NONE: list[str] = []


def extension(filename: str) -> str:
    """The lower-cased final extension, without its dot (``'a.php.PNG'`` gives ``'png'``)."""
    base = filename.rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem.strip(".") else ""


def lowered(extensions: Iterable[str] | All | AllExcept) -> frozenset[str] | All | AllExcept:
    """Normalise a plain extension collection for case-insensitive checks; keep ALL/AllExcept."""
    if isinstance(extensions, (All, AllExcept)) or not isinstance(extensions, Iterable):
        return extensions
    return frozenset(ext.lower().lstrip(".") for ext in extensions)
