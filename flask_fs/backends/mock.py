"""``FS_BACKEND = 'mock'``: a backend that stores nothing, for tests that patch it and check the calls.

As in Flask-FS, tests set ``FS_BACKEND = 'mock'`` and patch the class
(``mocker.patch('flask_fs.backends.mock.MockBackend')``) or one of its methods
(``mocker.patch.object(MockBackend, 'save')``). Storages drive it the way Flask-FS drove its
backends (see :mod:`flask_fs.backends.legacy`): ``exists()`` first, then ``save(file, name)``,
``write(name, content)``, ``read(name)``..., so the calls a test asserts are Flask-FS's.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from . import BaseBackend, file_not_found


class MockBackend(BaseBackend):
    """Holds no file: ``exists`` is false, writes are dropped, reads raise FileNotFound."""

    root: str | None = None
    settings = ()  # reads none: keys of other storages are still checked for typos

    def exists(self, filename: str) -> bool:
        return False

    def open(self, filename: str, mode: str = "r", **kwargs: Any) -> Any:
        if mode.startswith("r"):
            raise file_not_found(filename)
        return io.BytesIO() if "b" in mode else io.StringIO()

    def read(self, filename: str) -> bytes:
        raise file_not_found(filename)

    def write(self, filename: str, content: Any, overwrite: bool = False) -> None:
        """Drop the content."""

    def save(self, file_or_wfs: Any, filename: str, overwrite: bool = False, **kwargs: Any) -> None:
        """Drop the file."""

    def delete(self, filename: str) -> None:
        """Nothing to delete."""

    def list_files(self) -> Iterator[str]:
        return iter(())

    def metadata(self, filename: str) -> dict[str, Any]:
        raise file_not_found(filename)

    def serve(self, filename: str) -> Any:
        raise file_not_found(filename)
