"""Testing helpers: in-memory storages for your app's tests, and the backend contract suite.

This module needs pytest (``pip install pytest``); flask_fs itself never imports it.

- For an app's tests: :func:`use_memory_backend` puts every storage of an app on the ``memory``
  backend, fresh and empty; the :func:`fs_memory` fixture does it for one test, given an ``app``
  fixture. Enable the fixture with ``pytest_plugins = ["flask_fs.testing"]`` in your top-level
  ``conftest.py``.
- For a backend's author: subclass :class:`BackendContract` in a test module and give it a
  ``backend_config`` fixture; pytest then runs every behaviour flask_fs expects of a backend.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import threading
import tracemalloc
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from werkzeug.datastructures import FileStorage

from . import errors
from .backends import CHUNK_SIZE, BaseBackend
from .files import ALL
from .storage import Storage, init_app, state

__all__ = ["BackendContract", "fs_memory", "restore_backends", "use_memory_backend"]


# -- in-memory storages for an app's tests ------------------------------------------------------


def use_memory_backend(app: Flask) -> dict[str, Any]:
    """Put every storage registered on ``app`` (and every one registered later) on new, empty
    ``memory`` storages; return the settings it replaced, to give to :func:`restore_backends`."""
    keys = ["FS_BACKEND"] + [key for key in app.config if key.endswith("_FS_BACKEND")]
    replaced = {key: app.config.get(key) for key in keys}
    app.config.update(dict.fromkeys(keys, "memory"))
    init_app(app, *state(app).storages.values())
    return replaced


def restore_backends(app: Flask, replaced: dict[str, Any]) -> None:
    """Undo :func:`use_memory_backend`: the settings it replaced, and storages built from them."""
    app.config.update(replaced)
    init_app(app, *state(app).storages.values())


@pytest.fixture
def fs_memory(app: Flask) -> Iterator[Flask]:
    """Your ``app`` fixture, with every storage on the memory backend for this test only.

    Each test starts with empty storages (unless ``FS_MEMORY_NAMESPACE`` shares them); the app's
    own backends come back after the test.
    """
    replaced = use_memory_backend(app)
    yield app
    restore_backends(app, replaced)


# -- the backend contract -----------------------------------------------------------------------

#: Names every backend must store and list as given: spaces, any script, nesting, URL-ish marks.
NAMES = [
    "with space.txt",
    "été/naïve ünïcode.txt",
    "日本語のファイル.txt",
    "a/b/c/d/e/deep.txt",
    "percent%20plus+amp&.txt",
    "semi;colon,comma=eq@at.txt",
    "quote'and(paren)[bracket].txt",
    "hash#and?question.txt",
    "dots.in.name.tar.gz",
    ".hidden",
    "no_extension",
    "UPPER.TXT",
]
#: Names every storage refuses with InvalidFileName before its backend sees them.
HOSTILE = ["../x.txt", "a/../../x.txt", "/etc/passwd", "a\x00b.txt", "a\\..\\x.txt", "", "a//b", "C:x.txt"]
#: (start, end) of ranged reads over a 10000-byte file, including empty and out-of-bounds ones.
RANGES = [
    (0, None),
    (0, 0),
    (0, 1),
    (1, 9999),
    (4096, 8192),
    (5000, 5000),
    (9999, None),
    (9999, 10000),
    (10000, None),
    (0, 20000),
    (12000, None),
    (12000, 13000),
]
MiB = 1024 * 1024


def _stream(data: bytes | str) -> io.BytesIO:
    return io.BytesIO(data.encode() if isinstance(data, str) else data)


class _Generated(io.RawIOBase):
    """``size`` bytes repeating ``block``, produced as they are read and never held whole."""

    def __init__(self, block: bytes, size: int) -> None:
        super().__init__()
        self.block, self.size, self.sent = block, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        offset = self.sent % len(self.block)
        n = min(len(buffer), self.size - self.sent, len(self.block) - offset)
        buffer[:n] = self.block[offset : offset + n]
        self.sent += n
        return n


class _Unseekable(io.RawIOBase):
    """A stream that can only be read forward, like a socket."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


