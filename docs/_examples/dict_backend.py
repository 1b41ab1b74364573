"""A flask_fs backend keeping files in Python dicts: handy for tests and demos, gone at exit."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO

from flask_fs.backends import BaseBackend, copy_stream, file_not_found
from flask_fs.config import Setting
from flask_fs.errors import BackendError, FileExists

#: Every bucket: {filename: (content, modified)}, shared by the storages that name the same bucket.
BUCKETS: dict[str, dict[str, tuple[bytes, datetime]]] = {}
_LOCK = threading.Lock()


class DictBackend(BaseBackend):
    """Files in the in-memory bucket named by the ``bucket`` setting."""

    settings = (
        Setting("bucket", str, required=True, doc="Name of the in-memory bucket holding the files."),
        Setting("max_files", int, 1000, doc="Most files the bucket holds."),
    )

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.files = BUCKETS.setdefault(config["bucket"], {})

    def exists(self, filename: str) -> bool:
        return filename in self.files

    def open_read(self, filename: str) -> BinaryIO:
        try:
            return io.BytesIO(self.files[filename][0])
        except KeyError:
            raise file_not_found(filename) from None

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        buffer = io.BytesIO()
        copy_stream(file_or_wfs, buffer)  # in 1 MiB reads; all of it before storing: nobody sees half a file
        content = buffer.getvalue()
        with _LOCK:  # check and store in one step: of two exclusive saves, exactly one wins
            if not overwrite and filename in self.files:
                raise FileExists(f"{filename!r} exists")
            if filename not in self.files and len(self.files) >= self.config["max_files"]:
                raise BackendError(f"bucket {self.config['bucket']!r} is full")
            self.files[filename] = (content, datetime.now(UTC))

    def delete(self, filename: str) -> None:
        self.files.pop(filename, None)

    def list_files(self) -> Iterator[str]:
        return iter(sorted(self.files))

    def metadata(self, filename: str) -> dict[str, Any]:
        try:
            content, modified = self.files[filename]
        except KeyError:
            raise file_not_found(filename) from None
        return {
            "checksum": "sha256:" + hashlib.sha256(content).hexdigest(),
            "size": len(content),
            "mime": self.guess_type(filename),
            "modified": modified,
        }
