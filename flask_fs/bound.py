"""A storage bound to its settings and backend: every file operation, without Flask.

A :class:`~flask_fs.Storage` is a declaration (name, extensions, folder, overwrite policy). Binding
it to settings gives a :class:`BoundStorage`, which does the work. ``init_app`` binds each storage
to ``app.config`` and keeps the result on the app; a worker, a script or a test can bind one
explicitly, for an app (``images.bind(app)``) or from plain settings
(``images.from_settings({"FS_BACKEND": "s3", ...})``), with no app or request at all.
"""

from __future__ import annotations

import os
import posixpath
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from typing import IO, Any, Protocol
from urllib.parse import quote

from . import intake, names, signals, uploads
from .backends import BaseBackend, available_backends, deferred_setup, load_backend, settings_anywhere
from .backends.legacy import adapt
from .config import STORAGE_SETTINGS, Config, global_setting, join_url, resolve, storage_settings, unknown_keys
from .errors import BatchError, ConfigurationError, FileExists, FSError
from .files import IMAGES, All, AllExcept, lowered
from .streams import CHUNK_SIZE, LimitedReader, LimitedWriter, TextWriter, spooled, too_large

__all__ = ["BoundStorage", "Declaration", "bind"]

#: How many new names ``save(..., rename=True)`` tries before giving up.
MAX_RENAME_ATTEMPTS = 1000
#: Builds the URL of a file served by the application: ``(storage, filename, external) -> url``.
ViewURL = Callable[[str, str, bool], str]

#: The bound storage whose operation is running, so a declaration's hooks (``file_allowed``,
#: ``resolve_conflict``) that call back into the storage reach it without an app context.
active: ContextVar[BoundStorage | None] = ContextVar("flask_fs_active_storage", default=None)

_IMAGE_EXTENSIONS = frozenset(IMAGES)
#: Names that appear in a URL as they are (what ``quote(name, safe="/")`` leaves alone).
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*")


class Declaration(Protocol):
    """What a binding needs of a storage's declaration (:class:`flask_fs.Storage` is one)."""

    name: str
    extensions: Any
    upload_to: str | Callable[[], str] | None
    overwrite: bool
    rename: bool

    def file_allowed(self, storage: Any, basename: str) -> bool: ...

    def resolve_conflict(self, target_folder: str, basename: str) -> str: ...


