"""What the memory backend adds to the contract: isolation between apps and storages unless a
namespace shares them, atomic changes under threads, immutable contents."""

from __future__ import annotations

import io
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import flask_fs as fs
from flask_fs.backends import load_backend
from flask_fs.backends.memory import MemoryBackend
from tests.conftest import make_app


def memory_app(tmp_path, **config):
    return make_app(tmp_path, FS_BACKEND="memory", **config)


def test_the_entry_point_names_the_memory_backend():
    assert load_backend("memory") is MemoryBackend


def test_two_apps_with_a_storage_of_the_same_name_do_not_share_files(tmp_path):
    files = fs.Storage("files", fs.ALL)
    apps = [memory_app(tmp_path), memory_app(tmp_path)]
    for app in apps:
        fs.init_app(app, files)
    with apps[0].app_context():
        files.write("a.txt", b"first app")
    with apps[1].app_context():
        assert not files.exists("a.txt")
        assert list(files.list_files()) == []
        files.write("a.txt", b"second app")
    with apps[0].app_context():
        assert files.read("a.txt") == b"first app"


def test_two_storages_of_one_app_do_not_share_files(tmp_path):
    app = memory_app(tmp_path, FS_MEMORY_NAMESPACE=f"ns-{uuid.uuid4().hex}")
    files, images = fs.Storage("files", fs.ALL), fs.Storage("images", fs.ALL)
    fs.init_app(app, files, images)
    with app.app_context():
        files.write("a.txt", b"files")
        assert not images.exists("a.txt")
        images.write("a.txt", b"images")
        assert files.read("a.txt") == b"files"


def test_a_namespace_shares_a_storage_between_apps_and_only_that_namespace(tmp_path):
    namespace = f"ns-{uuid.uuid4().hex}"
    files = fs.Storage("files", fs.ALL)
    shared = [memory_app(tmp_path, FS_MEMORY_NAMESPACE=namespace) for _ in range(2)]
    other = memory_app(tmp_path, FILES_FS_NAMESPACE=f"{namespace}-other")
    for app in (*shared, other):
        fs.init_app(app, files)
    with shared[0].app_context():
        files.write("a.txt", b"shared")
    with shared[1].app_context():
        assert files.read("a.txt") == b"shared"
    with other.app_context():
        assert not files.exists("a.txt")


def test_config_shows_the_namespace_setting(tmp_path):
    app = memory_app(tmp_path)
    files = fs.Storage("files")
    fs.init_app(app, files)
    with app.app_context():
        assert files.config == {"backend": "memory", "signed_url_expires": 3600, "batch_concurrency": 16}
    shared = make_app(tmp_path, FS_BACKEND="memory", FILES_FS_NAMESPACE="team")
    fs.init_app(shared, files)
    with shared.app_context():
        assert files.config["namespace"] == "team"


def test_a_reader_keeps_the_version_it_opened():
    backend = MemoryBackend("files", {})
    backend.write("f.txt", b"version one")
    with backend.open("f.txt", "rb") as f:
        assert f.read(7) == b"version"
        backend.write("f.txt", b"version two is longer", overwrite=True)
        backend.delete("f.txt")
        assert f.read() == b" one"


def test_content_is_copied_when_saved_so_the_caller_can_reuse_its_buffer():
    backend = MemoryBackend("files", {})
    buffer = bytearray(b"original")
    backend.save(io.BytesIO(buffer), "f.bin")
    buffer[:] = b"modified"
    assert backend.read("f.bin") == b"original"


def test_listing_is_a_snapshot_that_changes_do_not_break():
    backend = MemoryBackend("files", {})
    for i in range(5):
        backend.write(f"{i}.txt", b"x")
    listed = []
    for name in backend.list_files():
        listed.append(name)
        backend.delete(name)
        backend.write(f"new-{name}", b"y")
    assert listed == [f"{i}.txt" for i in range(5)]
    assert sorted(backend.list_files()) == [f"new-{i}.txt" for i in range(5)]


def test_threads_writing_distinct_names_lose_nothing():
    backend = MemoryBackend("files", {})

    def work(n: int) -> None:
        for i in range(200):
            backend.write(f"t{n}/{i}.txt", f"{n}-{i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert len(list(backend.list_files())) == 8 * 200
    assert backend.read("t7/199.txt") == b"7-199"


@pytest.mark.parametrize("operation", ["save", "copy", "move"])
def test_exclusive_operations_racing_for_one_name_have_one_winner(operation):
    backend = MemoryBackend("files", {})
    for i in range(16):
        backend.write(f"src{i}.txt", f"source {i}")
    barrier = threading.Barrier(16)

    def attempt(i: int) -> int | None:
        barrier.wait()
        try:
            if operation == "save":
                backend.save(io.BytesIO(f"source {i}".encode()), "target.txt")
            else:
                getattr(backend, operation)(f"src{i}.txt", "target.txt")
        except fs.FileExists:
            return None
        return i

    with ThreadPoolExecutor(16) as pool:
        winners = [i for i in pool.map(attempt, range(16)) if i is not None]
    assert len(winners) == 1
    assert backend.read("target.txt") == f"source {winners[0]}".encode()
    if operation == "move":  # the losers' sources are untouched
        assert len(list(backend.list_files())) == 16


def test_move_onto_itself_needs_overwrite_and_keeps_the_file():
    backend = MemoryBackend("files", {})
    backend.write("a.txt", b"A")
    with pytest.raises(fs.FileExists):
        backend.move("a.txt", "a.txt")
    backend.move("a.txt", "a.txt", overwrite=True)
    assert backend.read("a.txt") == b"A"


def test_no_local_paths_nor_signed_urls():
    backend = MemoryBackend("files", {})
    backend.write("a.txt", b"A")
    with pytest.raises(fs.OperationNotSupported):
        backend.path("a.txt")
    with pytest.raises(fs.OperationNotSupported):
        backend.signed_url("a.txt", 60)
