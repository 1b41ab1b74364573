"""The :class:`Storage`: a named set of files, bound to a backend by each application.

A ``Storage`` object only holds what its declaration says (name, allowed extensions, upload
folder, overwrite policy). Its settings and backend instance live on each Flask app in
``app.extensions['fs']``, so one storage declared at import time serves any number of apps,
each writing to its own root.
"""

from __future__ import annotations

import io
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote

from flask import Flask, current_app, url_for
from werkzeug.datastructures import FileStorage

try:  # the app context's ContextVar: a much cheaper way to the current app than the proxy
    from flask.globals import _cv_app
except ImportError:  # pragma: no cover - older or future Flask
    _cv_app = None

from . import names
from .backends import CHUNK_SIZE, BaseBackend, available_backends, copy_stream, load_backend
from .config import GLOBAL_DEFAULTS, Config, join_url, storage_settings
from .errors import ConfigurationError, FileExists, FileTooLarge, FSError, UnauthorizedFileType
from .files import DEFAULTS, All, AllExcept, extension, lowered

__all__ = ["Config", "Storage"]

Extensions = Iterable[str] | All | AllExcept
Prefix = str | Callable[[], str] | None

#: How many new names ``save(..., rename=True)`` tries before giving up.
MAX_RENAME_ATTEMPTS = 1000


@dataclass
class _Bound:
    """A storage as configured on one app (``allow``/``deny`` are its lower-cased extension settings)."""

    config: Config
    backend: BaseBackend
    allow: frozenset[str] | All | AllExcept = frozenset()
    deny: frozenset[str] | All | AllExcept = frozenset()
    max_size: int | None = None


@dataclass
class FSState:
    """Everything flask_fs keeps on an app, at ``app.extensions['fs']``."""

    storages: dict[str, Storage] = field(default_factory=dict)
    bound: dict[str, _Bound] = field(default_factory=dict)


