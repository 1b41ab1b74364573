"""Files on the local disk, below the storage's ``root``.

Writes are atomic: content goes to an unnamed (``O_TMPFILE``) file in the target folder, or to a
hidden ``.~fs-*`` temporary file where the file system has no unnamed files, and only a complete
file gets the real name. A crash or a client that disconnects mid-upload therefore never leaves a
truncated file behind. Without ``overwrite`` the naming step is ``link()``, which fails if the name
exists: of two concurrent saves of one name, exactly one wins and the other gets FileExists.

Symbolic links: flask_fs never creates any. One placed inside the root by someone with access to
the disk is followed only while it stays inside the root: a name whose resolved path leaves the
root raises InvalidFileName on every operation, so a stray ``root/etc -> /etc`` link cannot serve
``/etc/passwd``. Links found in the root are checked when they are met, not locked against
concurrent changes by someone who can already write to the disk. Settings: ``root`` (the folder
holding this storage's files) and ``fsync`` (flush each saved file and its folder to the disk).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO

from ..config import Setting
from ..errors import BackendError, ConfigurationError, FileExists, FSError, InvalidFileName
from ..serving import ServedFile
from . import CHUNK_SIZE, BaseBackend, file_not_found

_TEMP_PREFIX = ".~fs-"
_UMASK = os.umask(0o22)
os.umask(_UMASK)
_AT_FDCWD, _AT_EMPTY_PATH = -100, 0x1000
# O_NONBLOCK: opening a FIFO planted in the root must not hang (regular files ignore the flag).
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
Linker = Callable[[int, str], None]


_libc_linkat: Any = None


def _link_empty_path(fd: int, target: str) -> None:
    """``linkat(fd, "", AT_FDCWD, target, AT_EMPTY_PATH)``: give an unnamed file its name."""
    global _libc_linkat
    if _libc_linkat is None:  # load libc's linkat once
        func = ctypes.CDLL(None, use_errno=True).linkat
        func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        func.restype = ctypes.c_int
        _libc_linkat = func
    if _libc_linkat(fd, b"", _AT_FDCWD, os.fsencode(target), _AT_EMPTY_PATH) != 0:
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
        except (OSError, AttributeError):
            continue
        finally:
            os.close(fd)
    return _linker


def _fsync_folder(folder: str) -> None:
    """Flush a folder's entries (a new name) to the disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _refuse_reserved(filename: str) -> None:
    """Refuse a name with a part starting with ``.~fs-``: temporary files, hidden from listings."""
    if _TEMP_PREFIX in filename and (filename.startswith(_TEMP_PREFIX) or f"/{_TEMP_PREFIX}" in filename):
        raise InvalidFileName(f"{filename!r}: names starting with {_TEMP_PREFIX!r} are reserved for temporary files")


def _write_all(source: IO[bytes], fd: int) -> None:
    """Copy ``source`` into the open file ``fd`` in bounded chunks, without an extra buffer."""
    while chunk := source.read(CHUNK_SIZE):
        written = os.write(fd, chunk)
        if written < len(chunk):
            view = memoryview(chunk)[written:]
            while view:
                view = view[os.write(fd, view) :]


def _default_root(name: str) -> str:
    """Flask-FS's root for a backend built without one: the current app's local root, plus the name.

    Storages always give a root; this is for ``LocalBackend(name, Config({}))`` built directly. The
    Flask layer sets :attr:`LocalBackend.default_root` (this module imports no Flask).
    """
    base = LocalBackend.default_root() if LocalBackend.default_root else None
    if not base:
        raise ConfigurationError(f"local backend {name!r}: give it a root, or build it inside a Flask app context")
    return os.path.join(base, name)


