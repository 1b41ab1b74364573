"""Driving a backend written for Flask-FS 0.6 (or a test double of one) from a flask_fs storage.

Flask-FS backends always overwrite and leave missing files to the caller: its ``Storage`` asked
``exists()`` before reading, opening for reading, serving or writing without ``overwrite``, then
called ``save(file_or_wfs, filename)``, ``write(filename, content)``, ``read(filename)``... with no
other argument. :class:`LegacyBackend` makes exactly those calls, so a test that patches
:class:`~flask_fs.backends.mock.MockBackend` (the class, or one of its methods) sees Flask-FS's
calls. Their ``exists()``-then-write is not race-free, unlike flask_fs's own backends, which are
never wrapped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, BinaryIO

from ..errors import FileExists, OperationNotSupported
from . import BaseBackend, file_not_found
from .mock import MockBackend


def adapt(name: str, config: Mapping[str, Any], backend: Any) -> BaseBackend:
    """``backend`` itself if it is a flask_fs backend, else wrapped in a :class:`LegacyBackend`."""
    if isinstance(backend, BaseBackend) and not isinstance(backend, MockBackend):
        return backend
    return LegacyBackend(name, config, backend)


class LegacyBackend(BaseBackend):
    """A flask_fs backend calling a Flask-FS 0.6 one (``wrapped``) the way Flask-FS's Storage did."""

    takes_uploads = True

    def __init__(self, name: str, config: Mapping[str, Any], wrapped: Any) -> None:
        super().__init__(name, config)
        self.wrapped = wrapped

    def __getattr__(self, attribute: str) -> Any:  # the wrapped backend's own attributes (client, ...)
        if "wrapped" not in self.__dict__:
            raise AttributeError(attribute)
        return getattr(self.__dict__["wrapped"], attribute)

    @property
    def root(self) -> Any:
        return getattr(self.wrapped, "root", None)

    def _must_exist(self, filename: str) -> None:
        if not self.wrapped.exists(filename):
            raise file_not_found(filename)

    def _must_not_exist(self, filename: str, overwrite: bool) -> None:
        if not overwrite and self.wrapped.exists(filename):
            raise FileExists(f"{filename!r} exists")

    def exists(self, filename: str) -> bool:
        return self.wrapped.exists(filename)

    def open(self, filename: str, mode: str = "r", **kwargs: Any) -> Any:
        if "r" in mode:
            self._must_exist(filename)
        return self.wrapped.open(filename, mode, **kwargs)

    def open_read(self, filename: str) -> BinaryIO:
        return self.open(filename, "rb")

    def read(self, filename: str) -> bytes:
        self._must_exist(filename)
        return self.wrapped.read(filename)

    def write(self, filename: str, content: Any, overwrite: bool = False) -> None:
        self._must_not_exist(filename, overwrite)
        self.wrapped.write(filename, content)

    def save(self, file_or_wfs: Any, filename: str, overwrite: bool = False, **kwargs: Any) -> None:
        self._must_not_exist(filename, overwrite)
        self.wrapped.save(file_or_wfs, filename)

    def delete(self, filename: str) -> None:
        self.wrapped.delete(filename)

    def copy(self, source: str, target: str, overwrite: bool = False) -> None:
        self._must_not_exist(target, overwrite)
        self.wrapped.copy(source, target)

    def move(self, source: str, target: str, overwrite: bool = False) -> None:
        self._must_not_exist(target, overwrite)
        self.wrapped.move(source, target)

    def list_files(self) -> Any:
        return self.wrapped.list_files()

    def metadata(self, filename: str) -> dict[str, Any]:
        return dict(self.wrapped.metadata(filename))

    def path(self, filename: str) -> str:
        """Flask-FS's rule: the backend's ``root`` joined with the name; OperationNotSupported without one."""
        if not self.root:
            raise OperationNotSupported(f"backend {type(self.wrapped).__name__} has no local paths")
        return os.path.join(self.root, filename)

    def serve(self, filename: str) -> Any:
        """What the wrapped backend's ``serve`` returns (the view asked ``exists()`` first, as
        Flask-FS's did, and turns it into a response)."""
        return self.wrapped.serve(filename)
