"""The Flask layer of storages: declarations, ``init_app``, and the current app's bound storage.

A ``Storage`` object only holds what its declaration says (name, allowed extensions, upload
folder, overwrite policy). ``init_app`` binds it to each app's settings (a
:class:`~flask_fs.bound.BoundStorage`, kept in ``app.extensions['fs']``), so one storage declared
at import time serves any number of apps, each writing to its own root. Its methods act on the
current app's binding; ``bind(app)`` and ``from_settings(...)`` give one explicitly, for workers,
scripts and tests that have no app context.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from flask import Flask, current_app, has_request_context, request, url_for
from werkzeug.datastructures import FileStorage

try:  # the app context's ContextVar: a much cheaper way to the current app than the proxy
    from flask.globals import _cv_app
except ImportError:  # pragma: no cover - older or future Flask
    _cv_app = None

from . import bound as _bound_module
from . import intake
from .backends import BaseBackend
from .backends.local import LocalBackend
from .bound import BoundStorage, ViewURL, bind
from .config import Config, resolve_globals
from .errors import ConfigurationError, FSError
from .files import DEFAULTS, All, AllExcept, extension
from .streams import CHUNK_SIZE

__all__ = ["BoundStorage", "Config", "Storage"]

Extensions = Iterable[str] | All | AllExcept
Prefix = str | Callable[[], str] | None


@dataclass
class FSState:
    """Everything flask_fs keeps on an app, at ``app.extensions['fs']``."""

    storages: dict[str, Storage] = field(default_factory=dict)
    bound: dict[str, BoundStorage] = field(default_factory=dict)

    # Flask-FS kept ``{name: storage}`` at ``app.extensions['fs']``: read as that mapping too.
    def __contains__(self, name: object) -> bool:
        return name in self.storages

    def __getitem__(self, name: str) -> Storage:
        return self.storages[name]

    def get(self, name: str, default: Storage | None = None) -> Storage | None:
        return self.storages.get(name, default)


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
        self.extensions = extensions
        self.upload_to = upload_to
        self.overwrite = overwrite
        self.rename = rename

    def __repr__(self) -> str:
        return f"<Storage {self.name!r}>"

    # -- binding -----------------------------------------------------------------------------------

    def configure(self, app: Flask, source: Mapping[str, Any] | None = None) -> None:
        """Bind this storage to ``app``'s settings (see :mod:`flask_fs.config`); replaces an earlier binding.

        The settings are read from ``source`` when given instead of ``app.config`` (e.g. the app's
        config with derived keys layered on top, leaving ``app.config`` as it is). Raises
        ConfigurationError, naming the setting as the user wrote it, for an unknown backend or
        setting, a missing required setting or a value of the wrong type.
        """
        source = app.config if source is None else source
        bindings = state(app).bound
        previous = bindings.get(self.name)
        local_root = os.path.join(app.instance_path, "fs")
        bindings[self.name] = bind(self, source, local_root, _view_url_builder(app), _request_scheme)
        if "fs_jobs" in app.extensions:  # background jobs put their cache (and mirror) in front of it again
            from .jobs.ext import layer

            layer(app)
        if previous is not None:
            previous.close()

    def bind(self, app: Flask | None = None) -> BoundStorage:
        """This storage as bound on ``app`` (default: the current app) by ``init_app``."""
        app = app or _current_app()
        try:
            return app.extensions["fs"].bound[self.name]
        except (KeyError, AttributeError):
            raise FSError(
                f"storage {self.name!r} is not registered on app {app.name!r}: call flask_fs.init_app(app, storage)"
            ) from None

    def from_settings(self, settings: Mapping[str, Any], view_url: ViewURL | None = None) -> BoundStorage:
        """This storage bound to plain settings in Flask config form, with no app: for scripts and workers.

        ``FS_ROOT`` (or ``<NAME>_FS_ROOT``) is required for a local storage; URLs need ``<NAME>_FS_URL``
        (or a ``view_url`` builder).
        """
        return bind(self, settings, None, view_url)

    def _bound(self) -> BoundStorage:
        """The binding an operation acts on: the one running a hook, else the current app's."""
        running = _bound_module.active.get()
        if running is not None and running.declaration is self:
            return running
        ctx = _cv_app.get(None) if _cv_app is not None else None
        app = ctx.app if ctx is not None else _current_app()
        try:
            return app.extensions["fs"].bound[self.name]
        except (KeyError, AttributeError):
            return self.bind(app)

    def _bound_if_any(self) -> BoundStorage | None:
        """The binding, or None outside an app context (Flask-FS's properties answer empty there)."""
        if _bound_module.active.get() is None and (_cv_app.get(None) if _cv_app is not None else None) is None:
            return None
        return self._bound()

    @property
    def config(self) -> Config:
        """This storage's resolved settings on the current app (empty outside an app context)."""
        bound = self._bound_if_any()
        return bound.config if bound is not None else Config()

    @property
    def images_optimize(self) -> bool:
        """The app's ``FS_IMAGES_OPTIMIZE``: whether image fields optimize renditions by default."""
        bound = self._bound_if_any()
        return bound is not None and bound.images_optimize

    @property
    def backend(self) -> BaseBackend | None:
        """This storage's backend on the current app (None outside an app context)."""
        bound = self._bound_if_any()
        return bound.backend if bound is not None else None

    @property
    def jobs(self) -> Any:
        """The background job runner of the current app (``flask_fs.jobs.init_app``), or None."""
        bound = self._bound_if_any()
        return bound.jobs if bound is not None else None

    @property
    def backend_name(self) -> str:
        """The name of this storage's backend on the current app (``'local'``, ``'s3'``...)."""
        return self._bound().config["backend"]

    @property
    def root(self) -> str | None:
        """The backend's local folder, None for backends without one."""
        return getattr(self._bound().backend, "root", None)

    # -- policy hooks (override to add your own rules) -----------------------------------------------

    def extension_allowed(self, ext: str) -> bool:
        """Whether files with extension ``ext`` (no dot, any case) may be saved here.

        ``<NAME>_FS_DENY`` wins over ``<NAME>_FS_ALLOW``, which adds to the storage's ``extensions``.
        """
        return self._bound().extension_allowed(ext)

    def file_allowed(self, storage: Any, basename: str) -> bool:
        """Whether an upload may be saved as ``basename``; override to add your own checks."""
        return self.extension_allowed(extension(basename))

    def resolve_conflict(self, target_folder: str, basename: str) -> str:
        """A free name for ``basename`` in ``target_folder``: ``name_1.ext``, ``name_2.ext``, ..."""
        return self._bound().resolve_conflict(target_folder, basename)

    def policy(self) -> intake.Policy:
        """What this storage accepts on the current app, for :func:`flask_fs.intake.accept`."""
        return self._bound().policy()

    # -- operations, on the current app's binding (see BoundStorage for each) ------------------------

    @property
    def has_url(self) -> bool:
        """Whether the storage has a configured public URL (otherwise URLs point at the ``fs`` view)."""
        return self._bound().has_url

    @property
    def base_url(self) -> str:
        """The public URL of the storage's root, ending with ``/``."""
        return self._bound().base_url

    def url(self, filename: str, external: bool = False) -> str:
        """The URL a file is (or would be) reachable at; it does not check that the file exists.

        With a configured URL the name is appended, percent-encoded, to it; otherwise the URL is the
        ``fs`` view's (absolute with ``external``).
        """
        return self._bound().url(filename, external)

    def signed_url(self, filename: str, expires: int | None = None) -> str:
        """A temporary URL that grants read access without credentials (s3, swift)."""
        return self._bound().signed_url(filename, expires)

    def save(
        self,
        file_or_wfs: IO[bytes] | FileStorage | bytes | str,
        filename: str | None = None,
        prefix: Prefix = None,
        overwrite: bool | None = None,
        rename: bool | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        background: bool = False,
    ) -> str:
        """Save an upload (a Werkzeug ``FileStorage``), a binary file object, bytes or text; return its name.

        An upload's client-side name is sanitised; an explicit ``filename`` must already be safe.
        ``headers`` are stored with the file where the backend can (``backend.keeps_headers``, see
        ``BaseBackend.save``). ``background`` stores it in a fast cache at once and moves it here in
        a job (see :mod:`flask_fs.jobs`). Raises UnauthorizedFileType, ContentMismatch, FileExists,
        FileTooLarge or InvalidFileName.
        """
        return self._bound().save(
            file_or_wfs, filename, prefix, overwrite, rename, headers=headers, background=background
        )

    def save_many(
        self,
        items: Iterable[tuple[str | None, Any]],
        prefix: Prefix = None,
        overwrite: bool | None = None,
        rename: bool | None = None,
        *,
        concurrency: int | None = None,
    ) -> list[str]:
        """Save ``(filename, source)`` pairs concurrently; the stored names, in order (see
        :meth:`BoundStorage.save_many <flask_fs.bound.BoundStorage.save_many>`)."""
        return self._bound().save_many(items, prefix, overwrite, rename, concurrency=concurrency)

    def read_many(self, filenames: Iterable[str], *, concurrency: int | None = None) -> list[bytes]:
        """The contents of ``filenames``, in order, read concurrently."""
        return self._bound().read_many(filenames, concurrency=concurrency)

    def write(self, filename: str, content: bytes | str, overwrite: bool | None = None) -> None:
        """Store ``content`` (text is encoded as UTF-8) under ``filename``."""
        self._bound().write(filename, content, overwrite)

    def open(self, filename: str, mode: str = "r", **kwargs: Any) -> IO:
        """Open a file object: ``r``/``rb`` read, ``w``/``wb`` replace, ``x``/``xb`` create only.

        Writes are stored when the file is closed; an exception inside ``with`` discards them.
        """
        return self._bound().open(filename, mode, **kwargs)

    def delete(self, filename: str) -> None:
        """Delete the file or, if there is no such file, the folder (the files below ``filename/``);
        deleting a missing file does nothing."""
        self._bound().delete(filename)

    def copy(self, source: str, target: str, overwrite: bool | None = None) -> None:
        """Copy a file within this storage."""
        self._bound().copy(source, target, overwrite)

    def move(self, source: str, target: str, overwrite: bool | None = None) -> None:
        """Move (rename) a file within this storage."""
        self._bound().move(source, target, overwrite)

    def exists(self, filename: str) -> bool:
        """Whether the file is stored."""
        return self._bound().exists(filename)

    def __contains__(self, filename: str) -> bool:
        return self._bound().exists(filename)

    def read(self, filename: str) -> bytes:
        """The whole content as bytes; prefer :meth:`read_chunks` or :meth:`open` for large files."""
        return self._bound().read(filename)

    def read_chunks(
        self, filename: str, chunk_size: int = CHUNK_SIZE, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Stream the bytes from ``start`` to ``end`` (exclusive) in chunks of at most ``chunk_size``."""
        return self._bound().read_chunks(filename, chunk_size, start, end)

    def list_files(self) -> Iterator[str]:
        """Yield the name of every file in the storage."""
        return self._bound().list_files()

    def metadata(self, filename: str) -> dict[str, Any]:
        """``filename``, ``url``, ``checksum`` (``'algo:hex'``), ``size``, ``mime``, ``modified``."""
        return self._bound().metadata(filename)

    def path(self, filename: str) -> str:
        """The absolute local path of a file (local backend only; OperationNotSupported elsewhere)."""
        return self._bound().path(filename)

    def serve(self, filename: str) -> Any:
        """A response streaming the file to a browser, safely (see :mod:`flask_fs.views`)."""
        from . import names
        from .views import serve_file

        return serve_file(self._bound().backend, names.clean(filename))

    def check(self) -> None:
        """Raise an FSError unless the backend's server is reachable with the configured credentials."""
        self._bound().check()

    def presign_upload(
        self,
        name_hint: str,
        max_size: int | None = None,
        content_type: str | None = None,
        expires: int | None = None,
        *,
        size: int | None = None,
        sha256: str | None = None,
    ) -> dict[str, Any]:
        """What a browser needs to upload a file straight to the backend (see :mod:`flask_fs.uploads`).

        A mapping with ``url``, ``method`` (``POST`` or ``PUT``), ``fields`` (form fields before the
        file), ``headers``, ``filename`` (the intended name) and ``token`` (for :meth:`finalize`).
        ``size``/``sha256`` announce the exact size/SHA-256 that finalize checks. Raises
        UnauthorizedFileType for a name the storage refuses.
        """
        from .upload_views import presign

        return presign(
            self._bound(), name_hint, max_size=max_size, content_type=content_type, expires=expires, size=size,
            sha256=sha256,
        )  # fmt: skip

    def finalize(self, token: str) -> str:
        """Check a direct upload (size, checksum, content) and move it to its final name, which is returned.

        Raises UploadTokenInvalid (or Expired, Used), FileNotFound when nothing was uploaded, and the
        intake's errors after deleting the upload.
        """
        from .upload_views import finalize

        return finalize(self._bound(), token)


def _current_app() -> Flask:
    try:
        return current_app._get_current_object()  # type: ignore[attr-defined]
    except RuntimeError:
        raise FSError(
            "no Flask app is active: use the storage inside an app context, or bind it explicitly "
            "(storage.bind(app) or storage.from_settings(settings))"
        ) from None


def _request_scheme() -> str:
    """The scheme given to configured URLs written without one: the current request's, else ``http``."""
    return "https" if has_request_context() and request.is_secure else "http"


def _app_local_root() -> str | None:
    """The current app's local root, for local backends built directly without one (as Flask-FS did)."""
    app = current_app._get_current_object() if current_app else None  # type: ignore[attr-defined]
    if app is None:
        return None
    config = app.config
    return config.get("FS_LOCAL_ROOT") or config.get("FS_ROOT") or os.path.join(app.instance_path, "fs")


LocalBackend.default_root = _app_local_root


def _view_url_builder(app: Flask) -> ViewURL:
    """Builds URLs of the ``fs`` view on ``app``, in or out of a request (then a path unless ``SERVER_NAME``)."""

    def build(storage: str, filename: str, external: bool) -> str:
        ctx = _cv_app.get(None) if _cv_app is not None else None
        if ctx is not None and ctx.app is app:
            try:
                return url_for("fs.get_file", fs=storage, filename=filename, _external=external)
            except RuntimeError:  # no request and no SERVER_NAME
                pass
        server = app.config.get("SERVER_NAME")
        adapter = app.url_map.bind(
            server or "localhost",
            script_name=app.config["APPLICATION_ROOT"],
            url_scheme=app.config.get("PREFERRED_URL_SCHEME") or "http",
        )
        values = {"fs": storage, "filename": filename}
        return adapter.build("fs.get_file", values, force_external=external and bool(server))

    return build


def init_app(app: Flask, *storages: Storage) -> None:
    """Set up flask_fs on ``app``: global defaults, the ``fs`` blueprint, and these storages."""
    resolve_globals(app.config)
    if app.config["FS_SERVE"] is None and app.debug:
        app.config["FS_SERVE"] = True  # otherwise None: serve the storages that have no URL of their own
    if not app.config["FS_ROOT"]:
        app.config["FS_ROOT"] = os.path.join(app.instance_path, "fs")
    if app.config["FS_IMAGES_ENGINE"] != "auto" or "flask_fs.images" in sys.modules:
        from . import images  # a process-wide choice: libvips is an accelerator, not a per-app feature

        images.use_engine(app.config["FS_IMAGES_ENGINE"])
    fs_state = app.extensions.setdefault("fs", FSState())
    if "fs" not in app.blueprints:
        from .views import bp

        app.register_blueprint(bp, url_prefix=app.config["FS_PREFIX"])
    if "fs_uploads" not in app.blueprints:
        from .upload_views import bp as uploads_bp

        app.register_blueprint(uploads_bp, url_prefix=app.config["FS_PREFIX"])
    for storage in storages:
        fs_state.storages[storage.name] = storage
        storage.configure(app)


def close(app: Flask) -> None:
    """Release the clients, connection pools and threads of every storage's backend on ``app``.

    Call it when the app shuts down (a worker's exit hook, ``atexit``), not per request: the
    storages stay usable and reconnect on their next operation.
    """
    for bound in state(app).bound.values():
        bound.close()


def by_name(name: str) -> Storage:
    """The storage registered as ``name`` on the current app (FSError if none)."""
    try:
        return state().storages[name]
    except KeyError:
        raise FSError(f"no storage named {name!r} on this app") from None
