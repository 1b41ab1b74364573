"""The :class:`StaticFiles` extension: a target storage for the static files, and their URLs.

Once initialised, ``url_for('static', filename=...)`` and ``url_for('<blueprint>.static', ...)`` in
templates give the URL of the published copy; every other endpoint goes to Flask's ``url_for``.
"""

from __future__ import annotations

import os
import threading
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import flask
from flask import Flask, current_app, has_request_context, request
from werkzeug.routing import MapAdapter
from werkzeug.security import safe_join

from .. import names
from ..config import join_url
from ..errors import FSError
from ..files import ALL
from ..storage import FSState, Storage, init_app
from . import publishing
from .settings import DEFAULTS, Settings, static_config

EXTENSION_KEY = "fs_static"


@dataclass
class _State:
    """What the extension keeps on one app, at ``app.extensions['fs_static']``."""

    settings: Settings
    storage: Storage
    flask_s3: bool = False  # set up through Flask-S3's API: its URL rules even without FLASKS3_* settings
    owns_storage: bool = True  # the storage was configured here (else by the app, which keeps it as it is)
    storage_inputs: dict[str, Any] | None = None  # the settings it was configured from here
    _roots: dict[str, publishing.StaticRoot] | None = None
    _paths: MapAdapter | None = None
    _base: tuple[str | None] | None = None
    _hashes: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rewrites(self, app: Flask) -> bool:
        """Whether static URLs point at the published copies right now (debug and testing switches)."""
        settings = self.settings
        if not settings.active or (app.debug and not settings.debug):
            return False
        return not (app.testing and not settings.testing)

    def roots(self, app: Flask) -> dict[str, publishing.StaticRoot]:
        if self._roots is None:
            self._roots = {root.endpoint: root for root in publishing.static_roots(app)}
        return self._roots

    def path(self, app: Flask, endpoint: str, values: dict[str, Any]) -> str:
        """The URL path (and query) Flask gives a static file, without the app's script root."""
        if self._paths is None:
            self._paths = app.url_map.bind("localhost")
        return self._paths.build(endpoint, values)

    def target(self, app: Flask) -> publishing.Target:
        return publishing.Target(app, self.storage)

    def base_url(self) -> str | None:
        """The URL the published names are appended to; None when the storage's own URLs are used."""
        if self._base is None:
            self._base = (_base_url(self.settings, self.storage),)
        return self._base[0]

    def local_hash(self, folder: str, filename: str) -> str | None:
        """The content hash of a local static file (cached until its inode, size, mtime or ctime change)."""
        path = safe_join(folder, filename)
        if path is None:
            return None
        try:
            info = os.stat(path)
        except OSError:
            return None
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        cached = self._hashes.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            digest = publishing.file_sha256(path)
        except OSError:
            return None
        with self._lock:
            self._hashes[path] = (stamp, digest)
        return digest


def _base_url(settings: Settings, storage: Storage) -> str | None:
    """FS_STATIC_URL, else the storage's URL, else a bucket URL for S3 storages, else None."""
    if settings.url:
        return join_url(settings.url)
    config = storage.config
    if config.get("url"):
        return join_url(config["url"])
    backend = storage.backend
    bucket = getattr(backend, "bucket", None) or config.get("bucket")
    if config.get("backend") != "s3" or not bucket:
        return None
    folder = (getattr(backend, "prefix", None) or config.get("prefix") or "").strip("/")
    endpoint = config.get("endpoint") or config.get("endpoint_url")
    if settings.bucket_domain:
        scheme, domain = ("https" if settings.https else "http"), settings.bucket_domain.strip("/")
        style = settings.url_style or "host"
    elif endpoint:
        parts = urlsplit(endpoint)
        scheme, domain = parts.scheme or "https", (parts.netloc + parts.path).strip("/")
        addressing = config.get("addressing_style")
        style = settings.url_style or ("host" if addressing in ("virtual", "host") else "path")
    else:
        scheme, domain = ("https" if settings.https else "http"), "s3.amazonaws.com"
        style = settings.url_style or "host"
    base = f"{scheme}://{bucket}.{domain}/" if style == "host" else f"{scheme}://{domain}/{bucket}/"
    return base + quote(folder) + "/" if folder else base


