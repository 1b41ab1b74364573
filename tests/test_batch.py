"""Batch operations (``save_many``, ``read_many``) on local, memory, S3 (moto) and Swift storages."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from flask import current_app
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from flask_fs import signals
from tests.backends.conftest import s3_settings, swift_settings
from tests.conftest import make_app


@pytest.fixture(params=["local", "memory", "s3-moto", "swift"])
def settings(request):
    if request.param == "local":
        return {}
    if request.param == "memory":
        return {"FS_BACKEND": "memory"}
    if request.param == "s3-moto":
        return s3_settings(request.getfixturevalue("moto_endpoint"), "testing", "testing")
    return swift_settings(request.getfixturevalue("swift_server"))


@pytest.fixture
def open_storage(tmp_path):
    """``open_storage(settings, extensions, **declaration)``: a storage on an app, in its app context."""
    contexts = []

    def make(settings: dict, extensions=fs.ALL, **declaration) -> fs.Storage:
        app = make_app(tmp_path, **settings)
        files = fs.Storage("files", extensions, **declaration)
        fs.init_app(app, files)
        context = app.app_context()
        context.push()
        contexts.append(context)
        return files

    yield make
    for context in reversed(contexts):
        context.pop()


def test_save_many_stores_every_item_and_returns_names_in_order(settings, open_storage):
    files = open_storage(settings)
    items = [(f"dir/file-{i:03d}.txt", io.BytesIO(f"content {i}".encode())) for i in range(40)]
    items.append((None, FileStorage(io.BytesIO(b"upload"), filename="Résumé final.txt")))
    items.append(("raw.bin", b"raw bytes"))
    names = files.save_many(items, concurrency=8)
    assert names[:40] == [f"dir/file-{i:03d}.txt" for i in range(40)]
    assert names[40:] == ["Résumé_final.txt", "raw.bin"]  # the intake's usual cleaning
    assert files.read_many(names) == [f"content {i}".encode() for i in range(40)] + [b"upload", b"raw bytes"]


def test_partial_failures_are_reported_per_item_and_the_rest_is_stored(settings, open_storage):
    files = open_storage({**settings, "FILES_FS_MAX_SIZE": 10, "FILES_FS_CHECK_CONTENT": True}, ("txt", "png"))
    files.write("taken.txt", b"original")
    items = [
        ("a.txt", b"first"),
        ("taken.txt", b"replaced?"),  # FileExists: overwrite is off
        ("virus.exe", b"MZ"),  # UnauthorizedFileType
        ("big.txt", b"x" * 11),  # FileTooLarge (MAX_SIZE = 10)
        ("fake.png", b"GIF89a" + b"\0" * 4),  # ContentMismatch
        ("b.txt", b"last"),
    ]
    with pytest.raises(fs.BatchError) as raised:
        files.save_many(items, concurrency=3)
    error = raised.value
    assert sorted(error.errors) == [1, 2, 3, 4]
    assert isinstance(error.errors[1], fs.FileExists)
    assert isinstance(error.errors[2], fs.UnauthorizedFileType)
    assert isinstance(error.errors[3], fs.FileTooLarge)
    assert isinstance(error.errors[4], fs.ContentMismatch)
    assert error.results[0] == "a.txt" and error.results[5] == "b.txt"
    assert "4 of 6 items failed" in str(error) and "'taken.txt': FileExists" in str(error)
    assert files.read_many(["a.txt", "b.txt", "taken.txt"]) == [b"first", b"last", b"original"]
    assert not files.exists("virus.exe") and not files.exists("big.txt") and not files.exists("fake.png")


def test_read_many_reports_missing_files_and_returns_the_others(settings, open_storage):
    files = open_storage(settings)
    files.save_many([("one.txt", b"1"), ("two.txt", b"2")])
    with pytest.raises(fs.BatchError) as raised:
        files.read_many(["one.txt", "missing.txt", "two.txt"])
    assert raised.value.results[0] == b"1" and raised.value.results[2] == b"2"
    assert list(raised.value.errors) == [1]
    assert isinstance(raised.value.errors[1], fs.FileNotFound)


def test_overwrite_and_rename_apply_to_each_item(tmp_path, open_storage):
    files = open_storage({})
    files.write("photo.txt", b"old")
    assert files.save_many([("photo.txt", b"new")], overwrite=True) == ["photo.txt"]
    assert files.read("photo.txt") == b"new"
    names = files.save_many([("photo.txt", b"a"), ("photo.txt", b"b"), ("photo.txt", b"c")], rename=True)
    assert sorted(names) == ["photo_1.txt", "photo_2.txt", "photo_3.txt"]
    assert sorted(files.read_many(names)) == [b"a", b"b", b"c"]
    assert files.save_many([("x.txt", b"in a folder")], prefix="docs") == ["docs/x.txt"]


def test_at_most_concurrency_items_run_at_once(open_storage):
    files = open_storage({"FS_BACKEND": "memory"})
    backend = files.backend
    original, lock = backend.save, threading.Lock()
    together = threading.Barrier(3, timeout=10)  # fails unless 3 saves are in flight together
    state = {"running": 0, "most": 0}

    def save(*args, **kwargs):
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        try:
            together.wait()
            return original(*args, **kwargs)
        finally:
            with lock:
                state["running"] -= 1

    backend.save = save
    files.save_many([(f"{i}.txt", b"x") for i in range(9)], concurrency=3)
    assert state["most"] == 3
    assert len(list(files.list_files())) == 9


def test_signals_fire_per_item_with_the_app_context(open_storage):
    files = open_storage({})
    seen = []

    def received(sender, **extra):
        seen.append((extra.get("filename"), current_app.name))

    signals.file_saved.connect(received)
    try:
        files.save_many([("a.txt", b"a"), ("b.txt", b"b")])
    finally:
        signals.file_saved.disconnect(received)
    assert sorted(seen) == [("a.txt", current_app.name), ("b.txt", current_app.name)]


def test_a_bound_storage_runs_batches_without_an_app(tmp_path):
    bound = fs.Storage("files", fs.ALL).from_settings({"FS_BACKEND": "local", "FS_ROOT": str(tmp_path)})
    try:
        assert bound.save_many([("a.txt", b"a"), ("b.txt", b"b")]) == ["a.txt", "b.txt"]
        assert bound.read_many(["b.txt", "a.txt"]) == [b"b", b"a"]
    finally:
        bound.close()


GEVENT_SCRIPT = r"""
from gevent import monkey

