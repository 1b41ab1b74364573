"""Settings: global defaults, the per-storage layering rule, URLs, and errors raised at init_app."""

from __future__ import annotations

import os

import pytest
from flask import Flask

import flask_fs as fs
from flask_fs.config import join_url, storage_settings
from flask_fs.storage import Config
from tests.conftest import make_app

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
