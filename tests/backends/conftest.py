"""The backends under test: each contract test runs once per entry of BACKENDS.

The servers come from the session fixtures of tests/conftest.py. MongoDB cannot run here: GridFS
runs on mongomock, and on a real server when FLASK_FS_MONGO_URL gives its URL.
"""

from __future__ import annotations

import os
import uuid

import pytest

import flask_fs as fs
from tests.conftest import make_app
from tests.servers import SWIFT_TEMPURL_KEY

BACKENDS = ["local", "s3-moto", "s3-swift", "swift", "gridfs-mongomock", "gridfs-mongodb"]
MONGO_URL = os.environ.get("FLASK_FS_MONGO_URL")


def unique(prefix: str) -> str:
    """A fresh bucket/container/database name (3-63 lower-case characters)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def s3_settings(endpoint: str, access_key: str, secret_key: str) -> dict:
    return {
        "FS_BACKEND": "s3",
        "FS_S3_ENDPOINT": endpoint,
        "FS_S3_REGION": "us-east-1",
        "FS_S3_ACCESS_KEY": access_key,
        "FS_S3_SECRET_KEY": secret_key,
        "FS_S3_CREATE_BUCKET": True,
        "FS_S3_ADDRESSING_STYLE": "path",
        "FILES_FS_BUCKET": unique("flask-fs"),
    }


def swift_settings(server) -> dict:
    return {
        "FS_BACKEND": "swift",
        "FS_SWIFT_AUTHURL": server.auth_url,
        "FS_SWIFT_USER": server.user,
        "FS_SWIFT_KEY": server.key,
        "FS_SWIFT_TEMPURL_KEY": SWIFT_TEMPURL_KEY,
        "FILES_FS_CONTAINER": unique("flask-fs"),
    }


def gridfs_settings(url: str) -> dict:
    return {"FS_BACKEND": "gridfs", "FS_GRIDFS_MONGO_URL": url, "FS_GRIDFS_MONGO_DB": unique("flaskfs")}


def backend_settings(request, kind: str) -> dict:
    """The app settings that put storage ``files`` on backend ``kind``."""
    if kind == "local":
        return {}
    if kind == "s3-moto":
        return s3_settings(request.getfixturevalue("moto_endpoint"), "testing", "testing")
    if kind == "s3-swift":
        server = request.getfixturevalue("swift_server")
        return s3_settings(server.endpoint, server.user, server.key)
    if kind == "swift":
        return swift_settings(request.getfixturevalue("swift_server"))
    if kind == "gridfs-mongomock":
        request.getfixturevalue("use_mongomock")
        return gridfs_settings("mongodb://localhost")
    if kind == "gridfs-mongodb":
        if not MONGO_URL:
            pytest.skip("no real MongoDB here: set FLASK_FS_MONGO_URL to run GridFS against one")
        return gridfs_settings(MONGO_URL)
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def backend_kind(request):
    return request.param


@pytest.fixture
def backend_app(request, backend_kind, tmp_path):
    return make_app(tmp_path, **backend_settings(request, backend_kind))


@pytest.fixture
def any_storage(backend_app):
    """Storage ``files`` (all extensions) on each backend in turn, inside an app context."""
    files = fs.Storage("files", fs.ALL)
    fs.init_app(backend_app, files)
    with backend_app.app_context():
        yield files
        for name in list(files.list_files()):
            files.delete(name)
