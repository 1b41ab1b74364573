"""Flask-Store 0.0.2's API on a flask_fs storage: migrating apps change one import.

Change ``import flask_store`` into ``from flask_fs import store as flask_store``::

    store = flask_store.Store(app)          # or Store() then store.init_app(app)
    f = store.Provider().save(request.files['afile'])
    f.absolute_url()                        # 'http://127.0.0.1:5000/flaskstore/photo.jpg'

The ``STORE_*`` settings are mapped onto one flask_fs storage named ``store`` (:data:`STORAGE`),
so its names, atomic writes and serving headers apply; keys in flask_fs's own names
(``STORE_FS_<KEY>``, ``FS_S3_<KEY>``...) win over the translated ones. Deliberate differences from
Flask-Store (unsafe names raise :class:`~flask_fs.errors.InvalidFileName`, clashes never overwrite,
no public-read ACL unless asked, :class:`S3GeventStore` uploads in a job of :mod:`flask_fs.jobs`
that keeps its errors...) are listed in the migration guide.
"""

from __future__ import annotations

import os
import posixpath
import secrets
from dataclasses import dataclass
from importlib import import_module
from typing import IO, Any, ClassVar
from urllib.parse import quote

from flask import Flask, abort, current_app, has_app_context, has_request_context, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.local import LocalProxy

from . import names
from .backends import available_backends
from .config import storage_settings
from .errors import ConfigurationError, FileNotFound, InvalidFileName
from .files import ALL
from .storage import Storage, init_app

__all__ = [
    "DEFAULT_PROVIDER", "STORAGE", "BaseStore", "LocalStore", "NotConfiguredError", "Provider", "S3GeventStore",
    "S3Store", "Store", "StoreFile", "StoreState", "store_provider",
]  # fmt: skip

DEFAULT_PROVIDER = "flask_store.stores.local.LocalStore"
#: Endpoint of the route serving a local store's files (Flask-Store's name).
ENDPOINT = "flask.store.file"
#: Characters of the random suffix given to a name that is taken (shortuuid's alphabet: no 0/O, 1/l/I).
_SUFFIX_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_SUFFIX_LENGTH = 22


class NotConfiguredError(ConfigurationError):
    """A setting the configured provider needs is missing, or ``STORE_PROVIDER`` is unknown."""


class _StoreStorage(Storage):
    """The storage behind the store: a taken name gets a random suffix, as Flask-Store's ``safe_filename``."""

    def resolve_conflict(self, target_folder: str, basename: str) -> str:
        """``photo_<22 random characters>.jpg``; ``save`` tries another if even that is taken."""
        stem, ext = os.path.splitext(basename)
        suffix = "_" + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(_SUFFIX_LENGTH))
        while stem and len(f"{stem}{suffix}{ext}".encode()) > names.MAX_SEGMENT_BYTES:
            stem = stem[:-1]
        return f"{stem}{suffix}{ext}"


#: The flask_fs storage holding the store's files, registered on each app by :meth:`Store.init_app`.
STORAGE = _StoreStorage("store", ALL, rename=True)


def store_provider() -> type[BaseStore]:
    """The provider class configured on the current app."""
    try:
        return current_app.extensions["store"].provider
    except KeyError:
        raise NotConfiguredError(
            f"Flask-Store is not initialised on app {current_app.name!r}: call Store(app) or store.init_app(app)"
        ) from None


#: The current app's provider class, as Flask-Store's module-level ``Provider``.
Provider: Any = LocalProxy(store_provider)


@dataclass
class StoreState:
    """What the store keeps on an app, at ``app.extensions['store']``."""

    store: Store
    app: Flask
    provider: type[BaseStore]


