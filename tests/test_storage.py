"""The Storage API on the local backend: Flask-FS's public names, upload policy, names, sizes, renames."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import os

import pytest
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from flask_fs import errors, names
from tests.conftest import make_app, stream

#: Every method and property of Flask-FS's Storage, plus the additions issue 2 asks for.
STORAGE_API = [
    "save", "write", "read", "open", "exists", "__contains__", "delete", "list_files", "metadata", "url",
    "base_url", "has_url", "path", "serve", "file_allowed", "extension_allowed", "resolve_conflict",
    "configure", "copy", "move", "read_chunks",
]  # fmt: skip
ERRORS = [
    "FSError",
    "FileExists",
    "FileNotFound",
    "UnauthorizedFileType",
    "UploadNotAllowed",
    "OperationNotSupported",
    "InvalidFileName",
    "FileTooLarge",
    "ConfigurationError",
    "BackendError",
]


def tree(path) -> dict[str, bytes]:
    """Every file below ``path`` with its content (symlinks as their target)."""
    found = {}
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(folder, name)
            if os.path.islink(full):
                found[full] = ("link:" + os.readlink(full)).encode()
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    found[full] = f.read()
            else:
                found[full] = b"<dir>"
    return found


def make_storage(tmp_path, *args, config=None, **kwargs):
    app = make_app(tmp_path, **(config or {}))
    storage = fs.Storage("files", *args, **kwargs)
    fs.init_app(app, storage)
    return app, storage


# -- the drop-in API -------------------------------------------------------------------------------


def test_top_level_names():
    for name in [
        "init_app",
        "by_name",
        "Storage",
        "TEXT",
        "DOCUMENTS",
        "IMAGES",
        "AUDIO",
        "DATA",
        "SCRIPTS",
        "ARCHIVES",
        "EXECUTABLES",
        "DEFAULTS",
        "ALL",
        "NONE",
        "All",
        "AllExcept",
        *ERRORS,
    ]:
        assert hasattr(fs, name), name


def test_storage_signature_and_members():
    params = inspect.signature(fs.Storage).parameters
    assert list(params)[:4] == ["name", "extensions", "upload_to", "overwrite"]
    assert params["name"].default == "files"
    assert params["extensions"].default == fs.DEFAULTS
    assert params["upload_to"].default is None and params["overwrite"].default is False
    save = inspect.signature(fs.Storage.save).parameters
    assert list(save)[:5] == ["self", "file_or_wfs", "filename", "prefix", "overwrite"]
    for member in STORAGE_API:
        assert hasattr(fs.Storage, member), member


def test_errors_are_importable_from_both_places_and_typed():
    for name in ERRORS:
        assert getattr(fs, name) is getattr(errors, name)
        assert issubclass(getattr(fs, name), fs.FSError)
    assert issubclass(fs.FileTooLarge, fs.UploadNotAllowed)
    assert issubclass(fs.FileNotFound, FileNotFoundError) and issubclass(fs.FileExists, FileExistsError)


def test_documented_module_paths(tmp_path):
    from flask_fs.backends import BaseBackend
    from flask_fs.backends.local import LocalBackend
    from flask_fs.storage import Config

    backend = LocalBackend("files", Config(root=str(tmp_path)))  # usable without an app
    assert isinstance(backend, BaseBackend)
    backend.write("a.txt", "hello")
    assert backend.read("a.txt") == b"hello" and (tmp_path / "a.txt").read_bytes() == b"hello"
    assert importlib.import_module("flask_fs.errors").FSError is fs.FSError


def test_quick_start_round_trip(storage):
    """The reference's "Quick start" calls, in order."""
    storage.write("my.file", "content")
    assert storage.read("my.file") == b"content"
    with storage.open("my.file", "rb") as f:
        assert f.read() == b"content"
    with storage.open("my.file") as f:
        assert f.read() == "content"
    assert storage.exists("my.file") and "my.file" in storage
    storage.delete("my.file")
    assert not storage.exists("my.file") and "my.file" not in storage


