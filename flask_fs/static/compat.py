"""Flask-S3's API on top of :class:`StaticFiles`: migrating apps change one import.

``FlaskS3(app)``, ``create_all(app, ...)`` and ``url_for`` behave as Flask-S3 0.3's, reading the
``FLASKS3_*`` settings (and the older ``S3_*`` / ``USE_S3*``) through
:func:`~flask_fs.static.settings.translate_flask_s3`, without writing into ``app.config``. URLs are
Flask-S3's (``FLASKS3_CDN_DOMAIN``, else the bucket on ``FLASKS3_BUCKET_DOMAIN``), wherever the
uploads go (``FLASKS3_ENDPOINT_URL``, ``FS_S3_ENDPOINT``, ``AWS_ENDPOINT_URL``). Uploads go to the
target storage (an s3 storage unless configured otherwise), in parallel. Deliberate differences:

* nothing is made public unless asked (``put_bucket_acl=True``, ``FS_STATIC_ACL = 'public-read'``):
  Flask-S3 set public-read ACLs, which buckets created since 2023 refuse by default;
* only changed files are uploaded unless ``FLASKS3_ONLY_MODIFIED = False`` says otherwise;
* Content-Type is always set (``FLASKS3_FORCE_MIMETYPE`` is moot).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from ..errors import BackendError, ConfigurationError, OperationNotSupported
from . import publishing
from .ext import EXTENSION_KEY, setup, url_for
from .publishing import logger

#: Region names of Flask-S3's boto 2 days, accepted by ``create_all(location=...)``.
LEGACY_LOCATIONS = {
    "DEFAULT": "us-east-1", "": "us-east-1", "EU": "eu-west-1", "USWest": "us-west-1", "USWest2": "us-west-2",
    "SAEast": "sa-east-1", "APNortheast": "ap-northeast-1", "APSoutheast": "ap-southeast-1",
    "APSoutheast2": "ap-southeast-2", "CNNorth1": "cn-north-1",
}  # fmt: skip


class FlaskS3:
    """Flask-S3's extension object: ``FlaskS3(app)`` or ``FlaskS3().init_app(app)``."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read the Flask-S3 settings of ``app`` and make its templates use published static URLs."""
        setup(app, templates=True, flask_s3=True)


def create_all(
    app: Flask,
    user: str | None = None,
    password: str | None = None,
    bucket_name: str | None = None,
    location: str | None = None,
    include_hidden: bool = False,
    filepath_filter_regex: str | None = None,
    put_bucket_acl: bool = False,
) -> publishing.PublishResult:
    """Publish the static files of ``app`` and its blueprints, creating the bucket if it is missing.

    The settings are read when it is called, as Flask-S3 does; the arguments override them for this
    call only. Unlike Flask-S3, nothing is made public unless asked: ``put_bucket_acl=True`` sets the
    bucket ACL to public-read, and ``FS_STATIC_ACL = 'public-read'`` gives each file that ACL.
    """
    overrides: dict[str, Any] = {}
    if location is not None:
        overrides["REGION"] = LEGACY_LOCATIONS.get(location, location)
    for key, value in (("BUCKET", bucket_name), ("ACCESS_KEY", user), ("SECRET_KEY", password)):
        if value:
            overrides[key] = value
    previous = app.extensions.get(EXTENSION_KEY)
    name = (previous.storage.name if previous else None) or app.config.get("FS_STATIC_STORAGE") or "assets"
    keys = {f"{name.upper()}_FS_{key}": value for key, value in overrides.items()}
    bound = setup(app, templates=False, flask_s3=True, overrides=keys)
    try:
        settings = bound.settings.replace(
            include_hidden=include_hidden,
            filter=re.compile(filepath_filter_regex) if filepath_filter_regex else bound.settings.filter,
        )
        target = bound.target(app)
        backend = target.backend
        config = backend.config
        if config.get("backend") == "s3" and not (config.get("bucket") and config.given("bucket")):
            bucket_key = f"{name.upper()}_FS_BUCKET"
            raise ConfigurationError(
                f"no bucket to publish to: set FLASKS3_BUCKET_NAME (or {bucket_key}) or pass bucket_name"
            )
        if put_bucket_acl:
            _put_public_bucket_acl(backend)
        return publishing.apply(publishing.plan(target, settings))
    finally:
        if keys:  # back to the app's own settings
            try:
                setup(app, templates=False)
            except ConfigurationError as exc:  # they are incomplete without the arguments
                logger.warning("storage %r keeps the settings given to create_all: %s", name, exc)


def _put_public_bucket_acl(backend: Any) -> None:
    """Make an S3 bucket publicly readable (Flask-S3's default; ours only on request)."""
    client, bucket = getattr(backend, "client", None), getattr(backend, "bucket", None)
    if client is None or bucket is None:
        raise OperationNotSupported(f"put_bucket_acl needs an s3 storage, not {type(backend).__name__}")
    backend.check()  # creates the bucket first, when allowed
    try:
        client.put_bucket_acl(Bucket=bucket, ACL="public-read")
    except Exception as exc:
        raise BackendError(f"cannot make bucket {bucket!r} public: {exc}") from exc


__all__ = ["FlaskS3", "create_all", "url_for"]
