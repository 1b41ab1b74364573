"""The orphan sweep: files of a storage that no row or document references any more.

Adapters say which names their records reference (:func:`flask_fs.mongo.referenced_files`,
:func:`flask_fs.sqla.referenced_files`); this module compares them with the storage's listing. A file
modified less than ``grace`` ago is never an orphan: its row may be in a transaction not committed yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["DEFAULT_GRACE", "find_orphans", "stored_names"]

#: Files younger than this are left alone.
DEFAULT_GRACE = timedelta(hours=24)


def stored_names(value: Any) -> Iterator[str]:
    """Every string inside a stored field value (a name, a dict of names, lists of them): what it may reference."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from stored_names(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from stored_names(item)


def find_orphans(
    listing: Iterable[tuple[str, dict[str, Any]]],
    referenced: set[str],
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, metadata)`` of the listed files not referenced and last modified before ``now - grace``.

    A file whose modification time is unknown counts as new: it is never reported.
    """
    cutoff = (now or datetime.now(UTC)) - grace
    for name, meta in listing:
        if name in referenced:
            continue
        modified = meta.get("modified")
        if not isinstance(modified, datetime):
            continue
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        if modified <= cutoff:
            yield name, meta