def test_by_name(storage):
    assert fs.by_name("files") is storage
    with pytest.raises(fs.FSError):
        fs.by_name("nope")


# -- what save accepts -----------------------------------------------------------------------------


def image_bytes(filename: str) -> bytes:
    """A real 2x2 image in the format the name's extension says, or ``b"x"`` for other names."""
    from PIL import Image

    formats = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "gif": "GIF"}
    fmt = formats.get(filename.rpartition(".")[2].lower())
    if fmt is None:
        return b"x"
    out = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("extensions", "filename", "allowed"),
    [
        (fs.IMAGES, "a.png", True),
        (fs.IMAGES, "a.PNG", True),
        (fs.IMAGES, "A.JpEg", True),
        (fs.IMAGES, "a.php.png", True),
        (fs.IMAGES, "a.png.php", False),
        (fs.IMAGES, "png", False),
        (fs.IMAGES, ".png", False),
        (fs.IMAGES, "a.png.", False),
        (["PNG", ".gif"], "a.png", True),  # the storage's own list is case-insensitive too
        (["PNG", ".gif"], "a.GIF", True),
        (fs.ALL, "anything.exe", True),
        (fs.ALL, "noext", True),
        (fs.NONE, "a.txt", False),
        (fs.AllExcept(fs.SCRIPTS), "a.PHP", False),
        (fs.AllExcept(fs.SCRIPTS), "a.txt", True),
    ],
)
def test_upload_extension_policy(tmp_path, extensions, filename, allowed):
    app, files = make_storage(tmp_path, extensions)
    content = image_bytes(filename)  # image-only storages check that the content is what the name says
    with app.app_context():
        if allowed:
            assert files.save(stream(content), filename) == filename
            assert files.read(filename) == content
        else:
            with pytest.raises(fs.UnauthorizedFileType):
                files.save(stream(b"x"), filename)
            if names.secure_upload_name(filename) == filename:  # an upload's 'a.png.' is saved as 'a.png'
                with pytest.raises(fs.UnauthorizedFileType):
                    files.save(FileStorage(stream(b"x"), filename=filename))
            assert list(files.list_files()) == []


def test_allow_and_deny_settings(tmp_path):
    app, files = make_storage(tmp_path, fs.IMAGES, config={"FILES_FS_ALLOW": ["PDF"], "FILES_FS_DENY": ["svg"]})
    with app.app_context():
        assert files.extension_allowed("pdf") and files.extension_allowed("PDF")
        assert files.extension_allowed("png")
        assert not files.extension_allowed("svg") and not files.extension_allowed("SVG")
        with pytest.raises(fs.UnauthorizedFileType):
            files.save(stream(b"<svg/>"), "logo.svg")
        assert files.save(stream(b"%PDF"), "doc.pdf") == "doc.pdf"


def test_allow_and_deny_as_strings_from_the_environment(tmp_path):
    app, files = make_storage(tmp_path, fs.TEXT, config={"FILES_FS_ALLOW": "pdf, EPUB", "FILES_FS_DENY": "txt"})
    with app.app_context():
        assert files.extension_allowed("pdf") and files.extension_allowed("epub")
        assert not files.extension_allowed("txt") and not files.extension_allowed("p")


def test_deny_wins_over_all(tmp_path):
    app, files = make_storage(tmp_path, fs.ALL, config={"FILES_FS_DENY": fs.SCRIPTS})
    with app.app_context():
        assert not files.extension_allowed("php") and files.extension_allowed("exe")


def test_file_allowed_can_be_overridden(tmp_path):
    class SmallOnly(fs.Storage):
        def file_allowed(self, storage, basename):
            return storage.content_length < 10 and super().file_allowed(storage, basename)

    app = make_app(tmp_path)
    files = SmallOnly("files", fs.TEXT)
    fs.init_app(app, files)
    with app.app_context():
        assert files.save(FileStorage(stream(b"tiny"), "a.txt", content_length=4)) == "a.txt"
        with pytest.raises(fs.UnauthorizedFileType):
            files.save(FileStorage(stream(b"x" * 20), "b.txt", content_length=20))


