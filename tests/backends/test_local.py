"""The local backend: atomic writes under crashes, races between threads and processes, symlinks."""

from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flask_fs as fs
from flask_fs import names
from flask_fs.backends import local
from tests.conftest import make_app, stream

#: A child process that saves ``argv[2]`` into the storage rooted at ``argv[1]``; ``argv[3]`` is the
#: write mode: 'unnamed' (O_TMPFILE, the default) or 'named' (forced fallback to a named temporary file).
PRELUDE = textwrap.dedent(
    """
    import io, os, sys, time
    from flask import Flask
    import flask_fs as fs
    from flask_fs.backends import local

    root, name, mode = sys.argv[1:4]
    if mode == "named":
        local._linker = None
    app = Flask("child")
    app.config["FILES_FS_ROOT"] = root
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    """
)

#: Streams an endless upload slowly (announcing when it is under way) until it is killed.
SLOW_UPLOAD = PRELUDE + textwrap.dedent(
    """
    class Slow(io.RawIOBase):
        sent = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            if self.sent == 4:
                print("streaming", flush=True)
            self.sent += 1
            time.sleep(0.005)
            size = min(len(buffer), 64 * 1024)
            buffer[:size] = b"s" * size
            return size

    with app.app_context():
        files.save(Slow(), name, overwrite=sys.argv[4] == "overwrite")
    """
)

#: Waits for the go file, then saves 2 MiB of its own tag under the shared name.
RACER = PRELUDE + textwrap.dedent(
    """
    tag, ready, go, rename = sys.argv[4:8]
    content = tag.encode() * (2 * 1024 * 1024 // len(tag))
    with app.app_context():
        open(ready, "w").close()
        while not os.path.exists(go):
            time.sleep(0.0005)
        try:
            print("saved", files.save(io.BytesIO(content), name, rename=rename == "1"), flush=True)
        except fs.FileExists:
            print("exists", flush=True)
    """
)


@pytest.fixture(params=["unnamed", "named"])
def mode(request, monkeypatch, tmp_path):
    """Run the test with O_TMPFILE writes, then with the named-temporary-file fallback."""
    if request.param == "named":
        monkeypatch.setattr(local, "_linker", None)
    else:
        probe = tmp_path / "probe"
        probe.mkdir()
        if local._unnamed_linker(str(probe)) is None:
            pytest.skip("this file system or kernel cannot link O_TMPFILE files: only the fallback runs here")
    return request.param


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


@pytest.fixture
def app(root, tmp_path):
    return make_app(tmp_path, FILES_FS_ROOT=str(root))


@pytest.fixture
def files(app):
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    with app.app_context():
        yield files


# -- atomic writes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", ["overwrite", "create"])
def test_a_crash_mid_upload_leaves_no_file(files, root, mode, overwrite):
    files.write("existing.bin", b"the old version")
    target = "existing.bin" if overwrite == "overwrite" else "new/upload.bin"
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_UPLOAD, str(root), target, mode, overwrite],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "streaming\n", child.stderr.read()
        time.sleep(0.05)  # a few more chunks are written
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert files.read("existing.bin") == b"the old version"
    assert sorted(files.list_files()) == ["existing.bin"]
    assert not files.exists("new/upload.bin")
    litter = [name for name in os.listdir(root) if name.startswith(".~fs-")]
    if mode == "unnamed":
        assert litter == []  # an unnamed file vanishes with the process
    else:
        assert all(name.endswith(".part") for name in litter)  # hidden from list_files above


def test_an_error_mid_upload_leaves_no_file_and_no_temporary(files, root, mode):
    class Broken(io.RawIOBase):
        sent = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            self.sent += 1
            if self.sent > 3:
                raise ConnectionResetError("client went away")
            buffer[:10] = b"0123456789"
            return 10

    files.write("a.bin", b"old")
    for overwrite in (False, True):
        for name in ("a.bin", "b.bin", "deep/c.bin"):
            with pytest.raises(ConnectionResetError):
                files.save(Broken(), name, overwrite=overwrite)
    assert files.read("a.bin") == b"old"
    assert sorted(files.list_files()) == ["a.bin"]
    assert sorted(os.listdir(root)) == ["a.bin", "deep"] and os.listdir(root / "deep") == []


