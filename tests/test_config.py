"""Settings: global defaults, the per-storage layering rule, URLs, and errors raised at init_app."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest
from flask import Flask

import flask_fs as fs
from flask_fs.backends import BaseBackend
from flask_fs.backends.gridfs import GridFsBackend
from flask_fs.backends.local import LocalBackend
from flask_fs.backends.s3 import S3Backend
from flask_fs.backends.swift import SwiftBackend
from flask_fs.config import Setting, Size, format_size, join_url, storage_settings
from flask_fs.storage import Config
from tests.conftest import make_app
from tests.servers import free_port

BACKENDS = ["local", "s3", "swift", "gridfs"]

#: The reference's "Sample configuration" (its second FILES_FS_URL line is a typo for IMAGES_FS_URL).
SAMPLE = {
    "FS_S3_ENDPOINT": "https://s3-eu-west-2.amazonaws.com",
    "FS_S3_REGION": "eu-west-2",
    "FS_S3_ACCESS_KEY": "ABCDEFGHIJKLMNOQRSTU",
    "FS_S3_SECRET_KEY": "abcdefghiklmnoqrstuvwxyz1234567890abcdef",
    "FS_S3_URL": "https://s3.somewhere.com/",
    "AVATARS_FS_BACKEND": "s3",
    "IMAGES_FS_BACKEND": "s3",
    "IMAGES_FS_URL": "https://images.somewhere.com/",
    "FILES_FS_URL": "https://files.somewhere.com/",
}


def settings(app_config: dict, name: str) -> Config:
    backend = app_config.get(f"{name.upper()}_FS_BACKEND") or app_config.get("FS_BACKEND", "local")
    return storage_settings(app_config, name, backend, BACKENDS)


def test_sample_configuration_resolves_as_documented():
    files, avatars, images = (settings(SAMPLE, name) for name in ("files", "avatars", "images"))
    assert (files.backend, files.url) == ("local", "https://files.somewhere.com/")
    assert (avatars.backend, avatars.url) == ("s3", "https://s3.somewhere.com/avatars/")
    assert (images.backend, images.url) == ("s3", "https://images.somewhere.com/")
    for s3 in (avatars, images):
        assert s3.endpoint == "https://s3-eu-west-2.amazonaws.com"
        assert s3.region == "eu-west-2"
        assert s3.access_key == "ABCDEFGHIJKLMNOQRSTU"
        assert s3.secret_key == SAMPLE["FS_S3_SECRET_KEY"]
    assert "endpoint" not in files and "secret_key" not in files  # S3 settings stay with S3 storages


def test_sample_configuration_end_to_end_on_the_local_storage(tmp_path):
    app = make_app(tmp_path, **SAMPLE)
    files = fs.Storage("files")
    fs.init_app(app, files)
    with app.app_context():
        files.write("report.txt", "hello")
        assert files.url("report.txt") == "https://files.somewhere.com/report.txt"
        assert files.base_url == "https://files.somewhere.com/"
        assert files.has_url
        assert files.path("report.txt") == str(tmp_path / "instance" / "fs" / "files" / "report.txt")


def test_layers_most_specific_first(tmp_path):
    layers = {"FS_COLOR": "global", "FS_LOCAL_COLOR": "backend", "FILES_FS_COLOR": "storage"}
    for dropped in ["", "FILES_FS_COLOR", "FS_LOCAL_COLOR", "FS_COLOR"]:
        layers.pop(dropped, None)
        expected = {"": "storage", "FILES_FS_COLOR": "backend", "FS_LOCAL_COLOR": "global", "FS_COLOR": "default"}
        config = storage_settings(layers, "files", "local", BACKENDS, defaults={"color": "default"})
        assert config.color == expected[dropped], dropped
        assert config["color"] == expected[dropped]


def test_other_backends_and_other_storages_settings_do_not_leak():
    config = settings(
        {"FS_S3_BUCKET": "b", "FS_SWIFT_USER": "u", "AVATARS_FS_COLOR": "red", "FS_COLOR": "blue"}, "files"
    )
    assert config == {"color": "blue", "backend": "local"}


def test_unset_values_fall_through_to_the_next_layer():
    config = storage_settings({"FILES_FS_COLOR": None, "FS_COLOR": "blue"}, "files", "local", BACKENDS)
    assert config.color == "blue"


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({"FS_URL": "https://cdn.example.com/static"}, "https://cdn.example.com/static/files/a.txt"),
        ({"FS_URL": "https://cdn.example.com/static/"}, "https://cdn.example.com/static/files/a.txt"),
        ({"FS_LOCAL_URL": "https://cdn.example.com/local"}, "https://cdn.example.com/local/files/a.txt"),
        ({"FILES_FS_URL": "https://cdn.example.com/media"}, "https://cdn.example.com/media/a.txt"),
        ({"FILES_FS_URL": "https://cdn.example.com/media/"}, "https://cdn.example.com/media/a.txt"),
        ({"FILES_FS_URL": "https://files.example.com"}, "https://files.example.com/a.txt"),
        ({"FILES_FS_URL": "/media", "FS_URL": "https://x/"}, "/media/a.txt"),
    ],
)
def test_urls_keep_every_segment_of_their_base(tmp_path, config, url):
    """The original joined with urljoin, which drops 'static' from 'https://cdn/static' + 'files'."""
    app = make_app(tmp_path, **config)
    files = fs.Storage("files")
    fs.init_app(app, files)
    with app.app_context():
        assert files.url("a.txt") == url
        assert files.base_url == url[: -len("a.txt")]


def test_join_url():
    assert join_url("https://h/a/b", "c") == "https://h/a/b/c/"
    assert join_url("https://h/a/b/", "/c/") == "https://h/a/b/c/"
    assert join_url("https://h") == "https://h/"


def test_global_defaults(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    files = fs.Storage("files")
    fs.init_app(app, files)
    assert app.config["FS_SERVE"] is None  # outside debug: serve the storages without a URL of their own
    assert app.config["FS_ROOT"] == str(tmp_path / "instance" / "fs")
    assert app.config["FS_PREFIX"] is None and app.config["FS_URL"] is None
    assert app.config["FS_BACKEND"] == "local"
    assert app.config["FS_IMAGES_OPTIMIZE"] is False
    with app.app_context():
        assert files.config.root == str(tmp_path / "instance" / "fs" / "files")
        assert files.config.backend == "local"
        assert not files.has_url


def test_serve_defaults_to_debug(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.debug = True
    fs.init_app(app)
    assert app.config["FS_SERVE"] is True


@pytest.mark.parametrize(
    ("config", "root"),
    [
        ({"FS_ROOT": "{tmp}/global"}, "{tmp}/global/files"),
        ({"FS_LOCAL_ROOT": "{tmp}/local", "FS_ROOT": "{tmp}/global"}, "{tmp}/local/files"),
        ({"FILES_FS_ROOT": "{tmp}/mine", "FS_ROOT": "{tmp}/global"}, "{tmp}/mine"),
    ],
)
def test_local_roots(tmp_path, config, root):
    app = make_app(tmp_path, **{key: value.format(tmp=tmp_path) for key, value in config.items()})
    files = fs.Storage("files")
    fs.init_app(app, files)
    with app.app_context():
        files.write("x.txt", "x")
    assert os.path.isfile(os.path.join(root.format(tmp=tmp_path), "x.txt"))


def test_fs_root_is_for_local_storages_only():
    config = storage_settings({"FS_ROOT": "/var/fs", "FS_BACKEND": "s3"}, "avatars", "s3", BACKENDS)
    assert "root" not in config


def test_global_only_keys_are_not_layered_into_storages():
    config = settings({"FS_SERVE": True, "FS_PREFIX": "/fs", "FS_BACKEND": "local", "FS_IMAGES_OPTIMIZE": True}, "x")
    assert config == {"backend": "local"}


def test_config_reads_as_dict_and_attributes_and_masks_secrets():
    config = Config(secret_key="s3cr3t", access_key="AK", password="", url="https://x/")
    assert config.url == config["url"] == "https://x/"
    with pytest.raises(AttributeError):
        _ = config.missing
    config.region = "eu"
    assert config["region"] == "eu"
    assert config.masked() == {
        "secret_key": "****",
        "access_key": "****",
        "password": "",
        "url": "https://x/",
        "region": "eu",
    }


@pytest.mark.parametrize("key", ["FS_BACKEND", "FILES_FS_BACKEND"])
def test_unknown_backend_fails_at_init_app_naming_the_key_and_the_installed_backends(tmp_path, key):
    app = make_app(tmp_path, **{key: "nosuch"})
    with pytest.raises(fs.ConfigurationError) as error:
        fs.init_app(app, fs.Storage("files"))
    message = str(error.value)
    assert key in message and "'nosuch'" in message
    assert "installed backends:" in message and "local" in message


def test_one_storage_serves_two_apps_each_in_its_own_root(tmp_path):
    """The app-factory pattern: one Storage declared at import time, configured on two apps."""
    files = fs.Storage("files", fs.ALL)
    first = make_app(tmp_path / "one", FS_ROOT=str(tmp_path / "root-one"), FILES_FS_URL="https://one/")
    second = make_app(tmp_path / "two", FS_ROOT=str(tmp_path / "root-two"))
    fs.init_app(first, files)
    fs.init_app(second, files)
    with first.app_context():
        files.write("a.txt", "first")
    with second.app_context():
        files.write("a.txt", "second")
        assert files.read("a.txt") == b"second"
        assert files.url("a.txt") == "/files/a.txt"
    with first.app_context():
        assert files.read("a.txt") == b"first"
        assert files.url("a.txt") == "https://one/a.txt"
        assert fs.by_name("files") is files
    assert (tmp_path / "root-one" / "files" / "a.txt").read_text() == "first"
    assert (tmp_path / "root-two" / "files" / "a.txt").read_text() == "second"


def test_using_a_storage_on_an_app_without_it_says_so(tmp_path):
    app = make_app(tmp_path)
    fs.init_app(app)
    files = fs.Storage("files")
    with app.app_context(), pytest.raises(fs.FSError, match="not registered on app"):
        files.read("x")
    with app.app_context(), pytest.raises(fs.FSError, match="no storage named 'files'"):
        fs.by_name("files")
    other = Flask("other")
    with other.app_context(), pytest.raises(fs.FSError, match="not registered"):
        files.exists("x")


@pytest.mark.parametrize("name", ["", "a b", "../x", "a/b", "é"])
def test_storage_names_are_alphanumeric(name):
    with pytest.raises(fs.ConfigurationError):
        fs.Storage(name)


# -- declared settings: unknown keys, types, defaults ------------------------------------------------


@pytest.mark.parametrize(
    ("config", "unknown", "suggestion"),
    [
        ({"FILES_FS_MAX_SIZ": 100}, "FILES_FS_MAX_SIZ", "FILES_FS_MAX_SIZE"),
        ({"FS_MAX_SIZ": 100}, "FS_MAX_SIZ", "FS_MAX_SIZE"),
        ({"FS_SERV": True}, "FS_SERV", "FS_SERVE"),
        ({"FILES_FS_BACKEND": "s3", "FS_S3_BUCKT": "b"}, "FS_S3_BUCKT", "FS_S3_BUCKET"),
        ({"FILES_FS_BACKEND": "s3", "FILES_FS_ENDPIONT": "http://s3"}, "FILES_FS_ENDPIONT", "FILES_FS_ENDPOINT"),
        ({"FILES_FS_PAINT": "red"}, "FILES_FS_PAINT", None),
    ],
)
def test_an_unknown_key_fails_at_init_app_with_a_suggestion(tmp_path, config, unknown, suggestion):
    app = make_app(tmp_path, **config)
    with pytest.raises(fs.ConfigurationError) as error:
        fs.init_app(app, fs.Storage("files"))
    message = str(error.value)
    assert f"unknown setting {unknown}" in message
    if suggestion:
        assert message.endswith(f"did you mean {suggestion}?")
    else:
        assert "did you mean" not in message


def test_keys_read_elsewhere_or_by_another_backend_are_not_unknown(tmp_path):
    """Global keys, static publishing and image keys, another backend's keys (for a storage that may
    move there, or for every storage on it) are all fine for a local storage."""
    app = make_app(
        tmp_path,
        FS_PREFIX="/fs",
        FS_ROOT=str(tmp_path / "root"),
        FS_URL="https://cdn.example.com",
        FS_IMAGES_OPTIMIZE=True,
        FS_IMAGES_SOMETHING_NEW=1,
        FS_STATIC_WORKERS=2,
        FS_BUCKET="shared",
        FS_S3_WHATEVER="not checked here",
        FILES_FS_BUCKET="files-bucket",
        FILES_FS_CONTAINER="files-container",
        FILES_FS_MONGO_URL="mongodb://db/x",
        OTHER_FS_ANYTHING="another storage's business",
    )
    files = fs.Storage("files")
    fs.init_app(app, files)
    with app.app_context():
        assert files.config.bucket == "files-bucket"  # kept for the day it moves to s3 or gridfs
        assert files.url("a.txt") == "https://cdn.example.com/files/a.txt"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"FILES_FS_MAX_SIZE": "1MB"}, "storage 'files': FILES_FS_MAX_SIZE = '1MB': MB is ambiguous"),
        ({"FILES_FS_MAX_SIZE": "lots"}, "FILES_FS_MAX_SIZE = 'lots': not a size"),
        ({"FS_MAX_SIZE": -5}, "FS_MAX_SIZE = -5: a size cannot be negative"),
        ({"FILES_FS_ALLOW": 123}, "FILES_FS_ALLOW = 123: not a list of extensions"),
        ({"FS_LOCAL_FSYNC": "maybe"}, "FS_LOCAL_FSYNC = 'maybe': not a boolean"),
        ({"FILES_FS_SIGNED_URL_EXPIRES": "1h"}, "FILES_FS_SIGNED_URL_EXPIRES = '1h': not an integer"),
        ({"FILES_FS_URL": "cdn example"}, "FILES_FS_URL = 'cdn example': not a URL"),
        ({"FILES_FS_BACKEND": "s3", "FS_S3_ENDPOINT": "localhost:9000"}, "write 'http://localhost:9000'"),
        ({"FILES_FS_BACKEND": "s3", "FS_S3_MAX_ATTEMPTS": "three"}, "FS_S3_MAX_ATTEMPTS = 'three': not an integer"),
        ({"FILES_FS_BACKEND": "s3", "FILES_FS_OBJECT_PARAMS": "[1]"}, "FILES_FS_OBJECT_PARAMS = '[1]': not a mapping"),
        ({"FILES_FS_BACKEND": "s3", "FS_S3_ADDRESSING_STYLE": "host"}, "FS_S3_ADDRESSING_STYLE = 'host': must be one"),
        ({"FILES_FS_BACKEND": "s3", "FILES_FS_SECRET_KEY": "x"}, "FS_S3_ACCESS_KEY or FILES_FS_ACCESS_KEY|FILES_FS_"),
        ({"FS_SERVE": "sometimes"}, "FS_SERVE = 'sometimes': not a boolean"),
    ],
)
def test_a_bad_value_names_the_setting_as_written(tmp_path, config, message):
    app = make_app(tmp_path)
    app.config.update(config)
    with pytest.raises(fs.ConfigurationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        fs.init_app(app, fs.Storage("files"))


def test_s3_credentials_that_go_together_are_named_as_written(tmp_path):
    app = make_app(tmp_path, IMAGES_FS_BACKEND="s3", IMAGES_FS_ACCESS_KEY="AK")
    with pytest.raises(fs.ConfigurationError) as error:
        fs.init_app(app, fs.Storage("images"))
    assert str(error.value).startswith("IMAGES_FS_ACCESS_KEY and IMAGES_FS_SECRET_KEY go together")


def test_a_bad_secret_is_named_but_not_shown(tmp_path):
    app = make_app(tmp_path, FILES_FS_BACKEND="swift", FS_SWIFT_AUTHURL="http://k", FS_SWIFT_USER="u")
    app.config["FS_SWIFT_KEY"] = ["hunter2"]
    with pytest.raises(fs.ConfigurationError) as error:
        fs.init_app(app, fs.Storage("files"))
    assert "FS_SWIFT_KEY = '****': not a string" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_values_from_environment_variables_are_converted(tmp_path, monkeypatch):
    """``from_prefixed_env`` keeps what is not JSON as strings: '16MiB', 'pdf, EPUB', '{...}' as JSON..."""
    for key, value in {
        "FILES_FS_MAX_SIZE": "16MiB",
        "FILES_FS_ALLOW": "pdf, EPUB",
        "FS_LOCAL_FSYNC": "yes",
        "FS_SERVE": "off",
        "MEDIA_FS_BACKEND": "s3",
        "MEDIA_FS_MULTIPART_THRESHOLD": "64 MiB",
        "MEDIA_FS_CONNECT_TIMEOUT": "2.5",
        "MEDIA_FS_OBJECT_PARAMS": '{"CacheControl": "max-age=60"}',
        "MEDIA_FS_AUTH": "x",  # a typo, checked below
    }.items():
        monkeypatch.setenv(f"FLASK_{key}", value)
    monkeypatch.setenv("FLASK_FS_S3_MAX_ATTEMPTS", '"5"')  # a JSON string: still "5", not 5
    app = make_app(tmp_path)
    del app.config["FS_SERVE"]
    app.config.from_prefixed_env()
    files, media = fs.Storage("files"), fs.Storage("media")
    with pytest.raises(fs.ConfigurationError, match="unknown setting MEDIA_FS_AUTH"):
        fs.init_app(app, files, media)
    del app.config["MEDIA_FS_AUTH"]
    fs.init_app(app, files, media)
    assert app.config["FS_SERVE"] is False
    with app.app_context():
        assert files.config.max_size == 16 * 1024 * 1024
        assert files.config.fsync is True
        assert files.extension_allowed("epub") and files.extension_allowed("pdf")
        assert media.config.multipart_threshold == 64 * 1024 * 1024 == media.backend.threshold
        assert media.config.connect_timeout == 2.5
        assert media.config.max_attempts == 5
        assert media.backend.object_params == {"CacheControl": "max-age=60"}
        assert media.config.bucket == "media"  # default: the storage name


@pytest.mark.parametrize(
    ("value", "size"),
    [(1024, 1024), ("1024", 1024), ("16MiB", 16 * 2**20), ("1.5 GiB", 3 * 2**29), ("512kib", 512 * 1024),
     ("2 TiB", 2 * 2**40), ("100 B", 100), (0, 0)],
)  # fmt: skip
def test_sizes_accept_bytes_and_binary_units(value, size):
    assert Setting("max_size", Size).coerce(value, "X") == size


@pytest.mark.parametrize("value", ["1MB", "1 kb", "1.5", "-1", "lots", True, 1.5, "", "16 MiBs"])
def test_sizes_refuse_everything_else(value):
    with pytest.raises(fs.ConfigurationError, match=f"^X = {re.escape(repr(value))}: "):
        Setting("max_size", Size).coerce(value, "X")


def test_sizes_are_shown_in_binary_units():
    assert [format_size(n) for n in (8 * 2**20, 2**30, 5 * 1024, 500_000, 12)] == [
        "8 MiB", "1 GiB", "5 KiB", "500000 bytes (0.48 MiB)", "12 bytes",
    ]  # fmt: skip


# -- backends built directly, as Flask-FS's docs for backend authors do ---------------------------------


def test_local_backend_built_directly_with_part_of_its_settings(tmp_path):
    backend = LocalBackend("files", Config(root=str(tmp_path / "files")))
    assert isinstance(backend.config, Config)
    assert backend.config.fsync is False and backend.config.root == str(tmp_path / "files")
    backend.write("a.txt", "hello")
    assert (tmp_path / "files" / "a.txt").read_text() == "hello"
    with pytest.raises(fs.ConfigurationError, match=r"local backend 'files': give it a root"):
        LocalBackend("files", {})  # outside an app: no root to default to
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config["FS_ROOT"] = str(tmp_path / "fs")
    with app.app_context():  # inside one, Flask-FS's default: <FS_ROOT>/<name>
        assert LocalBackend("files", {}).root == str(tmp_path / "fs" / "files")


def test_s3_backend_built_directly_fills_defaults_without_contacting_the_server():
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: construction must not connect
    backend = S3Backend("avatars", {"endpoint": endpoint, "max_attempts": "1", "multipart_threshold": "16MiB"})
    config = backend.config
    assert isinstance(config, Config)
    assert (config.bucket, backend.bucket, config.prefix, config.addressing_style) == ("avatars",) * 2 + ("", "auto")
    assert (config.max_attempts, backend.threshold, config.multipart_chunksize) == (1, 16 * 2**20, 5 * 2**20)
    assert config.conditional_writes is True and config.object_params == {}
    with pytest.raises(fs.ConfigurationError, match="^storage 'x': max_attempts = 'lots': not an integer"):
        S3Backend("x", {"max_attempts": "lots"})


def test_swift_backend_built_directly_fills_defaults_without_contacting_the_server():
    backend = SwiftBackend(
        "media", Config(authurl=f"http://127.0.0.1:{free_port()}/auth/v1.0", user="test:tester", key="k", retries="0")
    )
    assert (backend.container, backend.segments, backend.segment_size) == ("media", "media_segments", 2**30)
    assert (backend.config.retries, backend.config.auth_version, backend.config.timeout) == (0, "1", 30)
    with pytest.raises(fs.ConfigurationError, match=r"needs authurl, key"):
        SwiftBackend("media", {"user": "u"})


def test_gridfs_backend_built_directly_fills_defaults_without_contacting_the_server():
    backend = GridFsBackend("files", Config(mongo_url=f"mongodb://127.0.0.1:{free_port()}/site"))
    assert (backend.database_name, backend.bucket_name) == ("site", "files")
    assert backend.config.server_selection_timeout_ms == 5000
    with pytest.raises(fs.ConfigurationError, match="set mongo_db or name a database in mongo_url"):
        GridFsBackend("files", {"mongo_url": "mongodb://127.0.0.1"})


def test_defaults_and_required_are_derived_from_the_declaration():
    assert S3Backend.defaults["multipart_threshold"] == 8 * 2**20 and "bucket" not in S3Backend.defaults
    assert SwiftBackend.required == ("authurl", "user", "key") and LocalBackend.required == ()
    assert GridFsBackend.defaults == {"server_selection_timeout_ms": 5000}


def test_an_older_backend_declaring_defaults_and_required_still_works():
    class OldBackend(BaseBackend):
        required = ("bucket",)
        defaults = {"greeting": "hello"}

    assert {s.name: (s.default, s.required) for s in OldBackend.settings} == {
        "bucket": (None, True),
        "greeting": ("hello", False),
    }
    assert not OldBackend.declares_settings
    assert OldBackend("x", {"bucket": "b"}).config == {"bucket": "b", "greeting": "hello"}
    with pytest.raises(fs.ConfigurationError, match="needs bucket"):
        OldBackend("x", {})


def test_storage_config_masks_secrets_and_passwords_in_urls():
    config = Config(key="k", mongo_url="mongodb://user:pw@db.example.com/site", region="eu")
    assert config.masked() == {"key": "****", "mongo_url": "mongodb://user:****@db.example.com/site", "region": "eu"}
    assert Config(tempurl="t").masked(secrets={"tempurl"}) == {"tempurl": "****"}


def test_the_documented_table_lists_every_declared_setting():
    """docs/configuration.rst renders this table at build time (``.. fs-settings::``), so it lists what the
    code declares: every key, its type, default and secrecy."""
    pytest.importorskip("sphinx")
    spec = importlib.util.spec_from_file_location(
        "settings_table", os.path.join(os.path.dirname(__file__), "..", "docs", "_ext", "settings_table.py")
    )
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    text = "\n".join(table.rows(["global", "storage", "local", "s3", "swift", "gridfs"]))
    for backend in (LocalBackend, S3Backend, SwiftBackend, GridFsBackend):
        for setting in backend.settings:
            assert f"``<NAME>_FS_{setting.name.upper()}``" in text
    for key in ("FS_SERVE", "FS_PREFIX", "FS_ROOT", "FS_BACKEND", "FS_IMAGES_OPTIMIZE", "<NAME>_FS_MAX_SIZE"):
        assert f"``{key}``" in text
    row = text.split("``<NAME>_FS_MULTIPART_THRESHOLD``")[1].splitlines()
    assert row[1:3] == ["     - size", "     - 8 MiB"]
    assert "Secret: ``flask fs storages`` masks it." in text.split("``<NAME>_FS_SECRET_KEY``")[1].splitlines()[3]