class Store:
    """Flask-Store's extension: ``Store(app)``, or ``store = Store()`` then ``store.init_app(app)``."""

    def __init__(self, app: Flask | None = None) -> None:
        self._provider: type[BaseStore] | None = None
        if app is not None:
            self.init_app(app)

    @property
    def Provider(self) -> type[BaseStore]:  # noqa: N802 - Flask-Store's name
        """The provider class of the current app (outside an app context: of the last app initialised)."""
        if has_app_context() and "store" in current_app.extensions:
            return current_app.extensions["store"].provider
        if self._provider is None:
            raise NotConfiguredError("Store is not initialised: call Store(app) or store.init_app(app)")
        return self._provider

    def init_app(self, app: Flask) -> None:
        """Check the ``STORE_*`` settings, register the ``store`` storage and, for local stores, the route.

        Raises NotConfiguredError naming the missing setting, or a flask_fs ConfigurationError for a
        bad flask_fs setting.
        """
        app.config.setdefault("STORE_DOMAIN", None)
        app.config.setdefault("STORE_PROVIDER", DEFAULT_PROVIDER)
        provider = self.provider(app)
        self.check_config(app)
        for key, value in provider._storage_settings(app.config).items():
            if value not in (None, ""):
                app.config.setdefault(f"{STORAGE.name.upper()}_FS_{key.upper()}", value)
        backend_key = f"{STORAGE.name.upper()}_FS_BACKEND"
        if app.config.setdefault(backend_key, provider.backend) != provider.backend:
            raise NotConfiguredError(
                f"STORE_PROVIDER {app.config['STORE_PROVIDER']!r} stores on {provider.backend!r}, "
                f"but {backend_key} is {app.config[backend_key]!r}"
            )
        init_app(app, STORAGE)
        if provider.background:
            from . import jobs

            if "fs_jobs" in app.extensions:
                jobs.ext.layer(app)
            else:
                jobs.init_app(app)
        app.extensions["store"] = StoreState(self, app, provider)
        self._provider = provider
        self.set_provider_defaults(app)
        self.register_route(app)

    def provider(self, app: Flask) -> type[BaseStore]:
        """The provider class named by ``STORE_PROVIDER``: a Flask-Store dotted name, a short name
        (``local``, ``s3``, ``s3gevent``), a dotted path to a :class:`BaseStore` subclass, or the class."""
        value = app.config.get("STORE_PROVIDER") or DEFAULT_PROVIDER
        if isinstance(value, type) and issubclass(value, BaseStore):
            return value
        if isinstance(value, str):
            known = _PROVIDERS.get(value)
            if known is not None:
                return known
            module, _, name = value.rpartition(".")
            try:
                found = getattr(import_module(module), name) if module else None
            except ImportError:
                found = None
            if isinstance(found, type) and issubclass(found, BaseStore):
                return found
        raise NotConfiguredError(
            f"STORE_PROVIDER = {value!r} is not a store provider; use one of {', '.join(sorted(_PROVIDERS))} "
            "or a flask_fs.store.BaseStore subclass"
        )

    def check_config(self, app: Flask) -> None:
        """Raise NotConfiguredError, naming each setting, if one the provider requires is unset.

        A required ``STORE_*`` key is also satisfied by its flask_fs name (e.g. ``STORE_S3_BUCKET``
        by ``STORE_FS_BUCKET`` or ``FS_S3_BUCKET``).
        """
        provider = self.provider(app)
        resolved = storage_settings(app.config, STORAGE.name, provider.backend, available_backends())
        missing = [
            key
            for key in provider.REQUIRED_CONFIGURATION
            if not app.config.get(key) and not resolved.get(provider.SETTINGS[key])
        ]
        if missing:
            ours = ", ".join(f"{STORAGE.name.upper()}_FS_{provider.SETTINGS[key].upper()}" for key in missing)
            raise NotConfiguredError(
                f"{', '.join(missing)} must be configured in your Flask application configuration "
                f"for {provider.__name__} (or, in flask_fs's names, {ours})"
            )

    def set_provider_defaults(self, app: Flask) -> None:
        """Let the provider fill in its default settings (``STORE_PATH``, ``STORE_URL_PREFIX``)."""
        self.provider(app).app_defaults(app)

    def register_route(self, app: Flask) -> None:
        """For providers that want it (local), serve the files under ``STORE_URL_PREFIX``."""
        if not self.provider(app).register_route or ENDPOINT in app.view_functions:
            return
        prefix = str(app.config["STORE_URL_PREFIX"]).strip("/") or (
            "flaskstore" if self.provider(app).background else ""
        )
        app.add_url_rule(f"/{prefix}/<path:filename>" if prefix else "/<path:filename>", ENDPOINT, _serve)


def _serve(filename: str) -> Any:
    """Serve a stored file with flask_fs's headers (nosniff, sandbox CSP); 404 for missing or unsafe names."""
    try:
        return STORAGE.serve(filename)
    except (FileNotFound, InvalidFileName):
        abort(404)