def state(app: Flask | None = None) -> FSState:
    """The flask_fs state of ``app`` (default: the current app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return app.extensions["fs"]
    except KeyError:
        raise FSError(f"flask_fs is not initialised on app {app.name!r}: call flask_fs.init_app(app)") from None


class Storage:
    """A named set of files with its own extension policy, folder and backend.

    ``extensions`` lists what ``save`` accepts (combine presets: ``TEXT + IMAGES``, or use ``ALL``
    / ``AllExcept(...)``); ``upload_to`` is a folder (or a callable returning one) that uploads go
    into; ``overwrite`` lets saves replace existing files; ``rename`` makes saves pick a free name
    (``photo_1.jpg``, ...) instead of failing when a name is taken.
    """

    def __init__(
        self,
        name: str = "files",
        extensions: Extensions = DEFAULTS,
        upload_to: Prefix = None,
        overwrite: bool = False,
        rename: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name.isascii() or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigurationError(f"storage names are ASCII letters and digits (with - or _), not {name!r}")
        self.name = name
        self.extensions = lowered(extensions)
        self.upload_to = upload_to
        self.overwrite = overwrite
        self.rename = rename

    def __repr__(self) -> str:
        return f"<Storage {self.name!r}>"

    # -- configuration ------------------------------------------------------------------------------

    def configure(self, app: Flask) -> None:
        """Resolve this storage's settings on ``app`` and create its backend (see :mod:`flask_fs.config`).

        Raises ConfigurationError, naming the setting to fix, for an unknown backend or a missing
        required setting.
        """
        own_key = f"{self.name.upper()}_FS_BACKEND"
        backend_key = own_key if app.config.get(own_key) else "FS_BACKEND"
        backend_name = app.config.get(backend_key) or "local"
        try:
            backend_cls = load_backend(backend_name)
        except ConfigurationError as exc:
            raise ConfigurationError(f"storage {self.name!r}: {backend_key} = {backend_name!r}: {exc}") from exc
        defaults = dict(backend_cls.defaults)
        if backend_name == "local":
            defaults["root"] = os.path.join(
                app.config.get("FS_ROOT") or os.path.join(app.instance_path, "fs"), self.name
            )
        config = storage_settings(app.config, self.name, backend_name, available_backends(), defaults)
        missing = [key for key in backend_cls.required if config.get(key) in (None, "")]
        if missing:
            keys = ", ".join(
                f"{self.name.upper()}_FS_{k.upper()} or FS_{backend_name.upper()}_{k.upper()}" for k in missing
            )
            raise ConfigurationError(f"storage {self.name!r} ({backend_name} backend) needs {keys}")
        allow, deny = (lowered(_extension_list(config.get(key))) for key in ("allow", "deny"))
        max_size = int(config["max_size"]) if config.get("max_size") else None
        replaced = state(app).bound.get(self.name)
        state(app).bound[self.name] = _Bound(config, backend_cls(self.name, config), allow, deny, max_size)
        if replaced is not None:  # configured again: release the old backend's clients and threads
            replaced.backend.close()

    def _bound(self) -> _Bound:
        """This storage's settings and backend on the current app (called by every operation)."""
        ctx = _cv_app.get(None) if _cv_app is not None else None
        app = ctx.app if ctx is not None else current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return app.extensions["fs"].bound[self.name]
        except (KeyError, AttributeError):
            raise FSError(
                f"storage {self.name!r} is not registered on app {app.name!r}: call flask_fs.init_app(app, storage)"
            ) from None

    @property
    def config(self) -> Config:
        """This storage's resolved settings on the current app."""
        return self._bound().config

    @property
    def backend(self) -> BaseBackend:
        """This storage's backend on the current app."""
        return self._bound().backend

    # -- URLs --------------------------------------------------------------------------------------

    @property
    def has_url(self) -> bool:
        """Whether the storage has a configured public URL (otherwise URLs point at the ``fs`` view)."""
        return bool(self.config.get("url"))

    @property
    def base_url(self) -> str:
        """The public URL of the storage's root, ending with ``/``."""
        configured = self.config.get("url")
        if configured:
            return join_url(configured)
        return _view_url(self.name, "", external=True)

    def url(self, filename: str, external: bool = False) -> str:
        """The URL a file is (or would be) reachable at; it does not check that the file exists.

        With a configured URL the name is appended, percent-encoded, to it; otherwise the URL is the
        ``fs`` view's (absolute with ``external``).
        """
        filename = names.clean(filename)
        configured = self.config.get("url")
        if configured:
            return join_url(configured) + quote(filename, safe="/")
        return _view_url(self.name, filename, external)

    def signed_url(self, filename: str, expires: int | None = None) -> str:
        """A temporary URL that grants read access without credentials (s3, swift)."""
        seconds = int(expires if expires is not None else self.config.get("signed_url_expires", 3600))
        return self.backend.signed_url(names.clean(filename), seconds)

    # -- policy ------------------------------------------------------------------------------------

    def extension_allowed(self, ext: str) -> bool:
        """Whether files with extension ``ext`` (no dot, any case) may be saved here.

        ``<NAME>_FS_DENY`` wins over ``<NAME>_FS_ALLOW``, which adds to the storage's ``extensions``.
        """
        ext = ext.lower()
        bound = self._bound()
        if ext in bound.deny:
            return False
        return ext in bound.allow or ext in self.extensions

    def file_allowed(self, storage: Any, basename: str) -> bool:
        """Whether an upload may be saved as ``basename``; override to add your own checks."""
        return self.extension_allowed(extension(basename))

    def resolve_conflict(self, target_folder: str, basename: str) -> str:
        """A free name for ``basename`` in ``target_folder``: ``name_1.ext``, ``name_2.ext``, ..."""
        stem, dot, ext = basename.rpartition(".")
        if not stem:
            stem, dot, ext = basename, "", ""
        for number in range(1, MAX_RENAME_ATTEMPTS + 1):
            candidate = f"{stem}_{number}{dot}{ext}"
            if not self.exists(posixpath.join(target_folder, candidate)):
                return candidate
        raise FileExists(f"no free name for {basename!r} in {target_folder!r}")

    # -- writing ------------------------------------------------------------------------------------

    def save(
        self,
        file_or_wfs: IO[bytes] | FileStorage,
        filename: str | None = None,
        prefix: Prefix = None,
        overwrite: bool | None = None,
        rename: bool | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Save an upload (a Werkzeug ``FileStorage``) or a binary file object; return its name.

        An upload's client-side name is sanitised; an explicit ``filename`` must already be safe.
        ``headers`` are stored with the file where the backend can (``backend.keeps_headers``, see
        ``BaseBackend.save``). Raises UnauthorizedFileType, FileExists, FileTooLarge or InvalidFileName.
        """
        stream: IO[bytes]
        if isinstance(file_or_wfs, FileStorage):
            if filename is None:
                filename = names.secure_upload_name(file_or_wfs.filename)
            stream = file_or_wfs.stream
        else:
            stream = file_or_wfs
            if filename is None:
                filename = names.secure_upload_name(os.path.basename(str(getattr(stream, "name", ""))))
        folder = prefix if prefix is not None else self.upload_to
        if folder is not None and callable(folder):
            folder = folder()
        filename = names.join(folder, filename) if folder else names.clean(filename)
        if not self.file_allowed(file_or_wfs, filename.rpartition("/")[2]):
            raise UnauthorizedFileType(
                f"files of type {extension(filename) or '(none)'!r} are not allowed in {self.name!r}"
            )
        overwrite = self.overwrite if overwrite is None else overwrite
        rename = self.rename if rename is None else rename
        bound = self._bound()
        if bound.max_size is not None:
            stream = _LimitedReader(stream, bound.max_size)
        if overwrite or not rename:
            if headers:
                bound.backend.save(stream, filename, overwrite=overwrite, headers=headers)
            else:
                bound.backend.save(stream, filename, overwrite=overwrite)
            return filename
        return self._save_renaming(stream, filename, **({"headers": headers} if headers else {}))

    def _save_renaming(self, stream: IO[bytes], filename: str, **extra: Any) -> str:
        """Save under ``filename`` or the first free name after it, never replacing a file."""
        if not stream.seekable():  # a retry must send the same bytes again: keep them in a spool
            with tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE * 8) as spool:
                copy_stream(stream, spool)
                spool.seek(0)
                return self._save_renaming(spool, filename, **extra)
        start = stream.tell()
        folder, basename = posixpath.split(filename)
        backend = self._bound().backend
        for _ in range(MAX_RENAME_ATTEMPTS):
            try:
                backend.save(stream, filename, overwrite=False, **extra)
                return filename
            except FileExists:
                stream.seek(start)
                filename = posixpath.join(folder, self.resolve_conflict(folder, basename))
        raise FileExists(f"no free name for {basename!r}")

    def write(self, filename: str, content: bytes | str, overwrite: bool | None = None) -> None:
        """Store ``content`` (text is encoded as UTF-8) under ``filename``."""
        overwrite = self.overwrite if overwrite is None else overwrite
        self._bound().backend.write(names.clean(filename), content, overwrite=overwrite)

    def open(self, filename: str, mode: str = "r", **kwargs: Any) -> IO:
        """Open a file object: ``r``/``rb`` read, ``w``/``wb`` replace, ``x``/``xb`` create only.

        Writes are stored when the file is closed; an exception inside ``with`` discards them.
        """
        return self._bound().backend.open(names.clean(filename), mode, **kwargs)

    def delete(self, filename: str) -> None:
        """Delete this one file; deleting a missing file does nothing."""
        self._bound().backend.delete(names.clean(filename))

    def copy(self, source: str, target: str, overwrite: bool | None = None) -> None:
        """Copy a file within this storage."""
        overwrite = self.overwrite if overwrite is None else overwrite
        self.backend.copy(names.clean(source), names.clean(target), overwrite=overwrite)

    def move(self, source: str, target: str, overwrite: bool | None = None) -> None:
        """Move (rename) a file within this storage."""
        overwrite = self.overwrite if overwrite is None else overwrite
        self.backend.move(names.clean(source), names.clean(target), overwrite=overwrite)

    # -- reading -----------------------------------------------------------------------------------

    def exists(self, filename: str) -> bool:
        """Whether the file is stored."""
        return self._bound().backend.exists(names.clean(filename))

    def __contains__(self, filename: str) -> bool:
        return self.exists(filename)

    def read(self, filename: str) -> bytes:
        """The whole content as bytes; prefer :meth:`read_chunks` or :meth:`open` for large files."""
        return self._bound().backend.read(names.clean(filename))

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Stream the bytes from ``start`` to ``end`` (exclusive) in chunks of at most ``chunk_size``."""
        if chunk_size <= 0 or start < 0 or (end is not None and end < start):
            raise ValueError("chunk_size must be positive and 0 <= start <= end")
        return self.backend.read_chunks(names.clean(filename), chunk_size, start, end)

    def list_files(self) -> Iterator[str]:
        """Yield the name of every file in the storage."""
        return self.backend.list_files()

    def metadata(self, filename: str) -> dict[str, Any]:
        """``filename``, ``url``, ``checksum`` (``'algo:hex'``), ``size``, ``mime``, ``modified``."""
        filename = names.clean(filename)
        meta = dict(self.backend.metadata(filename))
        meta.setdefault("filename", posixpath.basename(filename))
        meta["url"] = self.url(filename)
        return meta

    def path(self, filename: str) -> str:
        """The absolute local path of a file (local backend only; OperationNotSupported elsewhere)."""
        return self.backend.path(names.clean(filename))

    def serve(self, filename: str) -> Any:
        """A response streaming the file to a browser, safely (see :mod:`flask_fs.views`)."""
        from .views import serve_file

        return serve_file(self._bound().backend, names.clean(filename))

    def check(self) -> None:
        """Raise an FSError unless the backend's server is reachable with the configured credentials."""
        try:
            self.backend.check()
        except FSError:
            raise
        except Exception as exc:
            raise FSError(f"storage {self.name!r} is not reachable: {exc}") from exc


def _extension_list(value: Any) -> Any:
    """An ALLOW/DENY setting as extensions: a list, ALL/AllExcept, or a string like ``'pdf, epub'``."""
    if not value:
        return ()
    return value.replace(",", " ").split() if isinstance(value, str) else value


def _view_url(storage: str, filename: str, external: bool) -> str:
    """The ``fs`` view's URL for a file; a path when there is no request nor ``SERVER_NAME`` to build a host."""
    try:
        return url_for("fs.get_file", fs=storage, filename=filename, _external=external)
    except RuntimeError:  # outside a request, with no SERVER_NAME (CLI, scripts, tasks)
        adapter = current_app.url_map.bind("localhost", script_name=current_app.config["APPLICATION_ROOT"])
        return adapter.build("fs.get_file", {"fs": storage, "filename": filename})


class _LimitedReader(io.RawIOBase):
    """Reads through ``stream`` and raises FileTooLarge once more than ``limit`` bytes came."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream, self._limit, self._count = stream, limit, 0
        self._origin = stream.tell() if stream.seekable() else 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        data = self._stream.read(size)
        self._count += len(data)
        if self._count > self._limit:
            raise FileTooLarge(f"uploads to this storage are limited to {self._limit} bytes")
        return data

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        return self._stream.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._stream.seek(offset, whence)
        self._count = position - self._origin
        return position

    def tell(self) -> int:
        return self._stream.tell()


def init_app(app: Flask, *storages: Storage) -> None:
    """Set up flask_fs on ``app``: global defaults, the ``fs`` blueprint, and these storages."""
    for key, value in GLOBAL_DEFAULTS.items():
        app.config.setdefault(key, value)
    if app.config["FS_SERVE"] is None:
        app.config["FS_SERVE"] = app.debug
    if not app.config["FS_ROOT"]:
        app.config["FS_ROOT"] = os.path.join(app.instance_path, "fs")
    fs_state = app.extensions.setdefault("fs", FSState())
    if "fs" not in app.blueprints:
        from .views import bp

        app.register_blueprint(bp, url_prefix=app.config["FS_PREFIX"])
    for storage in storages:
        fs_state.storages[storage.name] = storage
        storage.configure(app)


def close(app: Flask) -> None:
    """Release the clients, connection pools and threads of every storage's backend on ``app``.

    Call it when the app shuts down (a worker's exit hook, ``atexit``), not per request: the
    storages stay usable and reconnect on their next operation.
    """
    for bound in state(app).bound.values():
        bound.backend.close()


def by_name(name: str) -> Storage:
    """The storage registered as ``name`` on the current app (FSError if none)."""
    try:
        return state().storages[name]
    except KeyError:
        raise FSError(f"no storage named {name!r} on this app") from None
