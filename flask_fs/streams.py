"""Streams: bounded-memory copies, spooled writers, ranged remote readers and size limits.

Everything here works on plain binary file objects and imports neither Flask nor any backend
client, so backends, the upload intake and the field core share one implementation.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import IO, Any

from .errors import BackendError, FileTooLarge

#: Read and copy buffer size: large enough for throughput, small enough for bounded memory.
CHUNK_SIZE = 1024 * 1024
#: Writers opened with ``open(name, 'wb')`` keep this much in memory before spilling to disk.
SPOOL_SIZE = 8 * 1024 * 1024


class Reader(io.RawIOBase):
    """A readable raw stream whose subclasses only implement ``read(size)``."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


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

    def discard(self) -> None:
        """Drop what was written: closing will store nothing."""
        self._discard = True

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self._discard = self._discard or exc_type is not None
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


class TextWriter(io.TextIOWrapper):
    """A text writer whose failed ``with`` block discards the content, like its binary writer's."""

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.buffer.__exit__(exc_type, *rest)  # discards; this wrapper is closed with its buffer
        self.close()


class RangedReader(Reader):
    """A remote object as a seekable binary file, over streamed (ranged) GETs.

    ``reopen(position)`` returns a body streaming the object from ``position`` (anything with
    ``read(n)`` and ``close()``): it runs at the first read when no ``body`` was given, and after a
    seek, so seeking costs nothing until the next read. Client exceptions go through: the backend's
    ``translate_error`` turns them into flask_fs errors.
    """

    def __init__(self, size: int, reopen: Callable[[int], Any], body: Any = None) -> None:
        super().__init__()
        self.size, self._reopen, self._body, self._position = size, reopen, body, 0

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
        if size is None or size < 0:  # the rest in one read: one buffer, unless the body comes short
            first = self.read(self.size - self._position)
            rest = b"".join(iter(lambda: self.read(CHUNK_SIZE), b"")) if first else b""
            return first + rest if rest else first
        wanted = min(size, self.size - self._position)
        if wanted <= 0:
            return b""
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

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        """Yield the rest of the object in chunks of up to ``chunk_size`` bytes, then close."""
        with self:
            while chunk := self.read(chunk_size):
                yield chunk

    def _drop_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            with suppress(Exception):  # closing a half-read response may fail; nothing is left to free then
                body.close()

    def close(self) -> None:
        self._drop_body()
        super().close()


def skip(f: IO[bytes], count: int) -> None:
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


class LimitedReader(Reader):
    """Reads through ``stream`` and raises FileTooLarge once more than ``limit`` bytes came."""

    def __init__(self, stream: IO[bytes], limit: int, what: str = "this storage") -> None:
        super().__init__()
        self._stream, self._limit, self._what, self._count = stream, limit, what, 0
        self._origin = stream.tell() if stream.seekable() else 0

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(-1 if size is None else size)
        self._count += len(data)
        if self._count > self._limit:
            raise too_large(self._limit, self._what)
        return data

    def readall(self) -> bytes:
        return self.read()

    def seekable(self) -> bool:
        return self._stream.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self._stream.seek(offset, whence)
        self._count = position - self._origin
        return position

    def tell(self) -> int:
        return self._stream.tell()

    def fileno(self) -> int:
        """The descriptor of the file on disk read through: for a backend that sends, straight from the
        file, bytes it has already read (and so counted) through this reader."""
        fd = disk_fd(self._stream)
        if fd is None:
            raise io.UnsupportedOperation("fileno")
        return fd


class LimitedWriter(io.BufferedIOBase):
    """A writer that refuses to grow past ``limit`` bytes: the write raises FileTooLarge and the
    wrapped writer is discarded (``discard()``), so closing it stores nothing."""

    def __init__(self, writer: IO[bytes], limit: int, what: str = "this storage") -> None:
        super().__init__()
        self._writer, self._limit, self._what, self._count = writer, limit, what, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        self._count += memoryview(data).nbytes
        if self._count > self._limit:
            discard = getattr(self._writer, "discard", None)
            if discard is not None:
                discard()
            raise too_large(self._limit, self._what)
        return self._writer.write(data)

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None and hasattr(self._writer, "discard"):
            self._writer.discard()
        self.close()

    def close(self) -> None:
        if not self.closed:
            try:
                self._writer.close()
            finally:
                super().close()


def too_large(limit: int, what: str) -> FileTooLarge:
    """The FileTooLarge error for a size limit, in bytes and MiB."""
    shown = f"{limit} bytes" + (f" ({limit / 1048576:.1f} MiB)" if limit >= 1048576 else "")
    return FileTooLarge(f"files in {what} are limited to {shown}")


def sha256_hex(chunks: Iterable[bytes]) -> str:
    """The SHA-256 (hex) of a stream's chunks, e.g. a stored file's ``read_chunks()``."""
    hashed = hashlib.sha256()
    for chunk in chunks:
        hashed.update(chunk)
    return hashed.hexdigest()


def disk_fd(stream: Any) -> int | None:
    """The descriptor of the regular file on disk that ``stream`` reads, else None. A spooled file
    still in memory stays there (asking its ``fileno()`` would write it to disk)."""
    if getattr(stream, "_rolled", True) is False:
        return None
    try:
        fd = stream.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


def peek(stream: IO[bytes], size: int) -> tuple[bytes, IO[bytes]]:
    """The first ``size`` bytes of ``stream``, and a stream that still yields them.

    A seekable stream is rewound; a one-way stream is chained after the bytes already read.
    """
    if stream.seekable():
        start = stream.tell()
        head = stream.read(size)
        stream.seek(start)
        return head, stream
    head = stream.read(size)
    return head, _Chained(head, stream)


class _Chained(Reader):
    """``head`` followed by the rest of a one-way ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head, self._stream = head, stream

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            head, self._head = self._head, b""
            return head + self._stream.read()
        if self._head:
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._stream.read(size)


def spooled(stream: IO[bytes]) -> IO[bytes]:
    """A seekable copy of a one-way stream (in memory up to :data:`SPOOL_SIZE`, then on disk)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE)  # noqa: SIM115 - the caller closes it
    copy_stream(stream, spool)
    spool.seek(0)
    return spool
