"""The backend contract, and discovery of backends through the ``fs.backend`` entry points.

A backend stores bytes under storage-relative names that :mod:`flask_fs.names` has already
checked. To write one, subclass :class:`BaseBackend`, implement the six methods marked
*required*, and register the class in your distribution's metadata::

    [project.entry-points."fs.backend"]
    mystore = "my_package.backend:MyStoreBackend"

Everything else (text modes, ``read``, ``write``, chunked and ranged reads, copy, move, serving
with Range and ETag) has a working default built on those six, which a backend may override
when its server can do better.

Errors: a backend turns its client library's (or the OS's) exceptions into flask_fs errors in one
place, :meth:`BaseBackend.translate_error`, which BaseBackend applies around every public
operation a subclass defines, and to the iterators and streams those return.
"""

from __future__ import annotations

import functools
import io
import mimetypes
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from types import GeneratorType
from typing import IO, Any, BinaryIO, NoReturn

from .. import serving
from ..config import STORAGE_NAME, Config, Setting, resolve
from ..errors import ConfigurationError, FileNotFound, FSError, OperationNotSupported
from ..serving import ServedFile
from ..streams import CHUNK_SIZE, SPOOL_SIZE, RangedReader, SpooledWriter, TextWriter, copy_stream, skip

__all__ = [
    "CHUNK_SIZE",
    "SPOOL_SIZE",
    "BaseBackend",
    "RangedReader",
    "ServedFile",
    "Setting",
    "SpooledWriter",
    "TRANSLATED_OPERATIONS",
    "TranslatedStream",
    "available_backends",
    "copy_stream",
    "file_not_found",
    "load_backend",
]

ENTRY_POINT_GROUP = "fs.backend"
#: True while flask_fs builds a storage's backend (``init_app``, ``from_settings``): object stores
#: then check (and create) their bucket or container at the first operation, so starting an app
#: contacts no server. A backend built directly, as Flask-FS's code does, checks at once.
deferred_setup: ContextVar[bool] = ContextVar("flask_fs_deferred_setup", default=False)

Content = bytes | str
#: The public operations whose failures go through ``translate_error``, with the position of the
#: file name among their arguments (None: they act on no file).
TRANSLATED_OPERATIONS: Mapping[str, int | None] = {
    "exists": 0, "open_read": 0, "save": 1, "delete": 0, "list_files": None, "metadata": 0,
    "open": 0, "read": 0, "write": 0, "read_chunks": 0, "copy": 0, "move": 0, "path": 0, "signed_url": 0,
    "open_served": 0, "list_metadata": None, "check": None, "clean_stale": None,
    "presign_upload": 0, "presign_parts": 0, "complete_parts": 0,
}  # fmt: skip