def setup(
    app: Flask,
    storage: Storage | None = None,
    *,
    templates: bool = True,
    flask_s3: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> _State:
    """Read the static settings of ``app`` (now) and bind the target storage: what both APIs' init does.

    ``app.config`` is not changed: derived settings (Flask-S3's translated, the s3 default backend)
    are layered on top of it, and ``overrides`` (``<STORAGE>_FS_*`` keys) on top of those. A storage
    the app configured itself is left as it is, unless there are ``overrides``.
    """
    previous: _State | None = app.extensions.get(EXTENSION_KEY)
    registered: FSState | None = app.extensions.get("fs")
    flask_s3 = flask_s3 or bool(previous and previous.flask_s3)
    if storage is None and previous is not None:
        storage = previous.storage
    if storage is None:
        name = str(app.config.get("FS_STATIC_STORAGE") or DEFAULTS["FS_STATIC_STORAGE"])
        storage = (registered.storages.get(name) if registered else None) or Storage(name, ALL)
    if previous is not None and previous.storage is storage:
        owns = previous.owns_storage
    else:
        owns = registered is None or storage.name not in registered.bound
    source = static_config(app.config, storage.name, flask_s3=flask_s3, backend=owns)
    settings = Settings.from_config(source).replace(storage=storage.name)
    inputs = None
    overridden_before = previous is not None and previous.storage is storage and previous.storage_inputs is not None
    if owns or overrides or overridden_before:
        if registered is None:  # flask_fs itself is not set up: only what the storage needs
            registered = app.extensions["fs"] = FSState()
        registered.storages.setdefault(storage.name, storage)
        settings_in = ChainMap(dict(overrides), source) if overrides else source
        inputs = _storage_inputs(settings_in, storage.name)
        unchanged = previous is not None and previous.storage is storage and previous.storage_inputs == inputs
        if not unchanged or storage.name not in registered.bound:
            storage.configure(app, settings_in)
        # else: same settings, so the backend is kept, with its client and connections
        if registered.bound[storage.name].config.get("backend") == "local" and "fs" not in app.blueprints:
            init_app(app)  # local files are served by the fs view
    state = app.extensions[EXTENSION_KEY] = _State(settings, storage, flask_s3, owns, inputs)
    if templates and settings.active:
        app.jinja_env.globals["url_for"] = url_for
    return state


def _storage_inputs(source: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The settings a storage's configuration reads (to tell when it must be configured again)."""
    return {key: value for key, value in source.items() if key.startswith(("FS_", f"{name.upper()}_FS_"))}


class StaticFiles:
    """Publishes an app's static files to a storage, and points template URLs at the published copies.

    ``storage`` is the target (default: a storage named ``FS_STATIC_STORAGE``, ``'assets'``, whose
    backend defaults to s3). Settings are read by :meth:`init_app` from the ``FS_STATIC_*`` keys
    (and Flask-S3's ``FLASKS3_*``, translated), without changing ``app.config``.
    """

    def __init__(self, app: Flask | None = None, storage: Storage | None = None) -> None:
        self.storage = storage
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, templates: bool = True) -> None:
        """Set up the target storage on ``app`` and, with ``templates``, the ``url_for`` of its templates."""
        setup(app, self.storage, templates=templates)

    # -- publishing ---------------------------------------------------------------------------------

    @staticmethod
    def plan(
        app: Flask | None = None, *, delete: bool = False, verify: bool = False, force: bool = False
    ) -> publishing.Plan:
        """What :meth:`publish` would upload and delete, without changing anything."""
        app, bound = _state_for(app)
        return publishing.plan(bound.target(app), bound.settings, delete=delete, verify=verify, force=force)

    @staticmethod
    def publish(
        app: Flask | None = None,
        *,
        dry_run: bool = False,
        delete: bool = False,
        verify: bool = False,
        force: bool = False,
        progress: publishing.Progress | None = None,
    ) -> publishing.PublishResult:
        """Publish the static files of ``app`` (default: the current app); see :func:`publish`."""
        return publish(app, dry_run=dry_run, delete=delete, verify=verify, force=force, progress=progress)


def _state_for(app: Flask | None) -> tuple[Flask, _State]:
    """The app and its extension state, set up with default settings if it was not yet."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    bound = app.extensions.get(EXTENSION_KEY) or setup(app, templates=False)
    return app, bound


def publish(
    app: Flask | None = None,
    *,
    dry_run: bool = False,
    delete: bool = False,
    verify: bool = False,
    force: bool = False,
    progress: publishing.Progress | None = None,
) -> publishing.PublishResult:
    """Upload the static files of ``app`` that changed since the last publish, in parallel.

    ``delete`` removes published files that no longer exist locally; ``verify`` checks the storage
    itself for files changed or deleted there (slower: it lists and inspects every file); ``force``
    uploads everything; ``dry_run`` only reports what would change. Raises PublishError (with the
    result) if some files failed, after recording the others.
    """
    app, bound = _state_for(app)
    planned = publishing.plan(bound.target(app), bound.settings, delete=delete, verify=verify, force=force)
    if dry_run:
        return publishing.dry_run(planned)
    return publishing.apply(planned, progress)


def static_url(endpoint: str, filename: str, **values: Any) -> str:
    """The URL of the published copy of a static file (no debug or testing switch applies here)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    bound = bound_state(app)
    root = bound.roots(app).get(endpoint)
    if root is None:
        return flask.url_for(endpoint, filename=filename, **values)
    settings = bound.settings
    filename = filename.lstrip("/")
    query = {k: v for k, v in values.items() if not k.startswith("_") and v is not None}
    if settings.cache_bust:
        digest = bound.local_hash(root.folder, filename)
        if digest and settings.cache_bust == "name":
            filename = publishing.hashed_name(filename, digest)
        elif digest:
            query["v"] = digest[: publishing.HASH_LENGTH]
    base = bound.base_url()
    if base is None:
        name = names.join(settings.prefix or None, root.url_path + filename)
        url = bound.storage.url(name, external=bool(values.get("_external")))
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
    else:  # Flask's own path and query (as Flask-S3 did), below the base URL and prefix
        path, mark, rest = bound.path(app, endpoint, {**query, "filename": filename}).partition("?")
        # S3 reads a bare "+" in a path as a space: encode it, unlike Flask
        url = base + (settings.prefix + "/" if settings.prefix else "") + path.lstrip("/").replace("+", "%2B")
        url += mark + rest
        scheme = values.get("_scheme")
        if scheme and "://" in url:
            url = f"{scheme}://{url.split('://', 1)[1]}"
    if values.get("_anchor"):
        url += "#" + quote(str(values["_anchor"]))
    return url


def url_for(endpoint: str, **values: Any) -> str:
    """Flask's ``url_for``, except that static endpoints give the URL of the published copy.

    Installed as the templates' ``url_for`` by :meth:`StaticFiles.init_app`. Static URLs stay local
    when the extension is off (``FS_STATIC_ACTIVE``), in debug mode unless ``FS_STATIC_DEBUG``, and
    in testing mode when ``FS_STATIC_TESTING`` is false.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    bound = app.extensions.get(EXTENSION_KEY)
    if endpoint.startswith(".") and has_request_context() and request.blueprint:
        endpoint = request.blueprint + endpoint
    if (
        bound is None
        or not (endpoint == "static" or endpoint.endswith(".static"))
        or "filename" not in values
        or not bound.rewrites(app)
    ):
        return flask.url_for(endpoint, **values)
    return static_url(endpoint.lstrip("."), **values)


def bound_state(app: Flask) -> _State:
    """The extension state of ``app`` (FSError if static publishing is not set up there)."""
    try:
        return app.extensions[EXTENSION_KEY]
    except KeyError:
        raise FSError(f"static publishing is not set up on app {app.name!r}: use StaticFiles(app)") from None


__all__ = ["StaticFiles", "bound_state", "publish", "static_url", "url_for"]
