"""Fixtures shared by the whole suite: Flask apps with flask_fs on a temporary local root."""

from __future__ import annotations

import io

import pytest
from flask import Flask

import flask_fs as fs


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
