"""A pytest plugin giving Flask-FS 0.6.1's own test suite the environment it expects, and nothing else.

Their tests hard-code their servers and fixtures; this plugin provides them without touching the
tests: it starts moto's S3 and a Swift All-In-One on free ports and points the modules' constants
(``S3_SERVER``, ``AUTHURL``) at them, routes ``pymongo.MongoClient`` to one shared mongomock server
(or to a real MongoDB named by ``FLASK_FS_MONGO_URL``), draws the two images their conftest names
(``tests/flask.png`` and ``tests/flask.jpg``, absent from the wheel) with Pillow, pushes a request
context for tests using ``app`` (what pytest-flask did for them), and stands in for
``flask_mongoengine`` (whose last release cannot import with Flask 3). Loaded by
``test_flaskfs_suite.py`` as ``-p flaskfs_env``; the servers helper comes from ``FLASKFS_SERVERS``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

_servers: dict[str, object] = {}


def _load_servers_module() -> types.ModuleType:
    """Our ``tests/servers.py`` (start_moto, start_swift), loaded by path: their ``tests`` package shadows ours."""
    spec = importlib.util.spec_from_file_location("flaskfs_env_servers", os.environ["FLASKFS_SERVERS"])
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _draw_images(folder: Path) -> None:
    """The PNG and JPEG their image tests read. Like their Flask logo, the files are stored without
    optimization (an uncompressed PNG, a JPEG at quality 95), so an optimized or resized copy is smaller."""
    from PIL import Image, ImageDraw

    size = (600, 400)
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.linear_gradient("L").rotate(90).resize(size)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 40, 260, 260), fill=(20, 20, 20))
    draw.rectangle((330, 80, 560, 320), outline=(240, 240, 240), width=12)
    image.save(folder / "flask.png", "PNG", compress_level=0)
    image.save(folder / "flask.jpg", "JPEG", quality=95)


def _mongo() -> None:
    """Make every ``pymongo.MongoClient`` (theirs, ours, mongoengine's) reach one MongoDB."""
    import pymongo

    url = os.environ.get("FLASK_FS_MONGO_URL")
    if url:
        real = pymongo.MongoClient

        class RoutedClient(real):  # type: ignore[misc, valid-type]
            """Their tests name localhost:27017; send them to the server we were given."""

            def __init__(self, host=None, *args, **kwargs):
                if host in (None, "localhost", "mongodb://localhost:27017", "mongodb://localhost"):
                    host = url
                super().__init__(host, *args, **kwargs)

        pymongo.MongoClient = RoutedClient
        return

    import mongomock
    import mongomock.gridfs
    from mongomock.store import ServerStore

    mongomock.gridfs.enable_gridfs_integration()
    store = ServerStore()

    class SharedClient(mongomock.MongoClient):
        """Every client sees the same in-memory server, as clients of one real server would."""

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("_store", store)
            super().__init__(*args, **kwargs)

        @property
        def options(self):  # what GridFSBucket reads of a client
            return types.SimpleNamespace(timeout=None)

    pymongo.MongoClient = SharedClient
    os.environ["FLASKFS_ENV_MONGOMOCK"] = "1"


def _pymongo3_names() -> None:
    """Two pymongo 3 names their GridFS tests use, gone from pymongo 4: ``GridFS._GridFS__collection``
    (the private name of the bucket's collection) and ``count()`` on a GridFS cursor."""
    import gridfs

    if not hasattr(gridfs.GridFS, "_GridFS__collection"):
        gridfs.GridFS._GridFS__collection = property(lambda self: self._collection)
    cursors = [gridfs.GridOutCursor]
    if os.environ.get("FLASKFS_ENV_MONGOMOCK"):
        import mongomock.gridfs

        cursors.append(mongomock.gridfs._MongoMockGridOutCursor)
    for cursor in cursors:
        if not hasattr(cursor, "count"):
            cursor.count = lambda self: sum(1 for _ in self.clone())  # how many files matched


def _flask_mongoengine_shim() -> None:
    """A minimal ``flask_mongoengine``: ``MongoEngine().init_app(app)``, ``.Document``, ``.connection``."""
    try:
        import flask_mongoengine  # noqa: F401 - a working install wins

        return
    except ImportError:
        pass
    import mongoengine

    class MongoEngine:
        Document = mongoengine.Document

        def init_app(self, app):
            import pymongo

            mongoengine.disconnect()
            settings = {
                "db": app.config.get("MONGODB_DB", "test"),
                "host": os.environ.get("FLASK_FS_MONGO_URL") or app.config.get("MONGODB_HOST", "localhost"),
            }
            if "FLASK_FS_MONGO_URL" not in os.environ:
                settings["port"] = app.config.get("MONGODB_PORT", 27017)
            if os.environ.get("FLASKFS_ENV_MONGOMOCK"):
                settings["mongo_client_class"] = pymongo.MongoClient
            mongoengine.connect(**settings)

        @property
        def connection(self):
            return mongoengine.get_connection()

    module = types.ModuleType("flask_mongoengine")
    module.MongoEngine = MongoEngine
    sys.modules["flask_mongoengine"] = module


def pytest_configure(config: pytest.Config) -> None:
    _draw_images(Path(os.environ.get("FLASKFS_TESTS_DIR") or config.rootpath / "tests"))
    _mongo()
    _pymongo3_names()
    _flask_mongoengine_shim()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the servers the collected modules need, and point their constants at them."""
    modules = {item.module.__name__: item.module for item in items if getattr(item, "module", None)}
    for name, module in modules.items():
        if name.endswith("test_s3_backend"):
            if "moto" not in _servers:
                _servers["moto"] = _load_servers_module().start_moto()
            module.S3_SERVER = _servers["moto"][1]  # type: ignore[index]
        elif name.endswith("test_swift_backend"):
            if "swift" not in _servers:
                _servers["swift"] = _load_servers_module().start_swift()
            module.AUTHURL = _servers["swift"].auth_url  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    if "moto" in _servers:
        _servers.pop("moto")[0].stop()  # type: ignore[index]
    if "swift" in _servers:
        _servers.pop("swift").stop()  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _request_context(request: pytest.FixtureRequest):
    """Tests using ``app`` run inside its test request context, as pytest-flask arranged for them."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    with app.test_request_context():
        yield