class LocalBackend(BaseBackend):
    """A local file system storage. Settings: ``root``, the folder holding this storage's files."""

    #: Where backends built without a root live (``<it>/<name>``): set by the Flask layer to the
    #: current app's ``FS_LOCAL_ROOT``/``FS_ROOT``; returns None outside an app.
    default_root: Callable[[], str | None] | None = None

    settings = (
        Setting(
            "root",
            str,
            shown_default="``<FS_ROOT>/<name>``",
            doc="Folder holding the storage's files (a storage always gets the default). From "
            "``FS_LOCAL_ROOT`` the storage name is appended.",
        ),
        Setting(
            "fsync",
            bool,
            False,
            doc="Flush each saved file and its folder to the disk before ``save`` returns: the file survives "
            "a power cut, at the cost of speed.",
        ),
    )

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self._root = os.path.abspath(self.config.get("root") or _default_root(name))
        self._prefix = os.path.join(self._root, "")
        self._real_root: str | None = None
        self._fsync = bool(self.config.get("fsync"))

    @property
    def root(self) -> str:
        return self._root

    # -- names and symbolic links -----------------------------------------------------------------

    def path(self, filename: str) -> str:
        """The absolute path of ``filename`` (it need not exist); InvalidFileName if a link leads out."""
        path = self._prefix + filename
        _refuse_reserved(filename)
        self._check_folders(filename)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                self._check_inside(path, filename)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return path

    def _check_folders(self, filename: str) -> None:
        """Refuse ``filename`` if one of its folders is a symbolic link leading out of the root."""
        if "/" not in filename:
            return
        folder = self._root
        for part in filename.split("/")[:-1]:
            folder = os.path.join(folder, part)
            try:
                if stat.S_ISLNK(os.lstat(folder).st_mode):
                    self._check_inside(self._prefix + filename, filename)
                    return
            except (FileNotFoundError, NotADirectoryError):
                return

    def _check_inside(self, path: str, filename: str) -> None:
        """Raise InvalidFileName unless ``path`` resolves to a place inside the root."""
        real = os.path.realpath(path)
        for _ in range(2):  # the root itself may have moved: resolve it again before refusing
            if self._real_root is not None and (real == self._real_root or real.startswith(self._real_root + os.sep)):
                return
            self._real_root = os.path.realpath(self._root)
        raise InvalidFileName(f"{filename!r} leads outside the storage root through a symbolic link")

    def _open_fd(self, filename: str) -> int:
        """Open ``filename`` for reading, refusing links out of the root; FileNotFound if absent."""
        path = self._prefix + filename
        _refuse_reserved(filename)
        self._check_folders(filename)
        try:
            try:
                return os.open(path, _READ_FLAGS | _NOFOLLOW)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
            self._check_inside(path, filename)  # the file itself is a link: follow it if it stays inside
            return os.open(path, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise file_not_found(filename) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise file_not_found(filename) from None
            raise

    def _open_file(self, filename: str) -> tuple[int, os.stat_result]:
        """Open a regular file for reading (as :meth:`_open_fd`) and stat it; FileNotFound otherwise."""
        fd = self._open_fd(filename)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO...
                raise file_not_found(filename)
        except BaseException:
            os.close(fd)
            raise
        return fd, info

    # -- reading -----------------------------------------------------------------------------------

    def exists(self, filename: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(self.path(filename)).st_mode)
        except OSError:
            return False

    def open_read(self, filename: str) -> BinaryIO:
        return self._open_stream(filename)[0]

    def _open_stream(self, filename: str) -> tuple[BinaryIO, os.stat_result]:
        fd, info = self._open_file(filename)
        try:
            return open(fd, "rb"), info
        except BaseException:
            os.close(fd)
            raise

    def read(self, filename: str) -> bytes:
        """The whole file, read with as few system calls as possible (open, fstat, read, close)."""
        fd, info = self._open_file(filename)
        try:
            size = info.st_size
            data = os.read(fd, size + 1) if size < 1 << 30 else b""
            if len(data) == size:
                return data
            parts = [data]  # the file changed size while being read, or is huge: read to its end
            while chunk := os.read(fd, CHUNK_SIZE):
                parts.append(chunk)
            return b"".join(parts)
        finally:
            os.close(fd)

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Stream bytes ``start`` to ``end`` straight from the file descriptor, without a buffer layer."""
        fd, _ = self._open_file(filename)
        try:
            if start:
                os.lseek(fd, start, os.SEEK_SET)
            remaining = -1 if end is None else max(end - start, 0)
            while remaining:
                chunk = os.read(fd, chunk_size if remaining < 0 else min(chunk_size, remaining))
                if not chunk:
                    return
                if remaining > 0:
                    remaining -= len(chunk)
                yield chunk
        finally:
            os.close(fd)

    def list_files(self) -> Iterator[str]:
        """Every file, sorted folder by folder; temporary files and links leading out are skipped."""
        stack = [(self._root, "")]
        while stack:
            folder, prefix = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda entry: entry.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            folders = []
            for entry in entries:
                if entry.name.startswith(_TEMP_PREFIX):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, f"{prefix}{entry.name}/"))
                elif entry.is_file(follow_symlinks=False) or (entry.is_file() and self._stays_inside(entry.path)):
                    yield prefix + entry.name
            stack.extend(reversed(folders))

    def _stays_inside(self, path: str) -> bool:
        try:
            self._check_inside(path, path)
            return True
        except InvalidFileName:
            return False

    def metadata(self, filename: str) -> dict[str, Any]:
        f, info = self._open_stream(filename)
        with f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        return {
            "checksum": f"sha256:{digest}",
            "size": info.st_size,
            "mime": self.guess_type(filename),
            "modified": datetime.fromtimestamp(info.st_mtime, UTC),
        }

    def open_served(self, filename: str) -> ServedFile:
        """The open file, with an ETag from its inode, mtime and size instead of a checksum to compute."""
        f, info = self._open_stream(filename)
        etag = f"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"
        modified = datetime.fromtimestamp(info.st_mtime, UTC)
        return ServedFile(f, info.st_size, self.guess_type(filename), etag, modified)

    # -- writing -----------------------------------------------------------------------------------

    def save(self, file_or_wfs: IO[bytes], filename: str, overwrite: bool = False, *, headers: Any = None) -> None:
        # headers: ignored, a local file has none (keeps_headers is False)
        _refuse_reserved(filename)
        if "/" in filename:
            self._check_folders(filename)
        target = self._prefix + filename
        folder = target.rpartition("/")[0]
        try:
            fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            self._make_folder(folder, filename)
            return self.save(file_or_wfs, filename, overwrite)
        except NotADirectoryError:
            raise FileExists(f"cannot save {filename!r}: one of its folders is a file") from None
        except (AttributeError, OSError):
            fd = -1  # no O_TMPFILE here: fall back to a named temporary file
        link = None if fd < 0 else (_linker if _linker is not False else _unnamed_linker(folder))
        if link is None:
            if fd >= 0:
                os.close(fd)
            return self._save_named(file_or_wfs, target, filename, overwrite)
        try:
            _write_all(file_or_wfs, fd)
            if self._fsync:
                os.fsync(fd)
            if overwrite:
                temp = os.path.join(folder, f"{_TEMP_PREFIX}{uuid.uuid4().hex}.part")
                link(fd, temp)
                self._replace(temp, target, filename)
            else:
                try:
                    link(fd, target)
                except FileExistsError:
                    raise FileExists(f"{filename!r} exists") from None
            if self._fsync:
                _fsync_folder(folder)
        finally:
            os.close(fd)

    def _save_named(self, source: IO[bytes], target: str, filename: str, overwrite: bool) -> None:
        folder = os.path.dirname(target)
        self._make_folder(folder, filename)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".part", dir=folder)
        try:
            try:
                os.fchmod(fd, 0o666 & ~_UMASK)
                _write_all(source, fd)
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if overwrite:
                self._replace(temp, target, filename)
            else:
                self._link(temp, target, filename)
            if self._fsync:
                _fsync_folder(folder)
        finally:
            if os.path.lexists(temp):
                os.unlink(temp)

    @staticmethod
    def _link(source: str, target: str, filename: str) -> None:
        """Give ``source`` the new name ``target`` (a hard link); FileExists if it is taken."""
        try:
            os.link(source, target, follow_symlinks=False)
        except FileExistsError:
            raise FileExists(f"{filename!r} exists") from None

    @staticmethod
    def _replace(temp: str, target: str, filename: str) -> None:
        try:
            os.replace(temp, target)
        except IsADirectoryError:
            raise FileExists(f"{filename!r} is a folder") from None
        finally:
            if os.path.lexists(temp):
                os.unlink(temp)

    @staticmethod
    def _make_folder(folder: str, filename: str) -> None:
        try:
            os.makedirs(folder, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise FileExists(f"cannot save {filename!r}: one of its folders is a file") from None

    def delete(self, filename: str) -> None:
        path = self.path(filename)
        try:
            os.unlink(path)
        except IsADirectoryError:  # a folder: its files go, as in Flask-FS (rmtree never follows links)
            shutil.rmtree(path, ignore_errors=True)
        except (FileNotFoundError, NotADirectoryError):
            pass

    def move(self, source: str, target: str, overwrite: bool = False) -> None:
        src, dst = self.path(source), self.path(target)
        if not self.exists(source):
            raise file_not_found(source)
        self._make_folder(os.path.dirname(dst), target)
        if overwrite:
            try:
                os.replace(src, dst)
            except IsADirectoryError:
                raise FileExists(f"{target!r} is a folder") from None
            return
        self._link(src, dst, target)
        os.unlink(src)

    def clean_stale(self, grace: float) -> list[str]:
        """Delete the temporary files (``.~fs-*``) of writes that crashed, untouched for ``grace`` seconds.

        Only the fallback write mode (no ``O_TMPFILE``) and a crash between the two steps of an
        overwrite leave them; a running write keeps touching its file, so is never taken for one.
        """
        limit, removed = time.time() - grace, []
        stack = [(self._root, "")]
        while stack:
            folder, prefix = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if entry.name.startswith(_TEMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < limit:
                            os.unlink(entry.path)
                            removed.append(prefix + entry.name)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{prefix}{entry.name}/"))
        return sorted(removed)

    def check(self) -> None:
        os.makedirs(self._root, exist_ok=True)
        if not os.access(self._root, os.W_OK):
            raise BackendError(f"local storage {self.name!r}: {self._root} is not writable")

    def translate_error(self, exc: Exception, filename: str | None) -> FSError | None:
        """A missing file or folder is FileNotFound; another OS failure (a full disk, a refused
        permission, a name too long for the system) is a BackendError naming the storage and the file.
        Network errors come from the stream being saved, not from the disk: they go through."""
        if not isinstance(exc, OSError) or isinstance(exc, (ConnectionError, TimeoutError)):
            return None
        if filename is not None and isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            return file_not_found(filename)
        where = f"file {filename!r}" if filename is not None else f"root {self._root}"
        return BackendError(f"local storage {self.name!r} failed on {where}: {exc.strerror or exc}")
