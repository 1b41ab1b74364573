"""Backends come from the ``fs.backend`` entry points of any installed distribution, not only ours."""

from __future__ import annotations

import io
import sys
import textwrap

import pytest
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from flask_fs.backends import available_backends, load_backend
from tests.conftest import make_app

#: A third-party backend: the six required methods, over a dict shared by every instance of a bucket.
THIRD_PARTY = textwrap.dedent(
    '''
    """An in-memory flask_fs backend, shipped by another distribution."""
    import io
    import hashlib
    from datetime import datetime, timezone

    from flask_fs.backends import BaseBackend, file_not_found
    from flask_fs.errors import FileExists

    BUCKETS = {}


    class RamBackend(BaseBackend):
        required = ("bucket",)
        defaults = {"greeting": "hello"}

        @property
        def files(self):
            return BUCKETS.setdefault(self.config["bucket"], {})

        def exists(self, filename):
            return filename in self.files

        def open_read(self, filename):
            if filename not in self.files:
                raise file_not_found(filename)
            return io.BytesIO(self.files[filename])

        def save(self, file_or_wfs, filename, overwrite=False, **kwargs):
            data = file_or_wfs.read()
            if not overwrite and filename in self.files:
                raise FileExists(filename)
            self.files[filename] = data

        def delete(self, filename):
            self.files.pop(filename, None)

        def list_files(self):
            return iter(sorted(self.files))

        def metadata(self, filename):
            data = self.open_read(filename).read()
            return {"checksum": "md5:" + hashlib.md5(data).hexdigest(), "size": len(data),
                    "mime": self.guess_type(filename), "modified": datetime.now(timezone.utc)}
    '''
)


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """Install distribution 'flask-fs-ram' the way pip lays it out: a package and its .dist-info."""
    site = tmp_path / "site-packages"
    (site / "fs_ram").mkdir(parents=True)
    (site / "fs_ram" / "__init__.py").write_text(THIRD_PARTY)
    info = site / "flask_fs_ram-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flask-fs-ram\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fs.backend]\nram = fs_ram:RamBackend\n")
    (info / "top_level.txt").write_text("fs_ram\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("fs_ram", None)


def test_our_backends_are_registered():
    assert {"local", "s3", "swift", "gridfs", "memory"} <= set(available_backends())
    assert load_backend("local").__name__ == "LocalBackend"


def test_a_backend_from_another_distribution_is_found_and_used(tmp_path, third_party):
    backends = available_backends()
    assert "ram" in backends
    assert backends["ram"].dist.name == "flask-fs-ram"
    app = make_app(tmp_path, FS_BACKEND="ram", FS_RAM_BUCKET="shared", AVATARS_FS_BUCKET="faces")
    files, avatars = fs.Storage("files", fs.ALL), fs.Storage("avatars", fs.IMAGES)
    fs.init_app(app, files, avatars)
    with app.test_request_context():
        assert type(files.backend).__name__ == "RamBackend"
        assert files.config == {
            "bucket": "shared",
            "greeting": "hello",
            "backend": "ram",
            "signed_url_expires": 3600,
            "batch_concurrency": 16,
        }
        assert avatars.config.bucket == "faces"
        files.write("a.txt", "in memory")
        assert files.save(FileStorage(io.BytesIO(b"png"), filename="me.png"), prefix="up") == "up/me.png"
        assert sorted(files.list_files()) == ["a.txt", "up/me.png"]
        assert list(avatars.list_files()) == []
        with files.open("b.txt", "w") as f:  # defaults built on the six required methods
            f.write("text")
        assert files.read("b.txt") == b"text"
        files.copy("a.txt", "c.txt")
        assert b"".join(files.read_chunks("c.txt", chunk_size=2, start=3)) == b"memory"
        with pytest.raises(fs.OperationNotSupported):
            files.path("a.txt")
    response = app.test_client().get("/files/a.txt", headers={"Range": "bytes=0-1"})
    assert response.status_code == 206 and response.data == b"in"
    assert not (tmp_path / "instance" / "fs").exists()  # nothing went to the local disk


def test_unknown_backend_lists_installed_ones_including_third_party(tmp_path, third_party):
    app = make_app(tmp_path, FS_BACKEND="rma")
    with pytest.raises(fs.ConfigurationError) as error:
        fs.init_app(app, fs.Storage("files"))
    assert "FS_BACKEND = 'rma'" in str(error.value)
    assert "ram" in str(error.value) and "local" in str(error.value)


def test_missing_required_setting_fails_at_init_app_naming_the_keys(tmp_path, third_party):
    app = make_app(tmp_path, FILES_FS_BACKEND="ram")
    with pytest.raises(fs.ConfigurationError) as error:
        fs.init_app(app, fs.Storage("files"))
    assert "FILES_FS_BUCKET" in str(error.value) and "FS_RAM_BUCKET" in str(error.value)


def test_an_entry_point_that_is_no_backend_is_refused(tmp_path, third_party, monkeypatch):
    info = next((tmp_path / "site-packages").glob("*.dist-info"))
    (info / "entry_points.txt").write_text("[fs.backend]\nram = fs_ram:BUCKETS\nbroken = fs_nowhere:X\n")
    with pytest.raises(fs.ConfigurationError, match="does not name a BaseBackend"):
        load_backend("ram")
    with pytest.raises(fs.ConfigurationError, match="cannot be imported") as error:
        fs.init_app(make_app(tmp_path, FS_BACKEND="broken"), fs.Storage("files"))
    assert isinstance(error.value.__cause__.__cause__, ImportError)


def test_keys_of_a_backend_that_declares_no_settings_are_not_reported_unknown(tmp_path, third_party):
    """An older backend (``defaults``/``required`` only) may read keys it does not name: with one installed,
    flask_fs cannot tell an unknown key from one of its (a storage may move to it), so it reports none."""
    app = make_app(tmp_path, FILES_FS_BACKEND="ram", FILES_FS_BUCKET="b", FILES_FS_COLOR="red", FS_SHADE="dark")
    files, other = fs.Storage("files"), fs.Storage("other")
    fs.init_app(app, files, other)
    with app.app_context():
        assert (files.config.color, files.config.greeting, other.config.shade) == ("red", "hello", "dark")
    app.config["OTHER_FS_MAX_SIZE"] = "1MB"  # values of declared settings are still checked
    with pytest.raises(fs.ConfigurationError, match="OTHER_FS_MAX_SIZE = '1MB'"):
        fs.init_app(app, other)


def test_a_backend_that_cannot_be_imported_does_not_hide_typos(tmp_path, third_party):
    """A backend whose extra is missing cannot be used, so its keys do not count (nor stop the check)."""
    info = next((tmp_path / "site-packages").glob("*.dist-info"))
    (info / "entry_points.txt").write_text("[fs.backend]\nbroken = fs_nowhere:X\n")
    app = make_app(tmp_path, FILES_FS_MAX_SIZ=10)
    with pytest.raises(fs.ConfigurationError, match="unknown setting FILES_FS_MAX_SIZ; did you mean FILES_FS_MAX_SIZE"):
        fs.init_app(app, fs.Storage("files"))