class BaseStore:
    """A provider: saves uploads into the ``store`` storage, below an optional ``destination`` folder.

    Create one per request (``store.Provider(destination=None)``) inside an app context.
    """

    #: Whether the store needs a route serving its files (local stores, and uploads waiting for promotion).
    register_route: ClassVar[bool] = False
    #: Whether ``save()`` returns at once and uploads in a job (see :mod:`flask_fs.jobs`).
    background: ClassVar[bool] = False
    #: The flask_fs backend the files go to.
    backend: ClassVar[str] = "local"
    #: Flask-Store settings without which the provider cannot work.
    REQUIRED_CONFIGURATION: ClassVar[tuple[str, ...]] = ()
    #: Flask-Store setting -> flask_fs setting of the storage (``STORE_PATH`` is handled by each provider).
    SETTINGS: ClassVar[dict[str, str]] = {}

    def __init__(self, destination: str | None = None) -> None:
        self.destination = names.clean_prefix(destination.strip("/") if isinstance(destination, str) else destination)
        if "store" not in current_app.extensions:
            store_provider()  # raises NotConfiguredError
        self.store_path = self.join(self._base_path(), self.destination)

    @property
    def storage(self) -> Storage:
        """The flask_fs storage the files are in."""
        return STORAGE

    @classmethod
    def _storage_settings(cls, config: Any) -> dict[str, Any]:
        """The flask_fs settings (lower-case keys) given by the app's ``STORE_*`` keys."""
        return {ours: config.get(theirs) for theirs, ours in cls.SETTINGS.items()}

    @staticmethod
    def app_defaults(app: Flask) -> None:
        """Fill in default ``STORE_*`` settings, once the storage is registered."""

    def _base_path(self) -> str:
        """Where the store's files are: a folder on disk, a key prefix in a bucket (here: the storage's root)."""
        return ""

    def _name(self, filename: str) -> str:
        """The storage name of ``filename`` in this provider's destination (InvalidFileName if unsafe)."""
        return names.join(self.destination, names.clean(filename))

    def join(self, *parts: str) -> str:
        """Join path parts the way this provider's paths are written."""
        return self.url_join(*parts)

    @staticmethod
    def url_join(*parts: str | None) -> str:
        """Join URL parts with single slashes, without a leading slash (``'flaskstore/a/b.jpg'``)."""
        return "/".join(part.strip("/") for part in parts if part and part.strip("/"))

    def exists(self, filename: str) -> bool:
        """Whether ``filename`` is stored in this provider's destination."""
        return self.storage.exists(self._name(filename))

    def safe_filename(self, filename: str) -> str:
        """``filename`` if it is free, else the name with a short random suffix (``photo_<id>.jpg``)."""
        name = self._name(filename)
        if not self.storage.exists(name):
            return filename
        folder, basename = posixpath.split(filename)
        return posixpath.join(folder, self.storage.resolve_conflict(folder, basename))

    def save(self, file: FileStorage) -> StoreFile:
        """Store an upload under its own name, or a suffixed one if that is taken; never overwrite.

        The whole upload is stored, even if it was read before. Raises InvalidFileName for names
        that are unsafe (``../x``, absolute, backslashes) or empty.
        """
        stream: IO[bytes] = file.stream
        if stream.seekable():
            stream.seek(0)
        stored = self.storage.save(
            stream, filename=self._name(file.filename or ""), rename=True, background=self.background
        )
        return StoreFile(stored[len(self.destination) + 1 :] if self.destination else stored, self.destination)

    def _absolute_url(self, name: str, relative_url: str) -> str:
        """The absolute URL of storage name ``name`` when ``STORE_DOMAIN`` is unset."""
        return relative_url


class LocalStore(BaseStore):
    """Files on the local disk, in ``STORE_PATH``, served by a route under ``STORE_URL_PREFIX``."""

    register_route = True
    backend = "local"

    @classmethod
    def _storage_settings(cls, config: Any) -> dict[str, Any]:
        return {"root": config.get("STORE_PATH")}

    @staticmethod
    def app_defaults(app: Flask) -> None:
        """``STORE_URL_PREFIX`` is ``/flaskstore``; ``STORE_PATH`` reports the storage's folder."""
        with app.app_context():
            app.config.setdefault("STORE_PATH", STORAGE.backend.root)  # type: ignore[attr-defined]
        app.config.setdefault("STORE_URL_PREFIX", "/flaskstore")

    def _base_path(self) -> str:
        return self.storage.backend.root  # type: ignore[attr-defined]

    def join(self, *parts: str) -> str:
        """Join file system path parts (later parts never restart at ``/``)."""
        path = ""
        for i, part in enumerate(parts):
            if part:
                path = os.path.join(path, part.lstrip(os.sep) if i else part)
        return path.rstrip(os.sep) or path

    def _absolute_url(self, name: str, relative_url: str) -> str:
        """The route's URL on the request's host (or ``SERVER_NAME``); the relative URL without either."""
        if has_request_context() or current_app.config.get("SERVER_NAME"):
            return url_for(ENDPOINT, filename=name, _external=True)
        return relative_url