def test_upload_names_are_sanitised_and_kept_inside(tmp_path):
    app, files = make_storage(tmp_path, fs.ALL)
    with app.app_context():
        assert files.save(FileStorage(stream(b"1"), filename="../../etc/passwd")) == "passwd"
        assert files.save(FileStorage(stream(b"2"), filename="C:\\fakepath\\été 2024.JPG")) == "été_2024.JPG"
        assert files.save(FileStorage(stream(b"3"), filename="")) == "file"
        assert files.save(FileStorage(stream(b"4"), filename="x.txt"), filename="chosen.txt") == "chosen.txt"
        with pytest.raises(fs.InvalidFileName):  # an explicit name is the developer's: checked, not rewritten
            files.save(FileStorage(stream(b"5"), filename="x.txt"), filename="../x.txt")
        assert sorted(files.list_files()) == ["chosen.txt", "file", "passwd", "été_2024.JPG"]
    assert sorted(os.listdir(tmp_path / "instance" / "fs" / "files")) == sorted(
        ["chosen.txt", "file", "passwd", "été_2024.JPG"]
    )


def test_save_a_plain_file_uses_its_base_name(tmp_path, storage):
    source = tmp_path / "source.txt"
    source.write_bytes(b"on disk")
    with open(source, "rb") as f:
        assert storage.save(f) == "source.txt"
    assert storage.read("source.txt") == b"on disk"


def test_prefix_and_upload_to(tmp_path):
    folder = {"name": "2024"}
    app, files = make_storage(tmp_path, fs.ALL, upload_to=lambda: folder["name"])
    with app.app_context():
        assert files.save(stream(b"a"), "a.txt") == "2024/a.txt"
        folder["name"] = "2025"
        assert files.save(stream(b"b"), "b.txt") == "2025/b.txt"
        assert files.save(stream(b"c"), "c.txt", prefix="other/deep") == "2025/other/deep/c.txt"  # below upload_to
        assert files.save(stream(b"d"), "d.txt", prefix=lambda: "called") == "2025/called/d.txt"
        assert files.save(stream(b"e"), "e.txt", prefix="") == "2025/e.txt"
        with pytest.raises(fs.InvalidFileName):
            files.save(stream(b"f"), "f.txt", prefix="../outside")
    app, files = make_storage(tmp_path / "static", fs.ALL, upload_to="avatars/")
    with app.app_context():
        assert files.save(stream(b"a"), "a.txt") == "avatars/a.txt"


def test_overwrite_default_and_override(tmp_path):
    app, files = make_storage(tmp_path, fs.ALL, overwrite=True)
    with app.app_context():
        files.write("a.txt", "one")
        files.write("a.txt", "two")
        files.save(stream(b"three"), "a.txt")
        assert files.read("a.txt") == b"three"
        with pytest.raises(fs.FileExists):
            files.save(stream(b"four"), "a.txt", overwrite=False)
        with pytest.raises(fs.FileExists):
            files.write("a.txt", "four", overwrite=False)
        assert files.read("a.txt") == b"three"


def test_delete_deletes_that_file_or_that_folder_only(storage):
    for name in ("f.txt", "f.txt.bak", "f.txt~", "f", "sub/f.txt", "sub/deep/g.txt", "subway.txt"):
        storage.write(name, name)
    storage.delete("f.txt")
    assert sorted(storage.list_files()) == ["f", "f.txt.bak", "f.txt~", "sub/deep/g.txt", "sub/f.txt", "subway.txt"]
    storage.delete("f.txt")  # gone already: nothing to do
    storage.delete("sub")  # a folder: its files go (as in Flask-FS), never names that merely start with it
    assert sorted(storage.list_files()) == ["f", "f.txt.bak", "f.txt~", "subway.txt"]


# -- renaming on conflict --------------------------------------------------------------------------


