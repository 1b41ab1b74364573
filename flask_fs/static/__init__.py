"""Static files on a storage: publish the app's static folders, serve their URLs from there.

Native API::

    from flask_fs.static import StaticFiles, publish

    static = StaticFiles(app)       # target: storage 'assets' (s3 unless ASSETS_FS_BACKEND says otherwise)
    result = publish(app)           # or: flask fs publish [--dry-run] [--delete] [--verify]

Flask-S3 API (change ``import flask_s3`` into ``from flask_fs import static as flask_s3``)::

    from flask_fs.static import FlaskS3, create_all, url_for

Settings are the ``FS_STATIC_*`` keys of :mod:`flask_fs.static.settings`; Flask-S3's are translated.
"""

from __future__ import annotations

from .compat import FlaskS3, create_all
from .ext import StaticFiles, publish, static_url, url_for
from .publishing import Asset, Plan, PublishError, PublishResult, collect, static_roots
from .settings import DEFAULTS, Settings, translate_flask_s3

__all__ = [
    "DEFAULTS", "Asset", "FlaskS3", "Plan", "PublishError", "PublishResult", "Settings", "StaticFiles", "collect",
    "create_all", "publish", "static_roots", "static_url", "translate_flask_s3", "url_for",
]  # fmt: skip
