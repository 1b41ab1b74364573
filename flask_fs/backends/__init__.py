"""The backend contract, and discovery of backends through the ``fs.backend`` entry points.

A backend stores bytes under storage-relative names that :mod:`flask_fs.names` has already
checked. To write one, subclass :class:`BaseBackend`, implement the six methods marked
*required*, and register the class in your distribution's metadata::

    [project.entry-points."fs.backend"]
    mystore = "my_package.backend:MyStoreBackend"

Everything else (text modes, ``read``, ``write``, chunked and ranged reads, copy, move, serving
with Range and ETag) has a working default built on those six, which a backend may override
when its server can do better.
"""

from __future__ import annotations

import io
import mimetypes
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext, suppress
from importlib.metadata import EntryPoint, entry_points
from typing import IO, Any, BinaryIO

from ..errors import BackendError, ConfigurationError, FileNotFound, OperationNotSupported

ENTRY_POINT_GROUP = "fs.backend"
#: Read and copy buffer size: large enough for throughput, small enough for bounded memory.
CHUNK_SIZE = 1024 * 1024
#: Writers opened with ``open(name, 'wb')`` keep this much in memory before spilling to disk.
SPOOL_SIZE = 8 * 1024 * 1024

Content = bytes | str


class BaseBackend:
    """Stores files for one storage. ``config`` holds that storage's resolved settings."""

    #: Settings without which the backend cannot work: ``init_app`` fails early when one is unset.
    required: tuple[str, ...] = ()
    #: Default values of this backend's settings (lower-case keys).
    defaults: Mapping[str, Any] = {}
    #: Whether ``save(..., headers=...)`` stores the headers and the server sends them back with the
    #: file (object stores); backends without it accept ``headers`` and ignore them.
    keeps_headers: bool = False

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        from ..config import Config

        self.name = name
        self.config = Config(self.defaults)  # a backend built directly, with some keys only, gets the defaults
        self.config.update(config)

    # -- required -------------------------------------------------------------------------------

    def exists(self, filename: str) -> bool:
        """Whether ``filename`` is stored. *Required.*"""
        raise NotImplementedError

    def open_read(self, filename: str) -> BinaryIO:
        """A binary file object streaming the content; raise FileNotFound if absent. *Required.*"""
        raise NotImplementedError

    def save(
        self,
        file_or_wfs: IO[bytes],
        filename: str,
        overwrite: bool = False,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Stream a binary file object into ``filename`` in bounded memory. *Required.*

        Readers must never see a partial file under ``filename``. With ``overwrite`` false, raise
        FileExists if the name is taken, without a race between the check and the write where
        the server allows it.

        ``headers`` are HTTP headers to serve the file with, by name (any case): Content-Type,
        Cache-Control, Content-Encoding, Content-Disposition, Content-Language, Expires; ``x-amz-acl``
        is an S3 canned ACL; other names are user metadata (``x-amz-meta-`` / ``X-Object-Meta-``
        prefix optional). A backend whose server keeps them sets :attr:`keeps_headers`; the others
        ignore them. Storage passes ``headers`` only when some are given.
        """
        raise NotImplementedError

    def delete(self, filename: str) -> None:
        """Remove the file ``filename``; if there is no such file, remove the files below ``filename/``
        (a folder, as Flask-FS did), never a name that merely starts with it. Removing an absent file
        is not an error. *Required.*"""
        raise NotImplementedError

    def list_files(self) -> Iterator[str]:
        """Yield every stored name (nested names use ``/``). *Required.*"""
        raise NotImplementedError

    def metadata(self, filename: str) -> dict[str, Any]:
        """``checksum`` (``'algo:hex'``), ``size``, ``mime``, ``modified`` (aware datetime). *Required.*"""
        raise NotImplementedError

    # -- defaults built on the above --------------------------------------------------------------

    def open(self, filename: str, mode: str = "r", **kwargs: Any) -> IO:
        """Open a file: ``r``/``rb`` stream the content, ``w``/``wb`` (replace) and ``x``/``xb``
        (fail if it exists) write it when the file object is closed without error."""
        if mode not in ("r", "rb", "w", "wb", "x", "xb"):
            raise ValueError(f"unsupported mode {mode!r}: use r, rb, w, wb, x or xb")
        if mode.startswith("r"):
            stream = self.open_read(filename)
            return stream if mode == "rb" else io.TextIOWrapper(stream, **kwargs)
        writer = SpooledWriter(lambda f: self.save(f, filename, overwrite=mode[0] == "w"))
        return writer if mode.endswith("b") else io.TextIOWrapper(writer, **kwargs)

    def read(self, filename: str) -> bytes:
        """The whole content, as bytes."""
        with self.open_read(filename) as f:
            return f.read()

    def write(self, filename: str, content: Content | IO[bytes], overwrite: bool = False) -> None:
        """Store ``content``: bytes, str (encoded as UTF-8), or a binary file or ``FileStorage`` (streamed)."""
        stream = content if hasattr(content, "read") else io.BytesIO(self.as_binary(content))  # type: ignore[arg-type]
        self.save(stream, filename, overwrite=overwrite)  # type: ignore[arg-type]

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Yield the bytes ``start`` to ``end`` (exclusive; ``None`` is the end) in chunks."""
        with self.open_read(filename) as f:
            if start:
                if f.seekable():
                    f.seek(start)
                else:
                    _skip(f, start)
            remaining = None if end is None else max(end - start, 0)
            while remaining is None or remaining > 0:
                chunk = f.read(chunk_size if remaining is None else min(chunk_size, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def copy(self, source: str, target: str, overwrite: bool = False) -> None:
        """Copy ``source`` to ``target`` by streaming it through this process."""
        with self.open_read(source) as f:
            self.save(f, target, overwrite=overwrite)

    def move(self, source: str, target: str, overwrite: bool = False) -> None:
        """Move ``source`` to ``target``: copy, then delete the source."""
        self.copy(source, target, overwrite=overwrite)
        self.delete(source)

    def path(self, filename: str) -> str:
        """The file's path on the local disk, for backends that have one."""
        raise OperationNotSupported(f"backend {type(self).__name__} has no local paths")

    def signed_url(self, filename: str, expires: int) -> str:
        """A URL granting temporary read access without credentials, for ``expires`` seconds."""
        raise OperationNotSupported(f"backend {type(self).__name__} cannot sign URLs")

    def serve(self, filename: str) -> Any:
        """A Flask response streaming the file, answering Range and conditional requests."""
        from ..views import send_stream

        meta = self.metadata(filename)
        return send_stream(self.open_read(filename), filename, meta)

    def list_metadata(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(name, metadata)`` for every stored file: at least ``size``, and ``checksum`` and
        ``modified`` where known. Object stores override it to read them from their listing (an
        ``etag:`` checksum is the MD5 when it has 32 hex digits); this default asks file by file."""
        for name in self.list_files():
            try:
                yield name, self.metadata(name)
            except FileNotFound:  # deleted since the listing
                continue

    def check(self) -> None:
        """Raise an FSError unless the server is reachable with the configured credentials."""
        next(iter(self.list_files()), None)

    @staticmethod
    def as_binary(content: Content, encoding: str = "utf8") -> bytes:
        """Encode text content for a binary write."""
        return content.encode(encoding) if isinstance(content, str) else content

    @staticmethod
    def guess_type(filename: str) -> str:
        """The MIME type of a name, ``application/octet-stream`` when unknown."""
        return mimetypes.guess_type(filename)[0] or "application/octet-stream"


class SpooledWriter(io.BufferedIOBase):
    """A writable binary file that hands its content to ``commit`` when closed without error.

    It spools in memory up to :data:`SPOOL_SIZE` then on disk, so writing a large file through
    ``storage.open(name, 'wb')`` stays in bounded memory. Leaving a ``with`` block by an exception
    discards the content instead of storing half of it.
    """

    def __init__(self, commit: Callable[[IO[bytes]], None]) -> None:
        super().__init__()
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE)  # noqa: SIM115 - closed in close()
        self._commit = commit
        self._discard = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed file")
        return self._spool.write(data)

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self._discard = exc_type is not None
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._discard:
                self._spool.seek(0)
                self._commit(self._spool)
        finally:
            self._spool.close()
            super().close()


class RangedReader(io.RawIOBase):
    """A remote object as a seekable binary file, over streamed (ranged) GETs.

    ``reopen(position)`` returns a body streaming the object from ``position`` (anything with
    ``read(n)`` and ``close()``): it runs at the first read when no ``body`` was given, and after a
    seek, so seeking costs nothing until the next read. ``errors()`` wraps every server call, to turn
    client exceptions into flask_fs errors.
    """

    def __init__(
        self,
        size: int,
        reopen: Callable[[int], Any],
        body: Any = None,
        errors: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        super().__init__()
        self.size, self._reopen, self._body, self._errors, self._position = size, reopen, body, errors, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = (offset, self._position + offset, self.size + offset)[whence]
        if position < 0:
            raise ValueError("negative seek position")
        if position != self._position:
            self._drop_body()
            self._position = position
        return position

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed file")
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK_SIZE), b""))
        wanted = min(size, self.size - self._position)
        if wanted <= 0:
            return b""
        with self._errors():
            if self._body is None:
                self._body = self._reopen(self._position)
            data = self._body.read(wanted)
            if not data:
                raise BackendError(f"the server ended the download at byte {self._position} of {self.size}")
            if self._position + len(data) >= self.size:
                self._body.read(1)  # at the end: lets the client check the length and checksum it got
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _drop_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            with suppress(Exception):  # closing a half-read response may fail; nothing is left to free then
                body.close()

    def close(self) -> None:
        self._drop_body()
        super().close()


def _skip(f: IO[bytes], count: int) -> None:
    while count > 0:
        chunk = f.read(min(count, CHUNK_SIZE))
        if not chunk:
            return
        count -= len(chunk)


def copy_stream(source: IO[bytes], target: IO[bytes]) -> int:
    """Copy ``source`` into ``target`` in bounded chunks; return the byte count."""
    total = 0
    while chunk := source.read(CHUNK_SIZE):
        total += len(chunk)
        target.write(chunk)
    return total


def available_backends() -> dict[str, EntryPoint]:
    """The installed backends by name, from the ``fs.backend`` entry points (not imported yet)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_backend(name: str) -> type[BaseBackend]:
    """Import the backend class registered as ``name``; ConfigurationError if there is none."""
    backends = available_backends()
    if name not in backends:
        installed = ", ".join(sorted(backends)) or "none"
        raise ConfigurationError(f"unknown backend {name!r}; installed backends: {installed}")
    try:
        cls = backends[name].load()
    except ImportError as exc:
        raise ConfigurationError(
            f"backend {name!r} cannot be imported ({exc}); install its extra: pip install 'flask-fs-storages[{name}]'"
        ) from exc
    if isinstance(cls, type) and not issubclass(cls, BaseBackend) or not callable(cls):
        # not a class: a test double (``mocker.patch('flask_fs.backends.mock.MockBackend')``), driven as Flask-FS's
        raise ConfigurationError(f"entry point {name!r} does not name a BaseBackend subclass")
    return cls


def file_not_found(filename: str) -> FileNotFound:
    """The error every backend raises for a missing file."""
    return FileNotFound(f"no file named {filename!r}")