def test_resolve_conflict_finds_the_next_free_name(storage):
    assert storage.resolve_conflict("", "a.txt") == "a_1.txt"
    storage.write("a_1.txt", "x")
    storage.write("dir/b.tar.gz", "x")
    assert storage.resolve_conflict("", "a.txt") == "a_2.txt"
    assert storage.resolve_conflict("dir", "b.tar.gz") == "b.tar_1.gz"
    assert storage.resolve_conflict("", "README") == "README_1"


def test_rename_on_conflict_is_opt_in(tmp_path):
    app, files = make_storage(tmp_path, fs.ALL, rename=True)
    with app.app_context():
        assert [files.save(stream(str(i)), "up/a.txt") for i in range(3)] == ["up/a.txt", "up/a_1.txt", "up/a_2.txt"]
        assert files.save(stream(b"x"), "up/a.txt", rename=False, overwrite=True) == "up/a.txt"
        assert files.read("up/a.txt") == b"x" and files.read("up/a_2.txt") == b"2"
        with pytest.raises(fs.FileExists):
            files.save(stream(b"y"), "up/a.txt", rename=False)


def test_rename_uses_an_overridden_resolve_conflict(tmp_path):
    class Dated(fs.Storage):
        def resolve_conflict(self, target_folder, basename):
            stem, _, ext = basename.rpartition(".")
            number = sum(1 for _ in self.list_files())
            return f"{stem}-v{number}.{ext}"

    app = make_app(tmp_path)
    files = Dated("files", fs.ALL, rename=True)
    fs.init_app(app, files)
    with app.app_context():
        assert [files.save(stream(b"x"), "a.txt") for _ in range(3)] == ["a.txt", "a-v1.txt", "a-v2.txt"]


def test_rename_with_a_stream_that_cannot_seek(storage):
    class OneWay(io.RawIOBase):
        def __init__(self, data):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            return self.data.readinto(buffer)

    storage.write("a.bin", b"first")
    assert storage.save(OneWay(b"second" * 1000), "a.bin", rename=True) == "a_1.bin"
    assert storage.read("a_1.bin") == b"second" * 1000


# -- size limit ------------------------------------------------------------------------------------


class Endless(io.RawIOBase):
    """An upload that would never end: only a size limit stops it."""

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = b"z" * len(buffer)
        return len(buffer)


def test_max_size(tmp_path):
    app, files = make_storage(tmp_path, fs.ALL, config={"FILES_FS_MAX_SIZE": 1000})
    with app.app_context():
        assert files.save(stream(b"x" * 1000), "ok.bin") == "ok.bin"
        files.write("keep.bin", b"original")
        for overwrite in (False, True):
            with pytest.raises(fs.FileTooLarge) as error:
                files.save(stream(b"x" * 1001), "big.bin", overwrite=overwrite)
            assert isinstance(error.value, fs.UploadNotAllowed)
            with pytest.raises(fs.FileTooLarge):
                files.save(FileStorage(Endless(), "keep.bin"), overwrite=True)
            with pytest.raises(fs.FileTooLarge):
                files.save(Endless(), "renamed.bin", rename=True)
        assert files.read("keep.bin") == b"original"
        assert sorted(files.list_files()) == ["keep.bin", "ok.bin"]
        assert sorted(os.listdir(files.config.root)) == ["keep.bin", "ok.bin"]  # no temporary file either


def test_max_size_counts_from_where_the_stream_starts(tmp_path):
    app, files = make_storage(tmp_path, fs.ALL, config={"FILES_FS_MAX_SIZE": 10})
    with app.app_context():
        source = stream(b"0123456789" * 10)
        source.seek(90)
        files.write("taken.bin", b"x")
        assert files.save(source, "taken.bin", rename=True) == "taken_1.bin"  # a retry seeks back to byte 90
        assert files.read("taken_1.bin") == b"0123456789"


# -- reading ---------------------------------------------------------------------------------------


def test_read_chunks_argument_checks(storage):
    storage.write("a.bin", b"abc")
    for kwargs in ({"chunk_size": 0}, {"start": -1}, {"start": 2, "end": 1}):
        with pytest.raises(ValueError):
            storage.read_chunks("a.bin", **kwargs)
    assert b"".join(storage.read_chunks("a.bin", chunk_size=1, start=1)) == b"bc"


