"""Backends made of two backends: a mirror (migrations without downtime) and a promotion cache.

:class:`MirrorBackend` writes to a primary and a secondary backend and reads from the primary,
falling back to the secondary for files not copied yet. :class:`PromotedBackend` keeps the uploads
saved in the background in a fast cache until a job moves them to the target, and reads them from
there meanwhile, so a file is readable (and served) from the moment ``save`` returns.

Both answer for the backend they wrap: its settings, and its own attributes (``root``, ``bucket``...).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, BinaryIO, TypeVar

from ..errors import BackendError, FileExists, FileNotFound
from ..serving import ServedFile
from ..streams import CHUNK_SIZE
from . import BaseBackend

__all__ = ["MirrorBackend", "PrefixedBackend", "PromotedBackend"]

T = TypeVar("T")


class _Layered(BaseBackend):
    """A backend in front of ``main``: unknown attributes are ``main``'s."""

    declares_settings = True

    def __init__(self, main: BaseBackend) -> None:  # no super().__init__: the settings are main's, resolved
        self.main = main
        self.name = main.name
        self.config = main.config
        self.keeps_headers = main.keeps_headers

    def __getattr__(self, name: str) -> Any:
        if name == "main":  # not set yet (unpickling): do not recurse
            raise AttributeError(name)
        return getattr(self.main, name)

    def _fallbacks(self, filename: str) -> Iterator[BaseBackend]:
        """The backends to try after ``main`` missed ``filename``, in order (asked only on a miss)."""
        raise NotImplementedError

    def _read(self, filename: str, operation: Callable[[BaseBackend], T]) -> T:
        """``operation`` on ``main``, else (missing there, or its server down) on each fallback.

        Files ``main`` has cost nothing more than the operation itself. When every backend fails,
        the error is a server's failure if there was one, else the last FileNotFound.
        """
        try:
            return operation(self.main)
        except (FileNotFound, BackendError) as missed:
            error = missed
        for backend in self._fallbacks(filename):
            try:
                return operation(backend)
            except (FileNotFound, BackendError) as missed:
                error = error if isinstance(error, BackendError) else missed
        raise error

    # -- reading, from the first backend that has the file ---------------------------------------

    def exists(self, filename: str) -> bool:
        try:
            return self._read(filename, lambda b: b.exists(filename) or _missing(filename))
        except FileNotFound:
            return False

    def open_read(self, filename: str) -> BinaryIO:
        return self._read(filename, lambda b: b.open_read(filename))

    def read(self, filename: str) -> bytes:
        return self._read(filename, lambda b: b.read(filename))

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        def first_chunk(backend: BaseBackend) -> tuple[list[bytes], Iterator[bytes]]:
            chunks = backend.read_chunks(filename, chunk_size, start, end)
            return list(itertools.islice(chunks, 1)), chunks  # a missing file raises here, not in the caller's loop

        head, rest = self._read(filename, first_chunk)
        return itertools.chain(head, rest)

    def metadata(self, filename: str) -> dict[str, Any]:
        return self._read(filename, lambda b: b.metadata(filename))

    def open_served(self, filename: str) -> ServedFile:
        return self._read(filename, lambda b: b.open_served(filename))

    def path(self, filename: str) -> str:
        return self._read(filename, lambda b: _existing_path(b, filename))

    def signed_url(self, filename: str, expires: int) -> str:
        return self.main.signed_url(filename, expires)

    def list_metadata(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.main.list_metadata()

    def check(self) -> None:
        self.main.check()

    def clean_stale(self, grace: float) -> list[str]:
        return self.main.clean_stale(grace)

    def close(self) -> None:
        for backend in self._owned():
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    def _owned(self) -> tuple[BaseBackend, ...]:
        """The backends this one closes (not a mirror's secondary: another storage's backend)."""
        return (self.main,)


def _missing(filename: str) -> bool:
    raise FileNotFound(f"no file named {filename!r}")


def _existing_path(backend: BaseBackend, filename: str) -> str:
    path = backend.path(filename)
    if not backend.exists(filename):
        raise FileNotFound(f"no file named {filename!r}")
    return path


class MirrorBackend(_Layered):
    """Writes go to ``primary`` then ``secondary``; reads come from ``primary``, else ``secondary``.

    Used while moving a storage to a new backend: point the app at the mirror, copy the files with
    ``flask fs migrate``, then switch to the new backend alone.
    """

    def __init__(self, primary: BaseBackend, secondary: BaseBackend) -> None:
        super().__init__(primary)
        self.secondary = secondary

    def __repr__(self) -> str:
        return f"<MirrorBackend {self.main!r} -> {self.secondary!r}>"

    def _fallbacks(self, filename: str) -> Iterator[BaseBackend]:
        yield self.secondary
        # The primary again last: a migration may copy the file there and delete it from the
        # secondary between the first two reads.
        yield self.main

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        extra = {"headers": headers} if headers else {}
        self.main.save(file_or_wfs, filename, overwrite=overwrite, **extra)
        with self.main.open_read(filename) as stored:  # the bytes as stored, streamed: no second copy in memory
            self.secondary.save(stored, filename, overwrite=True, **extra)

    def delete(self, filename: str) -> None:
        self.main.delete(filename)
        self.secondary.delete(filename)

    def list_files(self) -> Iterator[str]:
        seen = set()
        for name in self.main.list_files():
            seen.add(name)
            yield name
        for name in self.secondary.list_files():
            if name not in seen:
                yield name


class PromotedBackend(_Layered):
    """``target``, plus the files saved in the background that wait in ``cache`` for their promotion.

    ``pending(name)`` tells whether a job still holds ``name`` in the cache; ``promote(name, headers)``
    records and hands out that job. Reads try the target; only on a miss do they ask the journal,
    then the cache, then the target again (the job writes the target before it removes the cached
    copy, so one of them always has the file): reading promoted files costs nothing more.
    """

    def __init__(
        self,
        target: BaseBackend,
        cache: BaseBackend,
        pending: Callable[[str], bool],
        promote: Callable[[str, Mapping[str, str] | None], Any],
    ) -> None:
        super().__init__(target)
        self.cache = cache
        self.pending = pending
        self._promote = promote

    def __repr__(self) -> str:
        return f"<PromotedBackend {self.main!r} via {self.cache!r}>"

    def _fallbacks(self, filename: str) -> Iterator[BaseBackend]:
        if self.pending(filename):
            yield self.cache
        # The target again last: the promotion may finish (target written, cached copy removed)
        # between the first read and the journal lookup.
        yield self.main

    def _owned(self) -> tuple[BaseBackend, ...]:
        return (self.main, self.cache)

    def clean_stale(self, grace: float) -> list[str]:
        return self.main.clean_stale(grace) + [f"cache: {item}" for item in self.cache.clean_stale(grace)]

    @property
    def background(self) -> _BackgroundSaver:
        """What ``save(..., background=True)`` writes through (see :class:`_BackgroundSaver`)."""
        return _BackgroundSaver(self)

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        extra = {"headers": headers} if headers else {}
        self.main.save(file_or_wfs, filename, overwrite=overwrite, **extra)
        if self.pending(filename):  # the waiting promotion must carry these bytes, not the older ones
            with self.main.open_read(filename) as stored:
                self.cache.save(stored, filename, overwrite=True)
            if not self.pending(filename):  # promoted meanwhile: nothing will take this copy
                self.cache.delete(filename)

    def delete(self, filename: str) -> None:
        self.cache.delete(filename)
        self.main.delete(filename)

    def copy(self, source: str, target: str, overwrite: bool = False) -> None:
        if self.pending(source):
            BaseBackend.copy(self, source, target, overwrite=overwrite)
        else:
            self.main.copy(source, target, overwrite=overwrite)

    def move(self, source: str, target: str, overwrite: bool = False) -> None:
        if self.pending(source):
            BaseBackend.move(self, source, target, overwrite=overwrite)
        else:
            self.main.move(source, target, overwrite=overwrite)

    def list_files(self) -> Iterator[str]:
        waiting = {name for name in self.cache.list_files() if self.pending(name)}
        for name in self.main.list_files():
            if name not in waiting:
                yield name
        yield from sorted(waiting)

    def save_later(
        self, stream: IO[bytes], filename: str, overwrite: bool = False, headers: Mapping[str, str] | None = None
    ) -> None:
        """Store the upload in the cache and hand out its promotion; FileExists if the name is taken."""
        if not overwrite and self.main.exists(filename):
            raise FileExists(f"{filename!r} already exists")
        self.cache.save(stream, filename, overwrite=overwrite)
        self._promote(filename, dict(headers) if headers else None)

    def promote(self, filename: str, headers: Mapping[str, str] | None = None) -> None:
        """Move ``filename`` from the cache to the target (idempotent: nothing to do once it is there).

        The target's save is atomic (no partial object under the final name); the cached copy is
        removed only after it, and only if it is still the one uploaded: a copy replaced meanwhile
        (a newer save of the same name) is uploaded in its turn.
        """
        extra = {"headers": headers} if headers else {}
        while True:
            try:
                served = self.cache.open_served(filename)  # the stream, and a validator of this version
            except FileNotFound:
                return  # promoted already, or deleted since: either way nothing is left to move
            with served.stream as stream:
                self.main.save(stream, filename, overwrite=True, **extra)
            current = self._cached_version(filename)
            if current is None:
                return
            if current == served.etag:
                self.cache.delete(filename)
                return

    def _cached_version(self, filename: str) -> str | None:
        """The validator of the cached copy of ``filename``, None if there is none."""
        try:
            served = self.cache.open_served(filename)
        except FileNotFound:
            return None
        served.stream.close()
        return served.etag or ""


class _BackgroundSaver:
    """The ``save`` that ``BoundStorage.save(..., background=True)`` calls: into the cache, promoted later."""

    def __init__(self, backend: PromotedBackend) -> None:
        self.backend = backend

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.backend.save_later(file_or_wfs, filename, overwrite, headers)


class PrefixedBackend(BaseBackend):
    """The files of ``backend`` below ``prefix/``, named without it (a storage's corner of a shared cache)."""

    declares_settings = True

    def __init__(self, backend: BaseBackend, prefix: str) -> None:  # no super().__init__: backend's settings
        self.backend = backend
        self.prefix = prefix.strip("/") + "/"
        self.name = backend.name
        self.config = backend.config

    def __repr__(self) -> str:
        return f"<PrefixedBackend {self.prefix!r} of {self.backend!r}>"

    def exists(self, filename: str) -> bool:
        return self.backend.exists(self.prefix + filename)

    def open_read(self, filename: str) -> BinaryIO:
        return self.backend.open_read(self.prefix + filename)

    def read(self, filename: str) -> bytes:
        return self.backend.read(self.prefix + filename)

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        return self.backend.read_chunks(self.prefix + filename, chunk_size, start, end)

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.backend.save(file_or_wfs, self.prefix + filename, overwrite=overwrite)

    def delete(self, filename: str) -> None:
        self.backend.delete(self.prefix + filename)

    def list_files(self) -> Iterator[str]:
        for name in self.backend.list_files():
            if name.startswith(self.prefix):
                yield name[len(self.prefix) :]

    def metadata(self, filename: str) -> dict[str, Any]:
        return self.backend.metadata(self.prefix + filename)

    def open_served(self, filename: str) -> ServedFile:
        return self.backend.open_served(self.prefix + filename)

    def path(self, filename: str) -> str:
        return self.backend.path(self.prefix + filename)
