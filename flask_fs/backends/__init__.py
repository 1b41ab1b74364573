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
from collections.abc import Iterator, Mapping
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from typing import IO, Any, BinaryIO

from .. import serving
from ..config import STORAGE_NAME, Config, Setting, resolve
from ..errors import ConfigurationError, FileNotFound, OperationNotSupported
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
    "available_backends",
    "copy_stream",
    "file_not_found",
    "load_backend",
]

ENTRY_POINT_GROUP = "fs.backend"

Content = bytes | str


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
    #: Whether ``save(..., headers=...)`` stores the headers and the server sends them back with the
    #: file (object stores); backends without it accept ``headers`` and ignore them.
    keeps_headers: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Keep :attr:`settings`, :attr:`defaults` and :attr:`required` consistent, whichever the class set."""
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

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        """``config``: the storage's settings, a Config or a plain dict, all or some of them (the
        defaults are filled in, values converted; ConfigurationError for a bad or missing one)."""
        self.name = name
        label = f"{config.get('backend') or type(self).__name__} backend"
        self.config: Config = resolve(self.settings, name, config, label)

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
        """Remove exactly ``filename``; removing an absent file is not an error. *Required.*"""
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

    def write(self, filename: str, content: Content, overwrite: bool = False) -> None:
        """Store ``content`` (str is encoded as UTF-8)."""
        self.save(io.BytesIO(self.as_binary(content)), filename, overwrite=overwrite)

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
            f"backend {name!r} cannot be imported ({exc}); install its extra: pip install 'flask-fs[{name}]'"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseBackend)):
        raise ConfigurationError(f"entry point {name!r} does not name a BaseBackend subclass")
    return cls


def file_not_found(filename: str) -> FileNotFound:
    """The error every backend raises for a missing file."""
    return FileNotFound(f"no file named {filename!r}")


def settings_anywhere() -> set[str] | None:
    """Every setting name that some installed backend reads, or None when that cannot be told (a
    backend fails to import, or does not declare its settings)."""
    names: set[str] = set()
    for name in available_backends():
        try:
            cls = load_backend(name)
        except ConfigurationError:
            return None
        if not cls.declares_settings:
            return None
        names.update(setting.name for setting in cls.settings)
    return names