class BoundStorage:
    """One storage's settings, backend and policy, with every file operation.

    Operations call the backend method of the same name (``save``, ``read``, ``metadata``...),
    so a patched or third-party backend sees the calls it expects.
    """

    def __init__(
        self,
        declaration: Declaration,
        config: Config,
        backend: BaseBackend,
        view_url: ViewURL | None = None,
        url_scheme: Callable[[], str] | None = None,
    ) -> None:
        self.declaration = declaration
        self.name = declaration.name
        self.config = config
        self.backend = backend
        self._view_url = view_url
        self._url_scheme = url_scheme
        self._settings: Mapping[str, Any] = {}  # what bind() read: an app's config stays live
        #: The job runner (:class:`flask_fs.jobs.Jobs`) set by ``flask_fs.jobs.init_app``, or None.
        self.jobs: Any = None
        self.extensions = lowered(declaration.extensions)
        self.allow = lowered(config.get("allow") or ())
        self.deny = lowered(config.get("deny") or ())
        self.max_size: int | None = config.get("max_size") or None
        check = config.get("check_content")
        self.check_content = _only_images(self.extensions, self.allow) if check is None else bool(check)
        self.batch_concurrency = max(1, int(config.get("batch_concurrency") or 16))
        expires = config.get("signed_url_expires")
        self.signed_url_expires = 3600 if expires is None else int(expires)
        configured_url = config.get("url")
        fixed = configured_url and ("://" in configured_url or configured_url.startswith("/"))
        self._url_base = join_url(configured_url) if fixed else ""  # else it takes the request's scheme
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<BoundStorage {self.name!r} on {self.config.get('backend')}>"

    @property
    def images_optimize(self) -> bool:
        """``FS_IMAGES_OPTIMIZE``: whether image fields optimize renditions by default (read at each
        call, as Flask-FS read the app's config)."""
        return bool(global_setting(self._settings, "FS_IMAGES_OPTIMIZE"))

    @contextmanager
    def _running(self) -> Iterator[None]:
        token = active.set(self)
        try:
            yield
        finally:
            active.reset(token)

    # -- policy ------------------------------------------------------------------------------------

    def extension_allowed(self, ext: str) -> bool:
        """Whether files with extension ``ext`` may be saved: ``DENY`` wins over ``ALLOW``, which adds
        to the declared ``extensions``."""
        ext = ext.lower()
        if ext in self.deny:
            return False
        return ext in self.allow or ext in self.extensions

    def policy(self) -> intake.Policy:
        """What this storage accepts, for :func:`flask_fs.intake.accept` (the declaration's ``file_allowed``
        hook decides on names; by default it asks :meth:`extension_allowed`)."""
        return intake.Policy(self.name, self.declaration.file_allowed, self.max_size, self.check_content)

    # -- URLs ----------------------------------------------------------------------------------------

    @property
    def has_url(self) -> bool:
        """Whether files have a public URL of their own (otherwise the ``fs`` view serves them)."""
        return bool(self.config.get("url"))

    @property
    def base_url(self) -> str:
        """The URL of the storage's root, ending with ``/``."""
        return self.url_of("", external=True) if not self.has_url else join_url(self._configured_url())

    def url(self, filename: str, external: bool = False) -> str:
        """The URL a file is (or would be) reachable at; it does not check that the file exists."""
        return self.url_of(names.clean(filename), external)

    def url_of(self, filename: str, external: bool) -> str:
        """The URL of a name already cleaned (a file waiting for promotion: the app's, which serves it)."""
        pending = getattr(self.backend, "pending", None)
        if self.config.get("url") and not (self._view_url is not None and pending is not None and pending(filename)):
            base = self._url_base or join_url(self._configured_url())
            return base + (filename if _URL_SAFE.fullmatch(filename) else quote(filename, safe="/"))
        if self._view_url is None:
            raise ConfigurationError(
                f"storage {self.name!r} has no URL: set {self.name.upper()}_FS_URL, or bind it to an app that serves it"
            )
        return self._view_url(self.name, filename, external)

    def _configured_url(self) -> str:
        """The configured URL; one written without a scheme (``cdn.example.com/x``, as Flask-FS allowed)
        gets the current request's, or ``http``."""
        url = self.config["url"]
        if "://" in url or url.startswith("/"):  # full, scheme-relative or a path on this host
            return url
        return f"{self._url_scheme() if self._url_scheme else 'http'}://{url}"

    def signed_url(self, filename: str, expires: int | None = None) -> str:
        """A temporary URL that grants read access without credentials (s3, swift)."""
        seconds = int(expires if expires is not None else self.signed_url_expires)
        return self.backend.signed_url(names.clean(filename), seconds)

    # -- writing -------------------------------------------------------------------------------------

    def save(
        self,
        file_or_wfs: Any,
        filename: str | None = None,
        prefix: str | Callable[[], str] | None = None,
        overwrite: bool | None = None,
        rename: bool | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        background: bool = False,
    ) -> str:
        """Accept an upload through the intake (name, extension, size, content) and store it; return its name.

        With ``background``, the upload goes to the fast cache of :mod:`flask_fs.jobs` and a job moves
        it to this storage; it is readable under the returned name meanwhile.
        """
        declaration = self.declaration
        saver = self._background_saver() if background else self.backend
        folders = [folder() if callable(folder) else folder for folder in (declaration.upload_to, prefix)]
        folder = "/".join(folder for folder in folders if folder) or None  # a prefix goes below upload_to
        overwrite = declaration.overwrite if overwrite is None else overwrite
        rename = declaration.rename if rename is None else rename
        extra = {"headers": headers} if headers else {}
        with self._running():
            upload = intake.accept(file_or_wfs, filename, folder, self.policy())
            with signals.observed(declaration, "save", upload.filename, signals.file_saved) as event:
                if overwrite or not rename:
                    legacy = getattr(saver, "takes_uploads", False) and upload.original is not None
                    data = upload.original if legacy else upload.stream
                    saver.save(data, upload.filename, overwrite=overwrite, **extra)
                else:
                    event["filename"] = self._save_renaming(upload.stream, upload.filename, saver, **extra)
        return event["filename"]

    def _background_saver(self) -> Any:
        """Where background saves write: the promotion cache that :mod:`flask_fs.jobs` put in front."""
        saver = getattr(self.backend, "background", None)
        if saver is None:
            raise ConfigurationError(
                f"storage {self.name!r}: save(..., background=True) needs background jobs: "
                "call flask_fs.jobs.init_app(app) after flask_fs.init_app"
            )
        return saver

    def _save_renaming(self, stream: IO[bytes], filename: str, saver: Any = None, **extra: Any) -> str:
        """Save under ``filename`` or the first free name after it, never replacing a file."""
        saver = self.backend if saver is None else saver
        if not stream.seekable():  # a retry must send the same bytes again: keep them in a spool
            with spooled(stream) as spool:
                return self._save_renaming(spool, filename, saver, **extra)
        start = stream.tell()
        folder, basename = posixpath.split(filename)
        for _ in range(MAX_RENAME_ATTEMPTS):
            try:
                saver.save(stream, filename, overwrite=False, **extra)
                return filename
            except FileExists:
                stream.seek(start)
                filename = posixpath.join(folder, self.declaration.resolve_conflict(folder, basename))
        raise FileExists(f"no free name for {basename!r}")

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

    def write(self, filename: str, content: bytes | str | IO[bytes], overwrite: bool | None = None) -> None:
        """Store ``content`` under ``filename``: bytes, text (encoded as UTF-8), or a binary file or
        upload (streamed). ``MAX_SIZE`` applies."""
        filename = names.clean(filename)
        overwrite = self.declaration.overwrite if overwrite is None else overwrite
        if self.max_size is not None:
            if hasattr(content, "read"):
                content = LimitedReader(intake.unwrap(content)[0], self.max_size, repr(self.name))
            elif len(BaseBackend.as_binary(content)) > self.max_size:  # type: ignore[arg-type]
                raise too_large(self.max_size, repr(self.name))
        with signals.observed(self.declaration, "write", filename, signals.file_saved):
            self.backend.write(filename, content, overwrite=overwrite)

    def open(self, filename: str, mode: str = "r", **kwargs: Any) -> IO:
        """Open a file: ``r``/``rb`` read, ``w``/``wb`` replace, ``x``/``xb`` create only.

        Writes are stored when the file is closed; an exception inside ``with``, or going past
        ``MAX_SIZE``, discards them.
        """
        filename = names.clean(filename)
        if self.max_size is None or mode[:1] not in ("w", "x"):
            return self.backend.open(filename, mode, **kwargs)
        binary = mode if mode.endswith("b") else mode + "b"
        writer = LimitedWriter(self.backend.open(filename, binary), self.max_size, repr(self.name))
        return writer if binary == mode else TextWriter(writer, **kwargs)

    def delete(self, filename: str) -> None:
        """Delete the file or, if there is no such file, the folder (the files below ``filename/``);
        deleting a missing file does nothing."""
        filename = names.clean(filename)
        with signals.observed(self.declaration, "delete", filename, signals.file_deleted):
            self.backend.delete(filename)

    def copy(self, source: str, target: str, overwrite: bool | None = None) -> None:
        """Copy a file within this storage."""
        overwrite = self.declaration.overwrite if overwrite is None else overwrite
        target = names.clean(target)
        with signals.observed(self.declaration, "copy", target, signals.file_saved):
            self.backend.copy(names.clean(source), target, overwrite=overwrite)

    def move(self, source: str, target: str, overwrite: bool | None = None) -> None:
        """Move (rename) a file within this storage."""
        overwrite = self.declaration.overwrite if overwrite is None else overwrite
        target = names.clean(target)
        with signals.observed(self.declaration, "move", target, signals.file_saved):
            self.backend.move(names.clean(source), target, overwrite=overwrite)

    # -- batches -------------------------------------------------------------------------------------

    def save_many(
        self,
        items: Iterable[tuple[str | None, Any]],
        prefix: str | Callable[[], str] | None = None,
        overwrite: bool | None = None,
        rename: bool | None = None,
        *,
        concurrency: int | None = None,
    ) -> list[str]:
        """Save ``(filename, source)`` pairs, several at once; return the stored names in order.

        Each item goes through :meth:`save` (the same intake, policy and signals; ``filename`` may be
        None for an upload that names itself). Items are saved concurrently on the storage's threads,
        at most ``concurrency`` (default: the ``BATCH_CONCURRENCY`` setting) at a time, which over a
        distant link saves the round trips a loop would wait for. When some fail, the others are
        still done and :class:`~flask_fs.errors.BatchError` lists each failure by item. Under
        gevent's monkey-patching the threads are greenlets: the batch runs as concurrently and lets
        other greenlets run while it waits on the network.
        """

        def save_one(item: tuple[str | None, Any]) -> str:
            filename, source = item
            return self.save(source, filename, prefix, overwrite, rename)

        return self._run_many(save_one, items, concurrency, lambda item: repr(item[0]))

    def read_many(self, filenames: Iterable[str], *, concurrency: int | None = None) -> list[bytes]:
        """The contents of ``filenames``, in order, read several at once (see :meth:`save_many`);
        missing files are reported by :class:`~flask_fs.errors.BatchError` as FileNotFound."""
        return self._run_many(self.read, filenames, concurrency, repr)

    def _run_many(
        self, func: Callable[[Any], Any], items: Iterable[Any], concurrency: int | None, label: Callable[[Any], str]
    ) -> list[Any]:
        """``func`` on every item, at most ``concurrency`` at a time, each in a copy of the caller's
        context (its app context, for signal receivers); results or exceptions, in order."""
        limit = max(1, min(concurrency or self.batch_concurrency, self.batch_concurrency))
        pool = self._threads()
        futures: list[Future] = []
        labels: list[str] = []
        running: set[Future] = set()
        for item in items:
            if len(running) >= limit:
                _, running = wait(running, return_when=FIRST_COMPLETED)
            future = pool.submit(copy_context().run, func, item)
            futures.append(future)
            labels.append(label(item))
            running.add(future)
        results = [future.exception() or future.result() for future in futures]
        if any(isinstance(result, BaseException) for result in results):
            raise BatchError(results, labels)
        return results

    def _threads(self) -> ThreadPoolExecutor:
        """The storage's batch threads, started on first use and kept, as are the backend's connections
        that each thread opens (Swift's are per thread)."""
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.batch_concurrency, thread_name_prefix=f"flask-fs-{self.name}")
        return self._pool

    # -- reading -------------------------------------------------------------------------------------

    def exists(self, filename: str) -> bool:
        """Whether the file is stored."""
        return self.backend.exists(names.clean(filename))

    def __contains__(self, filename: str) -> bool:
        return self.exists(filename)

    def read(self, filename: str) -> bytes:
        """The whole content as bytes; prefer :meth:`read_chunks` or :meth:`open` for large files."""
        return self.backend.read(names.clean(filename))

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Stream the bytes from ``start`` to ``end`` (exclusive) in chunks of at most ``chunk_size``."""
        if chunk_size <= 0 or start < 0 or (end is not None and end < start):
            raise ValueError("chunk_size must be positive and 0 <= start <= end")
        return self.backend.read_chunks(names.clean(filename), chunk_size, start, end)

    def list_files(self) -> Iterator[str]:
        """Yield the name of every file in the storage (not the direct uploads waiting in ``UPLOAD_PREFIX``)."""
        listing = self.backend.list_files()
        if self.backend.takes_uploads:  # a Flask-FS backend: its listing as it gives it, as Flask-FS did
            return listing
        pending = uploads.pending_prefix(self.config)
        return (name for name in listing if not name.startswith(pending))

    def metadata(self, filename: str) -> dict[str, Any]:
        """``filename``, ``url``, ``checksum`` (``'algo:hex'``), ``size``, ``mime``, ``modified``."""
        filename = names.clean(filename)
        meta = dict(self.backend.metadata(filename))
        meta["filename"] = posixpath.basename(filename)
        try:
            meta["url"] = self.url_of(filename, True)
        except ConfigurationError:  # bound without an app nor a URL: nothing to link to
            meta["url"] = None
        return meta

    def path(self, filename: str) -> str:
        """The absolute local path of a file (local backend only; OperationNotSupported elsewhere)."""
        return self.backend.path(names.clean(filename))

    def check(self) -> None:
        """Raise an FSError unless the backend's server is reachable with the configured credentials."""
        try:
            self.backend.check()
        except FSError:
            raise
        except Exception as exc:
            raise FSError(f"storage {self.name!r} is not reachable: {exc}") from exc

    def close(self) -> None:
        """Release the backend's connections and threads."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


def bind(
    declaration: Declaration,
    settings: Mapping[str, Any],
    local_root: str | None = None,
    view_url: ViewURL | None = None,
    url_scheme: Callable[[], str] | None = None,
) -> BoundStorage:
    """Bind ``declaration`` to settings in Flask config form (``FS_BACKEND``, ``<NAME>_FS_*``...).

    ``local_root`` is where local storages live when ``FS_ROOT`` is unset (``init_app`` passes
    ``<instance_path>/fs``). Raises ConfigurationError, naming the setting to fix, for an unknown
    backend or a missing required setting.
    """
    name = declaration.name
    own_key = f"{name.upper()}_FS_BACKEND"
    backend_key = own_key if settings.get(own_key) else "FS_BACKEND"
    backend_name = settings.get(backend_key) or "local"
    try:
        backend_cls = load_backend(backend_name)
    except ConfigurationError as exc:
        raise ConfigurationError(f"storage {name!r}: {backend_key} = {backend_name!r}: {exc}") from exc
    defaults: dict[str, Any] = {}
    if backend_name == "local":
        root = settings.get("FS_ROOT") or local_root
        if root:
            defaults["root"] = os.path.join(root, name)
    backends = available_backends()
    declared = STORAGE_SETTINGS + backend_cls.settings
    if backend_cls.declares_settings:
        unknown_keys(settings, name, backend_name, backends, {setting.name for setting in declared}, settings_anywhere)
    config = storage_settings(settings, name, backend_name, backends, defaults)
    config = resolve(declared, name, config, f"{backend_name} backend")
    token = deferred_setup.set(True)
    try:
        backend = adapt(name, config, backend_cls(name, config))
    finally:
        deferred_setup.reset(token)
    bound = BoundStorage(declaration, backend.config, backend, view_url, url_scheme)
    bound._settings = settings
    return bound


def _only_images(extensions: Any, allow: Any) -> bool:
    """Whether a storage accepts nothing but images (then its uploads' content is checked by default)."""
    if isinstance(extensions, (All, AllExcept)) or isinstance(allow, (All, AllExcept)):
        return False
    accepted = set(extensions) | set(allow)
    return bool(accepted) and accepted <= _IMAGE_EXTENSIONS