monkey.patch_all()

import json, sys, threading
import gevent
from flask import Flask
import flask_fs as fs

settings = json.loads(sys.argv[1])
app = Flask("gevent-app", instance_path=sys.argv[2])
app.config.update(settings, FILES_FS_BATCH_CONCURRENCY=8)
files = fs.Storage("files", fs.ALL)
fs.init_app(app, files)
workers, ticks = set(), []
fs.signals.file_saved.connect(lambda *a, **k: workers.add(threading.get_ident()), weak=False)


def ticker():  # another greenlet: it keeps running only if the batch never blocks the hub
    while True:
        ticks.append(1)
        gevent.sleep(0.005)


with app.app_context():
    items = [(f"g/{i:03d}.bin", bytes([i % 256]) * (1000 + i)) for i in range(120)]
    background = gevent.spawn(ticker)
    names = files.save_many(items)
    data = files.read_many([name for name, _ in items])
    background.kill()
    print(json.dumps({
        "names_in_order": names == [name for name, _ in items],
        "same_bytes": data == [content for _, content in items],
        "workers": len(workers),
        "ticks": len(ticks),
    }))
"""


@pytest.mark.parametrize("server", ["s3-moto", "swift"])
def test_batches_under_gevent_run_concurrently_without_blocking_the_hub(request, server, tmp_path):
    """gevent's monkey-patching turns the batch threads into greenlets: items still run at once, the
    results come back in order, and other greenlets keep running while the batch waits on the network."""
    pytest.importorskip("gevent")
    if server == "s3-moto":
        settings = s3_settings(request.getfixturevalue("moto_endpoint"), "testing", "testing")
    else:
        settings = swift_settings(request.getfixturevalue("swift_server"))
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT, json.dumps(settings), str(tmp_path / "instance")],
        capture_output=True, text=True, timeout=120, cwd=str(Path(__file__).parent.parent),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["names_in_order"] and result["same_bytes"]
    assert result["workers"] > 1  # several greenlets saved items
    assert result["ticks"] > 5  # the hub kept scheduling other greenlets meanwhile