class S3Store(BaseStore):
    """Files in an S3 bucket (``STORE_S3_*``), below the key prefix ``STORE_PATH``.

    ``STORE_S3_ENDPOINT`` (not in Flask-Store) names an S3-compatible server, e.g. MinIO or a local
    moto; ``FS_S3_ENDPOINT`` does too.
    """

    backend = "s3"
    REQUIRED_CONFIGURATION = ("STORE_S3_ACCESS_KEY", "STORE_S3_SECRET_KEY", "STORE_S3_BUCKET", "STORE_S3_REGION")
    SETTINGS = {
        "STORE_S3_ACCESS_KEY": "access_key",
        "STORE_S3_SECRET_KEY": "secret_key",
        "STORE_S3_BUCKET": "bucket",
        "STORE_S3_REGION": "region",
        "STORE_S3_ENDPOINT": "endpoint",
    }

    @classmethod
    def _storage_settings(cls, config: Any) -> dict[str, Any]:
        path = str(config.get("STORE_PATH") or "").strip("/")
        return {**super()._storage_settings(config), "prefix": path}

    @staticmethod
    def app_defaults(app: Flask) -> None:
        """``STORE_PATH`` reports the key prefix; ``STORE_URL_PREFIX`` defaults to it, so URLs match keys."""
        with app.app_context():
            prefix = "/" + str(STORAGE.config.get("prefix") or "").strip("/")
        app.config.setdefault("STORE_PATH", prefix)
        app.config.setdefault("STORE_URL_PREFIX", prefix.rstrip("/"))

    def _base_path(self) -> str:
        return str(self.storage.config.get("prefix") or "")

    def _absolute_url(self, name: str, relative_url: str) -> str:
        """The object's URL at the bucket: ``https://<bucket>.s3.amazonaws.com/<key>``, or on the endpoint."""
        from .static.ext import _base_url
        from .static.settings import Settings

        return (_base_url(Settings(), self.storage) or "/") + quote(name)


class S3GeventStore(S3Store):
    """Flask-Store's background S3 upload, without gevent: a job of :mod:`flask_fs.jobs`.

    ``save()`` keeps the upload in the local promotion cache and returns; a job uploads it to the
    bucket, retrying, and keeps the error if it keeps failing (``flask fs jobs list``). Until then
    :meth:`StoreFile.absolute_url` is the app's route (``STORE_URL_PREFIX``, else ``/flaskstore``),
    which serves it from the cache; once uploaded, the object's URL at the bucket.
    """

    register_route = True
    background = True

    def _absolute_url(self, name: str, relative_url: str) -> str:
        pending = getattr(self.storage.backend, "pending", None)
        if pending is not None and pending(name):
            return url_for(
                ENDPOINT, filename=name, _external=has_request_context() or bool(current_app.config.get("SERVER_NAME"))
            )
        return super()._absolute_url(name, relative_url)


_PROVIDERS: dict[str, type[BaseStore]] = {
    "local": LocalStore,
    "s3": S3Store,
    "s3gevent": S3GeventStore,
    **{f"flask_store.stores.{module}.{cls.__name__}": cls for module, cls in
       (("local", LocalStore), ("s3", S3Store), ("s3", S3GeventStore))},
    **{cls.__name__: cls for cls in (LocalStore, S3Store, S3GeventStore)},
}  # fmt: skip


class StoreFile:
    """A stored file of the current app's provider, in ``destination``: its paths and URLs."""

    def __init__(self, filename: str, destination: str | None = None) -> None:
        self.provider = store_provider()(destination=destination)
        self.filename = filename
        self.name = self.provider._name(filename)  # the name in the flask_fs storage; checks it is safe

    def __repr__(self) -> str:
        return f"<StoreFile {self.name!r}>"

    def absolute_path(self) -> str:
        """The file's path on disk (local), or its key in the bucket (S3)."""
        return self.provider.join(self.provider.store_path, self.filename)

    def relative_path(self) -> str:
        """The path below ``STORE_PATH``: the destination and the file name."""
        return self.provider.join(self.provider.destination, self.filename)

    def relative_url(self) -> str:
        """The URL path, from ``/``: ``STORE_URL_PREFIX``, the destination and the name, percent-encoded."""
        prefix = self.provider.url_join(current_app.config.get("STORE_URL_PREFIX"))
        return "/" + self.provider.url_join(prefix, quote(self.name))

    def absolute_url(self) -> str:
        """``STORE_DOMAIN`` followed by :meth:`relative_url`; without a domain, the local route's
        external URL or the object's URL at the S3 bucket."""
        domain = current_app.config.get("STORE_DOMAIN")
        if domain:
            return str(domain).rstrip("/") + self.relative_url()
        return self.provider._absolute_url(self.name, self.relative_url())
