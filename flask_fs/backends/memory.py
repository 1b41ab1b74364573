"""The ``memory`` backend: files in this process's memory, for tests and demos.

Each storage of each app gets its own empty set of files, so tests never see each other's files
and need no cleanup. Setting ``namespace`` (``FS_MEMORY_NAMESPACE``, or ``<NAME>_FS_NAMESPACE``)
makes the storages of the same name in every app of the process share their files instead, like
processes sharing a bucket. Contents are immutable ``bytes``: a reader keeps the version it opened,
and a write replaces a file in one step under a lock, so nobody ever sees half of it.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO

from ..errors import FileExists
from . import BaseBackend, Setting, copy_stream, file_not_found


@dataclass(frozen=True)
class _File:
    content: bytes
    checksum: str
    modified: datetime


@dataclass
class _Files:
    """One storage's files, and the lock that makes each change atomic."""

    files: dict[str, _File] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


#: The shared file sets, by (namespace, storage name).
_NAMESPACES: dict[tuple[str, str], _Files] = {}
_NAMESPACES_LOCK = threading.Lock()


class MemoryBackend(BaseBackend):
    """Files kept in memory: private to this backend instance unless ``namespace`` is set."""

    settings = (
        Setting(
            "namespace",
            str,
            shown_default="none: private files",
            doc="Storages (of any app) with the same namespace and name share their files.",
        ),
    )

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        namespace = config.get("namespace")
        if namespace:
            with _NAMESPACES_LOCK:
                self._store = _NAMESPACES.setdefault((str(namespace), name), _Files())
        else:
            self._store = _Files()

    def _get(self, filename: str) -> _File:
        try:
            return self._store.files[filename]
        except KeyError:
            raise file_not_found(filename) from None

    def exists(self, filename: str) -> bool:
        return filename in self._store.files

    def open_read(self, filename: str) -> BinaryIO:
        return io.BytesIO(self._get(filename).content)  # shares the bytes: no copy until written to

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        buffer = io.BytesIO()
        copy_stream(file_or_wfs, buffer)  # read it all before taking the lock: a slow upload blocks nobody
        content = buffer.getvalue()
        entry = _File(content, "sha256:" + hashlib.sha256(content).hexdigest(), datetime.now(UTC))
        with self._store.lock:
            if not overwrite and filename in self._store.files:
                raise FileExists(f"{filename!r} exists in storage {self.name!r}")
            self._store.files[filename] = entry

    def delete(self, filename: str) -> None:
        with self._store.lock:
            self._store.files.pop(filename, None)

    def list_files(self) -> Iterator[str]:
        with self._store.lock:
            return iter(sorted(self._store.files))

    def metadata(self, filename: str) -> dict[str, Any]:
        entry = self._get(filename)
        return {
            "checksum": entry.checksum,
            "size": len(entry.content),
            "mime": self.guess_type(filename),
            "modified": entry.modified,
        }

    def copy(self, source: str, target: str, overwrite: bool = False) -> None:
        """Copy in one step: the target shares the source's (immutable) content."""
        self._relink(source, target, overwrite, keep_source=True)

    def move(self, source: str, target: str, overwrite: bool = False) -> None:
        """Rename in one step."""
        self._relink(source, target, overwrite, keep_source=False)

    def _relink(self, source: str, target: str, overwrite: bool, keep_source: bool) -> None:
        with self._store.lock:
            entry = self._get(source)
            if not overwrite and target in self._store.files:
                raise FileExists(f"{target!r} exists in storage {self.name!r}")
            if not keep_source:
                del self._store.files[source]
            elif source != target:
                entry = _File(entry.content, entry.checksum, datetime.now(UTC))
            self._store.files[target] = entry