class BaseBackend:
    """Stores files for one storage. ``config`` holds that storage's resolved settings."""

    #: This backend's settings, declared once (:class:`~flask_fs.config.Setting`): their defaults are
    #: filled in and their values converted whether the backend is built by a Storage or directly.
    settings: tuple[Setting, ...] = ()
    #: Settings without which the backend cannot work: ``init_app`` fails early when one is unset.
    #: Derived from :attr:`settings`; older backends may still set it (and :attr:`defaults`) instead.
    required: tuple[str, ...] = ()
    #: Default values of this backend's settings (lower-case keys); derived from :attr:`settings` too.
    defaults: Mapping[str, Any] = {}
    #: Whether the class declares its :attr:`settings` (else only what ``defaults``/``required`` name
    #: is known, and keys it does not name are not reported as unknown).
    declares_settings: bool = False
    #: Whether ``save`` is given the caller's upload object itself (a Werkzeug ``FileStorage``...)
    #: rather than a stream: true for Flask-FS backends, driven as Flask-FS drove them.
    takes_uploads: bool = False
    #: Whether ``save(..., headers=...)`` stores the headers and the server sends them back with the
    #: file (object stores); backends without it accept ``headers`` and ignore them.
    keeps_headers: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Keep :attr:`settings`, :attr:`defaults` and :attr:`required` consistent, whichever the class
        set, and route the failures of the public operations it defines through translate_error."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        declared = {setting.name: setting for setting in cls.settings}
        if "settings" in own:
            cls.declares_settings = True
        else:  # an older backend: its defaults and required keys are its settings, of any type
            for key, value in own.get("defaults", {}).items():
                declared[key] = replace(declared.get(key, Setting(key, None)), default=value)
            for key in own.get("required", ()):
                declared[key] = replace(declared.get(key, Setting(key, None)), required=True)
        cls.settings = tuple(declared.values())
        cls.defaults = {s.name: s.default for s in cls.settings if s.default not in (None, STORAGE_NAME)}
        cls.required = tuple(s.name for s in cls.settings if s.required)
        for method, position in TRANSLATED_OPERATIONS.items():  # one error hook: see translate_error
            function = own.get(method)
            if callable(function) and not getattr(function, "_translating", False):
                setattr(cls, method, _translating(function, method, position))

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        """``config``: the storage's settings, a Config or a plain dict, all or some of them (the
        defaults are filled in, values converted; ConfigurationError for a bad or missing one)."""
        self.name = name
        label = f"{config.get('backend') or type(self).__name__} backend"
        self.config: Config = resolve(self.settings, name, config, label)

    def translate_error(self, exc: Exception, filename: str | None) -> FSError | None:
        """The flask_fs error standing for ``exc``, raised by this backend's client library or the OS
        while working on ``filename`` (None: on no file in particular); None lets ``exc`` through.

        Override it to map missing objects to ``file_not_found(filename)`` and server or disk failures
        to :class:`~flask_fs.errors.BackendError`. flask_fs errors never reach it.
        """
        return None

    def close(self) -> None:
        """Release the clients, connection pools and threads this backend holds; the next operation
        opens new ones. Called when the storage is configured again and by ``flask_fs.close(app)``."""

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
        return writer if mode.endswith("b") else TextWriter(writer, **kwargs)

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
                    skip(f, start)
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

    def presign_upload(self, filename: str, max_size: int, content_type: str, expires: int) -> dict[str, Any] | None:
        """How a browser sends up to ``max_size`` bytes of ``content_type`` straight to ``filename``
        for ``expires`` seconds: ``url``, ``method`` (``POST`` or ``PUT``), ``fields`` (form fields
        before the file in a multipart POST) and ``headers``. None (this default): the app's own
        upload endpoint receives the file (see :mod:`flask_fs.uploads`)."""
        return None

    def open_served(self, filename: str) -> ServedFile:
        """The file opened for serving, with its size, type and validators (see :class:`ServedFile`).

        This default asks :meth:`metadata`, then opens the stream; backends override it to get both
        from one request, or a cheaper validator than a checksum.
        """
        meta = self.metadata(filename)
        checksum = meta.get("checksum")
        return ServedFile(
            stream=self.open_read(filename),
            size=meta.get("size"),
            mime=meta.get("mime") or self.guess_type(filename),
            etag=str(checksum).split(":", 1)[-1] if checksum else None,
            modified=meta.get("modified"),
        )

    def serve(self, filename: str) -> Any:
        """A response streaming the file (Flask-FS 0.6.1's hook, kept for its callers and overriders).

        flask_fs calls it only where a subclass overrides it; otherwise its view builds the response
        from :meth:`open_served`, as this default does through the Flask layer's responder.
        """
        return serving.respond(self.open_served(filename), filename)

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

    def clean_stale(self, grace: float) -> list[str]:
        """Remove what interrupted writes left behind over ``grace`` seconds ago (temporary files,
        abandoned uploads); return a description of each. This default has nothing to clean."""
        return []

    @staticmethod
    def as_binary(content: Content, encoding: str = "utf8") -> bytes:
        """Encode text content for a binary write."""
        return content.encode(encoding) if isinstance(content, str) else content

    @staticmethod
    def guess_type(filename: str) -> str:
        """The MIME type of a name, ``application/octet-stream`` when unknown."""
        return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _raise_translated(backend: BaseBackend, exc: Exception, filename: str | None) -> NoReturn:
    """Raise ``backend``'s flask_fs error for ``exc`` (``exc`` itself if it has none), chained to it."""
    error = None if isinstance(exc, FSError) else backend.translate_error(exc, filename)
    if error is None:
        raise exc
    raise error from exc


def _translating(function: Callable[..., Any], method: str, position: int | None) -> Callable[..., Any]:
    """Wrap a public operation: its exceptions, and those of the iterator or stream it returns, are
    translated by its backend's ``translate_error``."""

    @functools.wraps(function)
    def operation(self: BaseBackend, *args: Any, **kwargs: Any) -> Any:
        if position is None:
            filename = None
        else:
            filename = args[position] if len(args) > position else kwargs.get("filename", kwargs.get("source"))
        try:
            result = function(self, *args, **kwargs)
        except Exception as exc:
            _raise_translated(self, exc, filename)
        if isinstance(result, GeneratorType):
            return _translated_iterator(self, result, filename)
        if method == "open_read" and not isinstance(result, TranslatedStream):
            return TranslatedStream(result, self, filename)
        if method == "open_served" and not isinstance(result.stream, TranslatedStream):
            result.stream = TranslatedStream(result.stream, self, filename)  # type: ignore[assignment]
        return result

    operation._translating = True  # type: ignore[attr-defined]
    return operation


def _translated_iterator(backend: BaseBackend, iterator: Iterator[Any], filename: str | None) -> Iterator[Any]:
    try:
        yield from iterator
    except Exception as exc:
        _raise_translated(backend, exc, filename)


class TranslatedStream:
    """A backend's stream whose failures are translated like its operations' (read, seek, close...);
    anything else is the stream's own."""

    def __init__(self, stream: IO[bytes], backend: BaseBackend, filename: str | None) -> None:
        self._stream, self._backend, self._filename = stream, backend, filename

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except Exception as exc:
            _raise_translated(self._backend, exc, self._filename)

    def read(self, size: int | None = -1) -> bytes:
        return self._call("read", size)

    def read1(self, size: int = -1) -> bytes:
        return self._call("read1" if hasattr(self._stream, "read1") else "read", size)

    def readinto(self, buffer: Any) -> int:
        return self._call("readinto", buffer)

    def readline(self, size: int | None = -1) -> bytes:
        return self._call("readline", size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._call("seek", offset, whence)

    def close(self) -> None:
        self._call("close")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __enter__(self) -> TranslatedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


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


def settings_anywhere() -> set[str] | None:
    """Every setting name that some usable backend reads (one whose extra is not installed is not
    usable), or None when that cannot be told: a backend does not declare its settings."""
    names: set[str] = set()
    for name in available_backends():
        try:
            cls = load_backend(name)
        except ConfigurationError:
            continue
        if not getattr(cls, "declares_settings", False):  # also a test double standing for a class
            return None
        names.update(setting.name for setting in cls.settings)
    return names