def test_writes_get_the_usual_permissions(files, root, mode):
    umask = os.umask(0o022)
    os.umask(umask)
    files.write("a.txt", "x")
    files.write("a.txt", "y", overwrite=True)
    files.write("b.txt", "x")
    for name in ("a.txt", "b.txt"):
        assert stat.S_IMODE(os.stat(root / name).st_mode) == 0o666 & ~umask


def test_fsync_setting_flushes_file_and_folder(tmp_path, monkeypatch, mode):
    app = make_app(tmp_path, FILES_FS_FSYNC=True)
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)), real_fsync(fd)))
    with app.app_context():
        files.write("a.txt", "x")
    assert synced == [False, True]  # the file's data, then the folder's new entry


# -- races ---------------------------------------------------------------------------------------------


def race_threads(app, count, save):
    """Run ``save(i)`` in ``count`` threads released together; return their results."""
    barrier = threading.Barrier(count)

    def run(i):
        with app.app_context():
            barrier.wait()
            try:
                return save(i)
            except fs.FileExists:
                return None

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def content_of(i: int) -> bytes:
    return f"writer {i:02d};".encode() * 40_000  # 440 KB: long enough to overlap


def test_threads_saving_one_name_exactly_one_wins(app, files, mode):
    for round_ in range(3):
        name = f"race-{round_}.bin"
        results = race_threads(app, 12, lambda i, name=name: files.save(io.BytesIO(content_of(i)), name))
        winners = [i for i, result in enumerate(results) if result is not None]
        assert len(winners) == 1, results
        assert files.read(name) == content_of(winners[0])
    assert sorted(files.list_files()) == ["race-0.bin", "race-1.bin", "race-2.bin"]


def test_threads_saving_with_rename_all_win_under_distinct_names(app, files, mode):
    results = race_threads(app, 12, lambda i: files.save(io.BytesIO(content_of(i)), "up/same.bin", rename=True))
    assert None not in results and len(set(results)) == 12
    assert "up/same.bin" in results and set(files.list_files()) == set(results)
    for i, name in enumerate(results):
        assert files.read(name) == content_of(i)


