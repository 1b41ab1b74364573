"""Fixtures shared by the whole suite: Flask apps on a temporary local root, and real servers.

The servers start once per session, on first use, on free loopback ports: moto's S3 server and an
OpenStack Swift All-In-One (which also answers the S3 API and checks signatures like AWS).
"""

from __future__ import annotations

import io
import shutil

import pytest
from flask import Flask

import flask_fs as fs
from tests.servers import start_moto, start_postgres, start_redis, start_swift

# As users enable it: the fs_memory fixture, and detailed assertions in the contract suite.
pytest_plugins = ["flask_fs.testing"]


def make_app(tmp_path, **config) -> Flask:
    """A Flask app whose instance folder (hence default FS_ROOT) is inside ``tmp_path``."""
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(TESTING=True, SERVER_NAME="localhost", FS_SERVE=True, **config)
    return app


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def storage(app):
    """A local storage accepting every extension, inside an app context."""
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    with app.app_context():
        yield files


@pytest.fixture
def client(app, storage):
    return app.test_client()


def stream(data: bytes | str) -> io.BytesIO:
    return io.BytesIO(data.encode() if isinstance(data, str) else data)


@pytest.fixture(scope="session")
def moto_endpoint():
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def swift_server():
    server = start_swift()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of its own (Debian's binaries), started on first use; skipped without them."""
    try:
        server = start_postgres()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """Debian's redis-server on a free loopback port; skipped only if the binary is absent."""
    try:
        server = start_redis()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def use_mongomock(monkeypatch):
    """Make ``pymongo.MongoClient`` a mongomock client, with what GridFSBucket needs of it."""
    import types

    import mongomock
    import mongomock.gridfs
    import pymongo

    mongomock.gridfs.enable_gridfs_integration()
    monkeypatch.setattr(
        mongomock.MongoClient, "options", property(lambda self: types.SimpleNamespace(timeout=None)), raising=False
    )
    monkeypatch.setattr(pymongo, "MongoClient", mongomock.MongoClient)