def test_metadata_and_path(storage, tmp_path):
    storage.write("docs/a.pdf", b"%PDF-1.7")
    meta = storage.metadata("docs/a.pdf")
    assert meta["filename"] == "a.pdf"
    assert meta["url"] == "http://localhost/files/docs/a.pdf"  # absolute, as in Flask-FS
    assert meta["checksum"] == "sha256:" + hashlib.sha256(b"%PDF-1.7").hexdigest()
    assert meta["mime"] == "application/pdf" and meta["size"] == 8
    path = storage.path("docs/a.pdf")
    assert path == str(tmp_path / "instance" / "fs" / "files" / "docs" / "a.pdf")
    with open(path, "rb") as f:
        assert f.read() == b"%PDF-1.7"
    assert storage.path("not/yet.txt").endswith("/files/not/yet.txt")  # need not exist


def test_folders_are_not_files(storage):
    storage.write("dir/a.txt", "x")
    assert not storage.exists("dir")
    for call in (storage.read, storage.metadata, lambda n: storage.open(n, "rb")):
        with pytest.raises(fs.FileNotFound):
            call("dir")
    with pytest.raises(fs.FileExists):
        storage.write("dir", "x")
    with pytest.raises(fs.FileExists):
        storage.write("dir", "x", overwrite=True)
    with pytest.raises(fs.FileExists):
        storage.write("dir/a.txt/b.txt", "x")
    assert list(storage.list_files()) == ["dir/a.txt"]


# -- hostile names ---------------------------------------------------------------------------------

HOSTILE = [
    "../x.txt",
    "../../outside/secret.txt",
    "a/../../x.txt",
    "/etc/passwd",
    "a\x00b.txt",
    "a\\..\\x.txt",
    "..\\outside",
    "",
    ".",
    "..",
    " .. ",
    "a//b",
    "C:x.txt",
    "\uff0e\uff0e/outside/secret.txt",
    "sub/\uff0e\uff0e\uff0f\uff0e\uff0e\uff0foutside",
    "%2e%2e/../x",
    "a/.",
    "x" * 300,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_by_every_operation_and_touch_nothing(tmp_path, name):
    app, files = make_storage(tmp_path, fs.ALL, config={"FS_ROOT": str(tmp_path / "fs")})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    with app.test_request_context():
        files.write("ok.txt", b"ok")
        files.write("sub/ok.txt", b"ok")
        before = tree(tmp_path)
        calls = {
            "save": lambda: files.save(stream(b"x"), name),
            "save upload": lambda: files.save(FileStorage(stream(b"x"), "x.txt"), name),
            "save prefix": lambda: files.save(stream(b"x"), "x.txt", prefix=name),
            "write": lambda: files.write(name, b"x", overwrite=True),
            "read": lambda: files.read(name),
            "read_chunks": lambda: list(files.read_chunks(name)),
            "open r": lambda: files.open(name, "rb"),
            "open w": lambda: files.open(name, "wb"),
            "exists": lambda: files.exists(name),
            "in": lambda: name in files,
            "delete": lambda: files.delete(name),
            "path": lambda: files.path(name),
            "metadata": lambda: files.metadata(name),
            "url": lambda: files.url(name),
            "copy from": lambda: files.copy(name, "copy.txt"),
            "copy to": lambda: files.copy("ok.txt", name, overwrite=True),
            "move from": lambda: files.move(name, "moved.txt"),
            "move to": lambda: files.move("ok.txt", name, overwrite=True),
            "serve": lambda: files.serve(name),
        }
        if not name:
            del calls["save prefix"]  # an empty prefix is no prefix
        for label, call in calls.items():
            with pytest.raises(fs.InvalidFileName):
                call()
                pytest.fail(f"{label} accepted {name!r}")
        assert tree(tmp_path) == before
        assert sorted(files.list_files()) == ["ok.txt", "sub/ok.txt"]