def race_processes(root, tmp_path, mode, count, rename):
    """Start ``count`` processes saving 'shared.bin' at once; return {tag: (outcome, saved name)}."""
    go = tmp_path / "go"
    children = {}
    for i in range(count):
        tag = f"process {i};"
        ready = tmp_path / f"ready-{i}"
        args = [str(root), "shared.bin", mode, tag, str(ready), str(go), "1" if rename else "0"]
        children[tag] = (
            ready,
            subprocess.Popen(
                [sys.executable, "-c", RACER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
        )
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in children.values()):
        assert time.monotonic() < deadline, "racers did not start"
        time.sleep(0.01)
    go.touch()
    outcomes = {}
    for tag, (_, child) in children.items():
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        outcome, _, saved = out.strip().partition(" ")
        outcomes[tag] = (outcome, saved)
    return outcomes


def test_processes_saving_one_name_exactly_one_wins(files, root, tmp_path, mode):
    outcomes = race_processes(root, tmp_path, mode, 4, rename=False)
    winners = [tag for tag, (outcome, _) in outcomes.items() if outcome == "saved"]
    assert len(winners) == 1, outcomes
    assert sorted(outcome for outcome, _ in outcomes.values()) == ["exists", "exists", "exists", "saved"]
    content = files.read("shared.bin")
    assert content == winners[0].encode() * (len(content) // len(winners[0])) and len(content) > 2_000_000
    assert list(files.list_files()) == ["shared.bin"]


def test_processes_saving_with_rename_all_win_under_distinct_names(files, root, tmp_path, mode):
    outcomes = race_processes(root, tmp_path, mode, 4, rename=True)
    names = {saved for _, saved in outcomes.values()}
    assert {outcome for outcome, _ in outcomes.values()} == {"saved"} and len(names) == 4
    assert set(files.list_files()) == names
    for tag, (_, saved) in outcomes.items():
        assert files.read(saved).startswith(tag.encode() * 10)


# -- the files on disk ---------------------------------------------------------------------------------


def test_list_files_hides_temporary_files_and_sorts(files, root):
    for name in ("b.txt", "a/z.txt", "a/b/c.txt", "é.txt"):
        files.write(name, name)
    (root / ".~fs-1234.part").write_bytes(b"half an upload")
    (root / "a" / ".~fs-probe-1").write_bytes(b"")
    assert list(files.list_files()) == ["b.txt", "é.txt", "a/z.txt", "a/b/c.txt"]


@pytest.mark.parametrize("reserved", [".~fs-x.part", "sub/.~fs-y", ".~fs-dir/a.txt", "a/.~fs-/b.txt"])
def test_temporary_file_names_are_reserved_in_every_operation(files, root, reserved):
    files.write("ok.txt", "ok")
    (root / ".~fs-planted.part").write_bytes(b"half an upload")
    calls = [
        lambda: files.write(reserved, "x"),
        lambda: files.save(stream(b"x"), reserved),
        lambda: files.open(reserved, "wb").close(),
        lambda: files.open(reserved, "rb"),
        lambda: files.read(reserved),
        lambda: files.exists(reserved),
        lambda: files.metadata(reserved),
        lambda: files.delete(reserved),
        lambda: files.path(reserved),
        lambda: files.move("ok.txt", reserved),
        lambda: files.copy("ok.txt", reserved),
        lambda: files.move(".~fs-planted.part", "taken.txt"),
        lambda: files.copy(".~fs-planted.part", "taken.txt"),
        lambda: list(files.read_chunks(".~fs-planted.part")),
        lambda: files.serve(".~fs-planted.part"),
    ]
    for call in calls:
        with pytest.raises(fs.InvalidFileName, match="reserved"):
            call()
    assert list(files.list_files()) == ["ok.txt"] and files.read("ok.txt") == b"ok"
    assert sorted(os.listdir(root)) == [".~fs-planted.part", "ok.txt"]


def test_clean_stale_removes_old_temporary_files_only(files, root):
    files.write("keep.txt", "k")
    files.write("a/b/keep.txt", "k")
    old = [root / ".~fs-crashed.part", root / "a" / "b" / ".~fs-abc123.part"]
    fresh = root / "a" / ".~fs-running.part"
    for path in [*old, fresh]:
        path.write_bytes(b"half an upload")
    hour_ago = time.time() - 3600
    for path in old:
        os.utime(path, (hour_ago, hour_ago))
    (root / "a" / ".~fs-dir").mkdir()  # not a file flask_fs makes: left alone
    os.symlink(old[0], root / ".~fs-link")  # a link is not followed: its target is not removed through it
    os.utime(root / ".~fs-link", (hour_ago, hour_ago), follow_symlinks=False)
    assert files.backend.clean_stale(1800) == [".~fs-crashed.part", "a/b/.~fs-abc123.part"]
    assert not any(path.exists() for path in old)
    assert fresh.exists() and (root / "a" / ".~fs-dir").is_dir() and os.path.islink(root / ".~fs-link")
    assert files.backend.clean_stale(1800) == []
    assert sorted(files.list_files()) == ["a/b/keep.txt", "keep.txt"]


def test_a_crash_in_fallback_mode_leaves_a_temporary_file_that_clean_removes(files, root, monkeypatch):
    monkeypatch.setattr(local, "_linker", None)

    class Crash(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise KeyboardInterrupt  # stands for a kill: the except/finally clauses below do run, though

    real_unlink = os.unlink
    monkeypatch.setattr(os, "unlink", lambda path: None)  # as if the process died before cleaning up
    with pytest.raises(KeyboardInterrupt):
        files.save(Crash(), "big.bin")
    monkeypatch.setattr(os, "unlink", real_unlink)
    litter = [name for name in os.listdir(root) if name.startswith(".~fs-")]
    assert len(litter) == 1 and list(files.list_files()) == []
    assert files.backend.clean_stale(3600) == []  # too fresh: it could be an upload in progress
    assert files.backend.clean_stale(0) == litter
    assert os.listdir(root) == []


def test_empty_and_missing_files(files):
    files.write("empty.txt", b"")
    assert files.read("empty.txt") == b"" and files.exists("empty.txt")
    assert files.metadata("empty.txt")["size"] == 0
    with pytest.raises(fs.FileNotFound):
        files.read("nothing.txt")
    with pytest.raises(fs.FileNotFound):
        files.read("empty.txt/below")


# -- symbolic links ------------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"secret")
    return folder


def test_links_leading_out_of_the_root_are_refused(app, files, root, outside):
    files.write("ok.txt", "ok")
    os.symlink(outside, root / "escape")  # a folder link
    os.symlink(outside / "secret.txt", root / "leak.txt")  # a file link
    os.symlink("../outside/secret.txt", root / "relative.txt")
    for name in ("escape/secret.txt", "leak.txt", "relative.txt"):
        for call in (
            files.read,
            files.metadata,
            files.path,
            files.exists,
            files.delete,
            lambda n: files.open(n, "rb"),
            lambda n: list(files.read_chunks(n)),
            lambda n: files.copy(n, "copy.txt"),
            lambda n: files.move(n, "moved.txt"),
        ):
            with pytest.raises(fs.InvalidFileName, match="outside the storage root"):
                call(name)
    with pytest.raises(fs.InvalidFileName):
        files.write("escape/planted.txt", "x")
    with pytest.raises(fs.InvalidFileName):
        files.copy("ok.txt", "escape/planted.txt")
    with app.test_request_context(), pytest.raises(fs.InvalidFileName):
        files.serve("escape/secret.txt")
    client = app.test_client()
    assert client.get("/files/escape/secret.txt").status_code == 404
    assert client.get("/files/leak.txt").status_code == 404
    assert sorted(os.listdir(outside)) == ["secret.txt"] and (outside / "secret.txt").read_bytes() == b"secret"
    assert list(files.list_files()) == ["ok.txt"]  # links leading out are not listed


def test_links_inside_the_root_are_followed(files, root):
    files.write("real/a.txt", "a")
    os.symlink(root / "real", root / "alias")
    os.symlink("real/a.txt", root / "b.txt")
    assert files.read("alias/a.txt") == b"a" and files.read("b.txt") == b"a"
    files.write("alias/c.txt", "c")
    assert files.read("real/c.txt") == b"c"
    assert sorted(files.list_files()) == ["b.txt", "real/a.txt", "real/c.txt"]  # folder links are not walked


def test_a_root_that_is_itself_a_link_works(tmp_path):
    (tmp_path / "real-root").mkdir()
    os.symlink(tmp_path / "real-root", tmp_path / "root-link")
    app = make_app(tmp_path, FILES_FS_ROOT=str(tmp_path / "root-link"))
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    with app.app_context():
        files.write("a/b.txt", "x")
        os.symlink(tmp_path / "real-root" / "a" / "b.txt", tmp_path / "real-root" / "c.txt")
        assert files.read("a/b.txt") == b"x" and files.read("c.txt") == b"x"
    assert (tmp_path / "real-root" / "a" / "b.txt").read_text() == "x"


def test_standalone_backend_needs_no_app(tmp_path):
    backend = local.LocalBackend("files", {"root": str(tmp_path)})
    backend.save(stream(b"abc"), "x/y.bin")
    assert backend.read("x/y.bin") == b"abc"
    assert list(backend.list_files()) == ["x/y.bin"]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """One storage for many hypothesis examples; each example empties its root afterwards."""
    top = tmp_path_factory.mktemp("scratch")
    app = make_app(top, FILES_FS_ROOT=str(top / "root"))
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    with app.app_context():
        yield top, files


@given(st.lists(st.text(min_size=1, max_size=70), min_size=1, max_size=4).map("/".join))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_name_is_either_refused_or_stored_inside_the_root(scratch, name):
    top, files = scratch
    root = top / "root"
    try:
        try:
            clean = names.clean(name)
            accepted = not any(part.startswith(".~fs-") for part in clean.split("/"))
        except fs.InvalidFileName:
            accepted = False
        if not accepted:
            with pytest.raises(fs.InvalidFileName):
                files.write(name, b"x")
            assert not root.exists() or not any(root.iterdir())
            return
        files.write(name, b"x")
        assert files.read(name) == b"x" and list(files.list_files()) == [clean]
        assert os.path.realpath(files.path(name)).startswith(os.path.realpath(root) + os.sep)
        files.delete(name)
        assert not files.exists(name)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        assert list(top.iterdir()) == []  # nothing was written beside the root


def test_special_files_in_the_root_are_not_files(files, root):
    files.write("ok.txt", "ok")
    os.mkfifo(root / "pipe.txt")  # opening it for reading would wait for a writer forever
    for call in (files.read, files.metadata, lambda n: files.open(n, "rb"), lambda n: list(files.read_chunks(n))):
        with pytest.raises(fs.FileNotFound):
            call("pipe.txt")
    assert not files.exists("pipe.txt") and list(files.list_files()) == ["ok.txt"]


# -- operating system errors ---------------------------------------------------------------------------


@pytest.fixture
def file_size_limit():
    """``limit(n)``: writes past n bytes fail with EFBIG for the rest of the test (a full quota, in effect)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing us
    yield lambda size: resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, handler)


def test_a_write_the_system_refuses_is_a_backend_error_naming_storage_and_file(files, root, mode, file_size_limit):
    files.write("a.bin", b"old")
    file_size_limit(1024 * 1024)
    for overwrite in (False, True):
        for name in ("a.bin", "new/b.bin"):
            with pytest.raises(fs.BackendError, match=f"local storage 'files' failed on file '{name}': File too large"):
                files.save(io.BytesIO(b"x" * (2 * 1024 * 1024)), name, overwrite=overwrite)
    with pytest.raises(fs.BackendError) as error:
        files.write("c.bin", b"x" * (2 * 1024 * 1024))
    assert isinstance(error.value.__cause__, OSError) and error.value.__cause__.errno == errno.EFBIG
    assert files.read("a.bin") == b"old"
    assert sorted(files.list_files()) == ["a.bin"]
    assert [name for name in os.listdir(root) if name.startswith(".~fs-")] == []


def test_names_too_long_for_the_system_are_backend_errors(tmp_path):
    # A root deep enough that a valid 1000-byte name makes a path longer than PATH_MAX (4096).
    root = tmp_path.joinpath(*["d" * 250] * 14)
    root.mkdir(parents=True)
    app = make_app(tmp_path, FILES_FS_ROOT=str(root))
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    name = "/".join(["n" * 200] * 5)
    with app.app_context():
        calls = [lambda: files.write(name, b"x"), lambda: files.read(name), lambda: files.exists(name)]
        for call in [*calls, lambda: files.metadata(name), lambda: files.delete(name), lambda: files.path(name)]:
            with pytest.raises(fs.BackendError, match="failed on file 'nnn.*': File name too long") as error:
                call()
            assert error.value.__cause__.errno == errno.ENAMETOOLONG


def test_a_folder_that_is_a_file_means_file_not_found(files):
    files.write("a.txt", b"x")
    for call in (lambda: files.read("a.txt/b"), lambda: files.metadata("a.txt/b"), lambda: files.open("a.txt/b", "rb")):
        with pytest.raises(fs.FileNotFound, match="'a.txt/b'"):
            call()
    with pytest.raises(fs.FileNotFound):
        files.move("a.txt/b", "c.txt")
