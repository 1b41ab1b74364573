"""Files on the local disk, below the storage's ``root``.

Writes are atomic: content goes to an unnamed (``O_TMPFILE``) or hidden temporary file in the
target folder, and only a complete file is linked or renamed to its real name. A crash or a client
that disconnects mid-upload therefore never leaves a truncated file behind. Without
``overwrite``, the final step is ``link()``, which fails if the name exists: two concurrent saves
of one name cannot both win.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import IO, Any, BinaryIO

from flask import send_file

from ..errors import FileExists
from . import BaseBackend, copy_stream, file_not_found

_TEMP_PREFIX = ".~fs-"
_UMASK = os.umask(0o22)
os.umask(_UMASK)
_AT_FDCWD, _AT_EMPTY_PATH = -100, 0x1000
Linker = Callable[[int, str], None]


def _link_empty_path(fd: int, target: str) -> None:
    """``linkat(fd, "", AT_FDCWD, target, AT_EMPTY_PATH)``: give an unnamed file its name."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.linkat(fd, b"", _AT_FDCWD, os.fsencode(target), _AT_EMPTY_PATH) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


def _link_proc(fd: int, target: str) -> None:
    """The unprivileged way to name an unnamed file, through its ``/proc`` link."""
    os.link(f"/proc/self/fd/{fd}", target, follow_symlinks=True)


_linker: Linker | None | bool = False  # False: not probed yet


def _unnamed_linker(folder: str) -> Linker | None:
    """The way this process can link ``O_TMPFILE`` files into place, probed once; None if none."""
    global _linker
    if _linker is not False:
        return _linker  # type: ignore[return-value]
    _linker = None
    for link in (_link_proc, _link_empty_path):
        probe = os.path.join(folder, f"{_TEMP_PREFIX}probe-{uuid.uuid4().hex}")
        try:
            fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600)
        except (AttributeError, OSError):
            break  # no O_TMPFILE on this system or file system
        try:
            link(fd, probe)
            os.unlink(probe)
            _linker = link
            break
        except OSError:
            continue
        finally:
            os.close(fd)
    return _linker


class LocalBackend(BaseBackend):
    """A local file system storage. Settings: ``root``, the folder holding this storage's files."""

    required = ("root",)

    @property
    def root(self) -> str:
        return self.config["root"]

    def path(self, filename: str) -> str:
        return os.path.join(self.root, filename)

    def exists(self, filename: str) -> bool:
        return os.path.isfile(self.path(filename))

    def open_read(self, filename: str) -> BinaryIO:
        try:
            return open(self.path(filename), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise file_not_found(filename) from None

    def save(self, file_or_wfs: IO[bytes], filename: str, overwrite: bool = False) -> None:
        target = self.path(filename)
        folder = os.path.dirname(target)
        if not overwrite:
            try:
                fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
                return self.save(file_or_wfs, filename, overwrite)
            except (AttributeError, OSError):
                fd = -1  # no O_TMPFILE here: fall back to a named temporary file
            link = _unnamed_linker(folder) if fd >= 0 else None
            if link is not None:
                return self._save_unnamed(file_or_wfs, fd, link, target, filename)
            if fd >= 0:
                os.close(fd)
        self._save_named(file_or_wfs, target, filename, overwrite)

    def _save_unnamed(self, source: IO[bytes], fd: int, link: Linker, target: str, filename: str) -> None:
        with open(fd, "wb") as f:
            copy_stream(source, f)
            f.flush()
            self._fsync(f)
            try:
                link(fd, target)
            except FileExistsError:
                raise FileExists(f"{filename!r} exists") from None

    def _save_named(self, source: IO[bytes], target: str, filename: str, overwrite: bool) -> None:
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".part", dir=folder)
        try:
            with open(fd, "wb") as f:
                os.fchmod(fd, 0o666 & ~_UMASK)
                copy_stream(source, f)
                f.flush()
                self._fsync(f)
            if overwrite:
                os.replace(temp, target)
            else:
                try:
                    os.link(temp, target)
                except FileExistsError:
                    raise FileExists(f"{filename!r} exists") from None
        finally:
            if os.path.exists(temp):
                os.unlink(temp)

    def _fsync(self, f: IO[bytes]) -> None:
        if self.config.get("fsync"):
            os.fsync(f.fileno())

    def delete(self, filename: str) -> None:
        try:
            os.unlink(self.path(filename))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass

    def list_files(self) -> Iterator[str]:
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            relative = os.path.relpath(folder, self.root)
            for name in sorted(files):
                if not name.startswith(_TEMP_PREFIX):
                    yield name if relative == "." else f"{relative}/{name}".replace(os.sep, "/")

    def metadata(self, filename: str) -> dict[str, Any]:
        with self.open_read(filename) as f:
            stat = os.fstat(f.fileno())
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        return {
            "checksum": f"sha256:{digest}",
            "size": stat.st_size,
            "mime": self.guess_type(filename),
            "modified": datetime.fromtimestamp(stat.st_mtime, timezone.utc),
        }

    def move(self, source: str, target: str, overwrite: bool = False) -> None:
        src, dst = self.path(source), self.path(target)
        if not os.path.isfile(src):
            raise file_not_found(source)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if overwrite:
            os.replace(src, dst)
            return
        try:
            os.link(src, dst)
        except FileExistsError:
            raise FileExists(f"{target!r} exists") from None
        os.unlink(src)

    def serve(self, filename: str) -> Any:
        if not self.exists(filename):
            raise file_not_found(filename)
        return send_file(self.path(filename), conditional=True, etag=True)

    def check(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"{self.root} is not writable")