class BackendContract:
    """Every behaviour flask_fs expects of a backend, as pytest tests to inherit.

    Subclass it in a test module (its name starting with ``Test``) and define one fixture,
    ``backend_config``: the Flask settings that put a storage on your backend, for example
    ``{"FS_BACKEND": "mystore", "FS_MYSTORE_BUCKET": "test-1234"}``. The backend must be installed
    (its ``fs.backend`` entry point registered). Each test gets a new app with a storage ``files``
    (all extensions) built from those settings, under ``tmp_path``; a second app built from the
    same settings must see the same files, as two processes of one site do. The tests delete what
    they stored; give each test its own bucket if your server keeps anything else.
    """

    #: Size of the file that must stream in and out in bounded memory.
    large_file_size: int = 24 * MiB
    #: Most memory (Python allocations, traced) that saving or reading it may take; ``None`` when it
    #: cannot be measured (a server running in this process, such as a mock). It must stay below
    #: ``large_file_size`` for the test to prove anything.
    memory_bound: int | None = 12 * MiB
    #: Set it when the backend keeps its files in this process's memory: then only reads are measured.
    holds_files_in_memory: bool = False
    #: Set it when a reader of a file being overwritten may get a BackendError (never mixed content),
    #: as with GridFS, which deletes the old revision's chunks once the new one is in.
    readers_may_fail_during_overwrite: bool = False

    # -- fixtures -----------------------------------------------------------------------------

    @pytest.fixture
    def backend_config(self) -> dict[str, Any]:
        """The Flask settings selecting and configuring the backend under test: define it."""
        pytest.fail(f"{type(self).__name__} must define a backend_config fixture (see BackendContract)")

    def make_app(self, backend_config: dict[str, Any], tmp_path: Any) -> Flask:
        """An app with ``backend_config``, serving files under ``/fs`` (the serving tests request
        that path), its instance folder (hence local roots) in ``tmp_path``."""
        app = Flask("flask_fs_contract", instance_path=str(tmp_path / "instance"))
        app.config.update(backend_config)
        app.config.update(TESTING=True, SERVER_NAME="localhost", FS_SERVE=True, FS_PREFIX="/fs")
        return app

    @pytest.fixture
    def backend_app(self, backend_config: dict[str, Any], tmp_path: Any) -> Flask:
        """The app of :meth:`storage`, whose test client the serving tests use."""
        return self.make_app(backend_config, tmp_path)

    @pytest.fixture
    def storage(self, backend_app: Flask) -> Iterator[Storage]:
        """Storage ``files`` on the backend under test, inside an app context; emptied afterwards."""
        files = Storage("files", ALL)
        init_app(backend_app, files)
        with backend_app.app_context():
            yield files
            for name in list(files.list_files()):
                files.delete(name)

    @pytest.fixture
    def backend(self, storage: Storage) -> BaseBackend:
        """The backend instance behind :meth:`storage`."""
        return storage.backend

    @pytest.fixture
    def second_backend(self, backend_config: dict[str, Any], tmp_path: Any, storage: Storage) -> BaseBackend:
        """Another instance of the backend, from another app with the same settings."""
        app = self.make_app(backend_config, tmp_path)
        files = Storage("files", ALL)
        init_app(app, files)
        with app.app_context():
            return files.backend

    # -- reading and writing ------------------------------------------------------------------

    def test_write_read_exists_contains(self, storage):
        storage.write("hello.txt", "héllo")
        assert storage.read("hello.txt") == "héllo".encode()
        assert storage.exists("hello.txt")
        assert "hello.txt" in storage
        assert "other.txt" not in storage

    @pytest.mark.parametrize("name", NAMES)
    def test_names_are_stored_listed_and_deleted_as_given(self, storage, name):
        content = f"content of {name}".encode()
        storage.write(name, content)
        assert storage.exists(name)
        assert storage.read(name) == content
        assert list(storage.list_files()) == [name]
        assert storage.metadata(name)["size"] == len(content)
        assert storage.metadata(name)["filename"] == posixpath.basename(name)
        storage.delete(name)
        assert not storage.exists(name)
        assert list(storage.list_files()) == []

    def test_empty_file(self, storage):
        storage.write("empty.txt", b"")
        assert storage.exists("empty.txt")
        assert storage.read("empty.txt") == b""
        assert list(storage.read_chunks("empty.txt")) == []
        meta = storage.metadata("empty.txt")
        assert meta["size"] == 0
        algo, digest = meta["checksum"].split(":")
        if algo in hashlib.algorithms_available:
            assert digest == hashlib.new(algo, b"").hexdigest()
        assert list(storage.list_files()) == ["empty.txt"]

    def test_save_reads_an_unseekable_stream(self, storage):
        content = os.urandom(3 * CHUNK_SIZE // 2)
        storage.save(io.BufferedReader(_Unseekable(content)), "socket.bin")
        assert storage.read("socket.bin") == content

    def test_text_content_is_stored_as_utf8(self, storage):
        storage.write("t.txt", "ünïcode ✓")
        assert storage.read("t.txt") == "ünïcode ✓".encode()

    def test_missing_file_raises_file_not_found(self, storage):
        for call in (
            storage.read,
            storage.metadata,
            lambda n: storage.open(n, "rb"),
            lambda n: storage.open(n, "r"),
            lambda n: list(storage.read_chunks(n)),
            lambda n: list(storage.read_chunks(n, start=10, end=20)),
            lambda n: storage.copy(n, "other.txt"),
            lambda n: storage.move(n, "other.txt"),
        ):
            with pytest.raises(errors.FileNotFound):
                call("missing.txt")
        assert not storage.exists("missing.txt")
        assert not storage.exists("other.txt")
        storage.delete("missing.txt")  # deleting a missing file is not an error

    def test_missing_file_error_names_the_file(self, storage):
        with pytest.raises(errors.FileNotFound, match="missing-name.txt"):
            storage.read("sub/missing-name.txt")

    # -- overwriting ----------------------------------------------------------------------------

    def test_overwrite_policy_keeps_existing_content(self, storage):
        storage.write("f.txt", b"first")
        with pytest.raises(errors.FileExists):
            storage.write("f.txt", b"second")
        with pytest.raises(errors.FileExists):
            storage.save(_stream(b"third"), "f.txt")
        assert storage.read("f.txt") == b"first"
        storage.write("f.txt", b"second", overwrite=True)
        assert storage.read("f.txt") == b"second"

    def test_overwrite_with_shorter_content_leaves_no_tail(self, storage):
        storage.write("f.txt", b"a long first version")
        storage.write("f.txt", b"short", overwrite=True)
        assert storage.read("f.txt") == b"short"
        assert storage.metadata("f.txt")["size"] == 5

    def test_overwrite_on_a_free_name_creates_the_file(self, storage):
        storage.save(_stream(b"new"), "new.txt", overwrite=True)
        assert storage.read("new.txt") == b"new"

    def test_save_upload_keeps_sanitised_name_and_content(self, storage):
        upload = FileStorage(_stream(b"data"), filename="../../my photo.JPG", content_type="image/jpeg")
        name = storage.save(upload)
        assert name == "my_photo.JPG"
        assert storage.read(name) == b"data"
        assert storage.save(FileStorage(_stream(b"x"), filename="doc.txt"), prefix="a/b") == "a/b/doc.txt"

    def test_save_with_rename_never_replaces(self, storage):
        names = [storage.save(_stream(str(i)), "same.txt", rename=True) for i in range(3)]
        assert names == ["same.txt", "same_1.txt", "same_2.txt"]
        assert [storage.read(n) for n in names] == [b"0", b"1", b"2"]

    def test_threads_saving_one_name_exactly_one_wins(self, backend, second_backend):
        backends = [backend, second_backend] * 4

        def save(i: int) -> int | None:
            try:
                backends[i].save(_stream(f"writer {i} ".encode() * 1000), "race.txt", overwrite=False)
            except errors.FileExists:
                return None
            return i

        with ThreadPoolExecutor(len(backends)) as pool:
            winners = [i for i in pool.map(save, range(len(backends))) if i is not None]
        assert len(winners) == 1
        assert backend.read("race.txt") == f"writer {winners[0]} ".encode() * 1000

    def test_readers_never_see_a_partial_file_while_it_is_overwritten(self, backend, second_backend):
        versions = [bytes([65 + i]) * 64 * 1024 for i in range(2)]
        backend.save(_stream(versions[0]), "hot.bin", overwrite=True)
        done = threading.Event()
        seen: list[bytes] = []

        def overwrite() -> None:
            try:
                for i in range(8):
                    second_backend.save(_stream(versions[i % 2]), "hot.bin", overwrite=True)
            finally:
                done.set()

        def read() -> None:
            try:
                seen.append(backend.read("hot.bin"))
            except errors.BackendError:
                if not self.readers_may_fail_during_overwrite:
                    raise

        writer = threading.Thread(target=overwrite)
        writer.start()
        while not done.is_set():
            read()
        writer.join()
        read()
        assert all(content in versions for content in seen)
        assert seen[-1] == versions[1]

    def test_another_app_with_the_same_settings_sees_the_same_files(self, backend, second_backend):
        backend.save(_stream(b"shared"), "shared.txt")
        assert second_backend.read("shared.txt") == b"shared"
        second_backend.delete("shared.txt")
        assert not backend.exists("shared.txt")

    # -- deleting and listing -------------------------------------------------------------------

    def test_delete_removes_exactly_that_file(self, storage):
        for name in ("f.txt", "f.txt.bak", "f.txt2", "dir/f.txt"):
            storage.write(name, name)
        storage.delete("f.txt")
        assert not storage.exists("f.txt")
        assert sorted(storage.list_files()) == ["dir/f.txt", "f.txt.bak", "f.txt2"]
        storage.delete("f.txt")  # deleting a missing file is not an error

    def test_list_files_with_nested_names(self, storage):
        names = {"a.txt", "sub/b.txt", "sub/deeper/c.txt", "été/d.txt"}
        for name in names:
            storage.write(name, name)
        assert set(storage.list_files()) == names

    def test_list_files_lists_files_only_once_and_no_folders(self, storage):
        assert list(storage.list_files()) == []
        storage.write("a/b/c.txt", b"c")
        storage.write("a/b/c.txt", b"c2", overwrite=True)
        assert list(storage.list_files()) == ["a/b/c.txt"]
        storage.delete("a/b/c.txt")
        assert list(storage.list_files()) == []

    def test_list_metadata_gives_every_file_with_its_size(self, backend):
        for name, size in (("a.bin", 10), ("sub/b.bin", 2000)):
            backend.write(name, os.urandom(size))
        listing = dict(backend.list_metadata())
        assert sorted(listing) == ["a.bin", "sub/b.bin"]
        assert [listing[name]["size"] for name in sorted(listing)] == [10, 2000]

    # -- metadata -------------------------------------------------------------------------------

    def test_metadata_reports_true_checksum_size_mime_and_date(self, storage):
        content = os.urandom(3000)
        before = datetime.now(UTC).replace(microsecond=0)
        storage.write("sub/pic.png", content)
        meta = storage.metadata("sub/pic.png")
        algo, digest = meta["checksum"].split(":")
        assert digest == hashlib.new(algo, content).hexdigest()
        assert meta["size"] == 3000
        assert meta["mime"] == "image/png"
        assert meta["filename"] == "pic.png"
        assert meta["url"].endswith("sub/pic.png")
        assert meta["modified"].tzinfo is not None
        assert before.timestamp() - 5 <= meta["modified"].timestamp() <= datetime.now(UTC).timestamp() + 5

    def test_backend_metadata_has_the_four_keys_in_their_formats(self, backend):
        backend.write("data.json", b"{}")
        meta = backend.metadata("data.json")
        assert {"checksum", "size", "mime", "modified"} <= set(meta)
        assert re.fullmatch(r"[a-z0-9]+:[0-9a-f]+", meta["checksum"])
        assert type(meta["size"]) is int and meta["size"] == 2
        assert meta["mime"] == "application/json"
        assert isinstance(meta["modified"], datetime) and meta["modified"].utcoffset() is not None

    @pytest.mark.parametrize(
        ("name", "mime"),
        [("a.txt", "text/plain"), ("a.jpg", "image/jpeg"), ("a.pdf", "application/pdf"), ("a.csv", "text/csv")],
    )
    def test_mime_type_follows_the_extension(self, storage, name, mime):
        storage.write(name, b"x")
        assert storage.metadata(name)["mime"] == mime

    def test_metadata_follows_an_overwrite(self, storage):
        storage.write("f.bin", b"one")
        first = storage.metadata("f.bin")
        storage.write("f.bin", b"two, longer", overwrite=True)
        second = storage.metadata("f.bin")
        assert second["size"] == 11
        assert second["checksum"] != first["checksum"]
        assert second["modified"] >= first["modified"]

    # -- open -----------------------------------------------------------------------------------

    @pytest.mark.parametrize("mode", ["w", "wb"])
    def test_open_for_writing_then_reading(self, storage, mode):
        data = "some text é" if mode == "w" else b"\x00\x01binary"
        with storage.open("f.dat", mode) as f:
            f.write(data)
        with storage.open("f.dat", "r" if mode == "w" else "rb") as f:
            assert f.read() == data

    def test_text_modes_take_an_encoding_and_read_lines(self, storage):
        with storage.open("latin.txt", "w", encoding="latin-1") as f:
            f.write("première ligne\nseconde\n")
        assert storage.read("latin.txt") == "première ligne\nseconde\n".encode("latin-1")
        with storage.open("latin.txt", "r", encoding="latin-1") as f:
            assert list(f) == ["première ligne\n", "seconde\n"]

    def test_open_x_mode_refuses_existing_and_w_mode_replaces(self, storage):
        storage.write("f.txt", b"old")
        with pytest.raises(errors.FileExists), storage.open("f.txt", "xb") as f:
            f.write(b"new")
        with pytest.raises(errors.FileExists), storage.open("f.txt", "x") as f:
            f.write("new")
        assert storage.read("f.txt") == b"old"
        with storage.open("f.txt", "wb") as f:
            f.write(b"new")
        assert storage.read("f.txt") == b"new"
        with storage.open("fresh.txt", "x") as f:
            f.write("created")
        assert storage.read("fresh.txt") == b"created"

    @pytest.mark.parametrize("mode", ["a", "ab", "r+", "w+b", "bogus"])
    def test_open_refuses_other_modes(self, storage, mode):
        storage.write("f.txt", b"x")
        with pytest.raises(ValueError):
            storage.open("f.txt", mode)
        assert storage.read("f.txt") == b"x"

    @pytest.mark.parametrize("mode", ["w", "wb"])
    def test_failed_write_block_stores_nothing(self, storage, mode):
        with pytest.raises(RuntimeError), storage.open("f.txt", mode) as f:
            f.write("half" if mode == "w" else b"half")
            raise RuntimeError("client went away")
        assert not storage.exists("f.txt")

    def test_failed_write_block_keeps_the_previous_content(self, storage):
        storage.write("f.txt", b"previous")
        with pytest.raises(RuntimeError), storage.open("f.txt", "wb") as f:
            f.write(b"replacement")
            raise RuntimeError("client went away")
        assert storage.read("f.txt") == b"previous"

    def test_open_for_reading_reads_in_parts(self, storage):
        content = bytes(range(256)) * 100
        storage.write("f.bin", content)
        with storage.open("f.bin", "rb") as f:
            assert f.read(10) == content[:10]
            assert f.read(1000) == content[10:1010]
            if f.seekable():
                f.seek(20000)
                assert f.read(10) == content[20000:20010]
                f.seek(5)
                assert f.read(5) == content[5:10]
            else:
                assert f.read() == content[1010:]
        assert f.closed

    # -- chunks and ranges ----------------------------------------------------------------------

    def test_read_chunks_and_ranges(self, storage):
        content = bytes(range(256)) * 40
        storage.write("f.bin", content)
        chunks = list(storage.read_chunks("f.bin", chunk_size=1000))
        assert b"".join(chunks) == content and max(map(len, chunks)) <= 1000
        assert b"".join(storage.read_chunks("f.bin", start=100, end=5000)) == content[100:5000]
        assert b"".join(storage.read_chunks("f.bin", start=10000)) == content[10000:]

    @pytest.mark.parametrize(("start", "end"), RANGES)
    def test_ranges_are_clipped_to_the_file(self, storage, start, end):
        content = os.urandom(10000)
        storage.write("r.bin", content)
        chunks = list(storage.read_chunks("r.bin", chunk_size=3000, start=start, end=end))
        assert b"".join(chunks) == content[start:end]
        assert all(0 < len(chunk) <= 3000 for chunk in chunks)

    def test_one_byte_chunks(self, storage):
        storage.write("f.bin", b"abcdef")
        assert list(storage.read_chunks("f.bin", chunk_size=1, start=1, end=4)) == [b"b", b"c", b"d"]

    def test_invalid_ranges_are_refused(self, storage):
        storage.write("f.bin", b"abcdef")
        for kwargs in ({"chunk_size": 0}, {"start": -1}, {"start": 4, "end": 2}):
            with pytest.raises(ValueError):
                list(storage.read_chunks("f.bin", **kwargs))

    # -- copy and move --------------------------------------------------------------------------

    def test_copy_and_move(self, storage):
        storage.write("a.txt", b"A")
        storage.write("b.txt", b"B")
        storage.copy("a.txt", "sub/c.txt")
        assert storage.read("sub/c.txt") == b"A" and storage.exists("a.txt")
        with pytest.raises(errors.FileExists):
            storage.move("a.txt", "b.txt")
        assert storage.read("b.txt") == b"B" and storage.exists("a.txt")
        storage.move("a.txt", "moved/a.txt")
        assert not storage.exists("a.txt") and storage.read("moved/a.txt") == b"A"
        storage.move("moved/a.txt", "b.txt", overwrite=True)
        assert storage.read("b.txt") == b"A"

    def test_copy_onto_a_taken_name_needs_overwrite(self, storage):
        storage.write("a.txt", b"A")
        storage.write("b.txt", b"B")
        with pytest.raises(errors.FileExists):
            storage.copy("a.txt", "b.txt")
        assert storage.read("b.txt") == b"B"
        storage.copy("a.txt", "b.txt", overwrite=True)
        assert storage.read("b.txt") == b"A" and storage.read("a.txt") == b"A"

    def test_a_copy_is_independent_of_its_source(self, storage):
        storage.write("a.txt", b"original")
        storage.copy("a.txt", "copy.txt")
        storage.write("a.txt", b"changed", overwrite=True)
        assert storage.read("copy.txt") == b"original"
        storage.delete("a.txt")
        assert storage.read("copy.txt") == b"original"

    def test_copy_and_move_keep_content_checksum_and_type(self, storage):
        content = os.urandom(5000)
        storage.write("pic.png", content)
        checksum = hashlib.sha256(content).hexdigest()
        storage.copy("pic.png", "copy.png")
        storage.move("pic.png", "moved.png")
        assert sorted(storage.list_files()) == ["copy.png", "moved.png"]
        for name in ("copy.png", "moved.png"):
            assert hashlib.sha256(storage.read(name)).hexdigest() == checksum
            meta = storage.metadata(name)
            assert meta["size"] == 5000 and meta["mime"] == "image/png"
            algo, digest = meta["checksum"].split(":")
            assert digest == hashlib.new(algo, content).hexdigest()

    def test_moving_a_missing_file_creates_nothing(self, storage):
        storage.write("b.txt", b"B")
        with pytest.raises(errors.FileNotFound):
            storage.move("missing.txt", "b.txt", overwrite=True)
        assert storage.read("b.txt") == b"B"
        assert sorted(storage.list_files()) == ["b.txt"]

    # -- large files ----------------------------------------------------------------------------

    def test_large_file_round_trip_streams_in_bounded_memory(self, storage):
        bound, size = self.memory_bound, self.large_file_size
        assert bound is None or bound < size, "memory_bound must be below large_file_size to prove anything"
        block = os.urandom(MiB)
        tracemalloc.start()
        try:
            storage.save(io.BufferedReader(_Generated(block, size), CHUNK_SIZE), "big.bin")
            saved_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            baseline = tracemalloc.get_traced_memory()[0]  # what the backend keeps (all of it, in memory)
            received, digest = 0, hashlib.sha256()
            for chunk in storage.read_chunks("big.bin"):
                received += len(chunk)
                digest.update(chunk)
            read_peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        assert received == size
        assert digest.hexdigest() == hashlib.sha256(block * (size // MiB) + block[: size % MiB]).hexdigest()
        if bound is not None:
            assert read_peak < bound, f"reading {size} bytes took {read_peak} bytes of memory"
            if not self.holds_files_in_memory:
                assert saved_peak < bound, f"saving {size} bytes took {saved_peak} bytes of memory"

    # -- names, serving, URLs -------------------------------------------------------------------

    @pytest.mark.parametrize("name", HOSTILE)
    def test_hostile_names_are_refused_everywhere(self, storage, name):
        storage.write("ok.txt", b"ok")
        calls = [
            lambda: storage.write(name, b"x"),
            lambda: storage.save(_stream(b"x"), name),
            lambda: storage.read(name),
            lambda: storage.open(name, "rb"),
            lambda: storage.open(name, "wb"),
            lambda: storage.exists(name),
            lambda: storage.delete(name),
            lambda: storage.metadata(name),
            lambda: storage.copy("ok.txt", name),
            lambda: storage.copy(name, "ok2.txt"),
            lambda: storage.move(name, "ok2.txt"),
            lambda: storage.url(name),
            lambda: storage.path(name),
            lambda: storage.serve(name),
        ]
        for call in calls:
            with pytest.raises(errors.InvalidFileName):
                call()
        assert list(storage.list_files()) == ["ok.txt"]

    def test_serving_with_type_etag_conditional_and_range(self, storage, backend_app):
        content = bytes(range(256)) * 4
        storage.write("dir/pic.png", content)
        client = backend_app.test_client()
        response = client.get("/fs/files/dir/pic.png")
        assert response.status_code == 200
        assert response.data == content
        assert response.mimetype == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        etag = response.headers["ETag"]
        assert etag and response.headers["Last-Modified"]
        assert client.get("/fs/files/dir/pic.png", headers={"If-None-Match": etag}).status_code == 304
        partial = client.get("/fs/files/dir/pic.png", headers={"Range": "bytes=10-19"})
        assert partial.status_code == 206
        assert partial.data == content[10:20]
        assert partial.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
        assert client.get("/fs/files/dir/missing.png").status_code == 404

    @pytest.mark.parametrize("name", ["été/naïve ünïcode.txt", "with space.txt", "empty.txt"])
    def test_serving_any_name_at_its_url(self, storage, backend_app, name):
        content = b"" if name == "empty.txt" else name.encode()
        storage.write(name, content)
        response = backend_app.test_client().get(storage.url(name))
        assert response.status_code == 200
        assert response.data == content

    def test_signed_urls_or_a_clear_refusal(self, storage):
        storage.write("secret.txt", b"secret")
        try:
            url = storage.signed_url("secret.txt", expires=60)
        except errors.OperationNotSupported:
            return
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"secret"

    def test_local_paths_or_a_clear_refusal(self, storage):
        storage.write("sub/f.txt", b"on disk")
        try:
            path = storage.path("sub/f.txt")
        except errors.OperationNotSupported:
            return
        assert os.path.isabs(path)
        with open(path, "rb") as f:
            assert f.read() == b"on disk"

    def test_check_passes_on_a_working_backend(self, storage):
        storage.check()

    def test_close_releases_and_the_next_operation_reconnects(self, storage, backend):
        storage.write("a.txt", b"before")
        reader = storage.open("a.txt", "rb")
        backend.close()
        backend.close()  # closing twice is harmless
        reader.close()
        assert storage.read("a.txt") == b"before"
        storage.write("b.txt", b"after")
        assert sorted(storage.list_files()) == ["a.txt", "b.txt"]
