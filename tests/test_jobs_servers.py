"""Jobs against real servers and real processes: S3 (moto), Redis with RQ workers, kill -9, migrations."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

import flask_fs as fs
from flask_fs import jobs
from flask_fs.jobs.ext import unlayered
from tests import jobs_app
from tests.conftest import make_app
from tests.servers import SWIFT_TEMPURL_KEY, free_port

ROOT = Path(__file__).resolve().parent.parent
SIZE = 12 * 1024 * 1024  # above the 8 MiB multipart threshold: uploaded in parts, killable in between


def s3_settings(endpoint: str, storage: str = "FILES") -> dict:
    return {
        f"{storage}_FS_BACKEND": "s3",
        f"{storage}_FS_ENDPOINT": endpoint,
        f"{storage}_FS_REGION": "us-east-1",
        f"{storage}_FS_ACCESS_KEY": "testing",
        f"{storage}_FS_SECRET_KEY": "testing",
        f"{storage}_FS_ADDRESSING_STYLE": "path",
        f"{storage}_FS_CREATE_BUCKET": True,
        f"{storage}_FS_BUCKET": f"jobs-{uuid.uuid4().hex[:12]}",
    }


def s3_client(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip


def keys(endpoint: str, bucket: str) -> list[str]:
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


def app_for(monkeypatch, tmp_path, **config):
    """The ``tests.jobs_app`` app in this process, with ``config``; returns (app, env for its subprocesses)."""
    config = {"INSTANCE_PATH": str(tmp_path / "instance"), "FS_SERVE": True, "FS_JOBS_BACKOFF": 0.05, **config}
    env = {**os.environ, "FLASK_FS_TEST_CONFIG": json.dumps(config), "PYTHONPATH": str(ROOT)}
    monkeypatch.setenv("FLASK_FS_TEST_CONFIG", json.dumps(config))
    return jobs_app.create_app(), env


def flask(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "tests.jobs_app:create_app", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


def wait_for_line(process: subprocess.Popen, prefix: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and process.poll() is not None:
            raise AssertionError(f"process ended before {prefix!r}: {process.stderr.read()}")
    raise AssertionError(f"no {prefix!r} within {timeout}s")


def journal_rows(app, query: str) -> list:
    with sqlite3.connect(jobs.jobs_of(app).journal.path) as db:
        return db.execute(query).fetchall()


# -- promotion to S3 ----------------------------------------------------------------------------------


def test_no_404_while_a_background_upload_is_promoted_to_s3(monkeypatch, tmp_path, moto_endpoint):
    app, _ = app_for(monkeypatch, tmp_path, **s3_settings(moto_endpoint))
    runtime = jobs.jobs_of(app)
    content = os.urandom(24 * 1024 * 1024)
    stop, failures, reads = threading.Event(), [], {"pending": 0, "promoted": 0}

    def hammer(url: str) -> None:
        client = app.test_client()
        while not stop.is_set():
            pending = bool(runtime.pending())
            response = client.get(url)
            if response.status_code != 200 or response.data != content:
                failures.append(response.status_code)
            reads["pending" if pending else "promoted"] += 1

    with app.app_context():
        name = jobs_app.files.save(io.BytesIO(content), "big.bin", background=True)
        url = jobs_app.files.url(name)
    readers = [threading.Thread(target=hammer, args=(url,)) for _ in range(3)]
    for reader in readers:
        reader.start()
    assert runtime.wait(120)
    deadline = time.monotonic() + 30
    while reads["promoted"] < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for reader in readers:
        reader.join()
    assert failures == []
    assert reads["pending"] >= 1 and reads["promoted"] >= 6
    bucket = app.config["FILES_FS_BUCKET"]
    body = s3_client(moto_endpoint).get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest()


def test_kill_9_of_the_app_mid_upload_then_restart_finishes_the_promotion(monkeypatch, tmp_path, moto_endpoint):
    settings = {**s3_settings(moto_endpoint), "FILES_FS_MULTIPART_CHUNKSIZE": "5MiB"}
    app, env = app_for(monkeypatch, tmp_path, **settings)
    bucket = app.config["FILES_FS_BUCKET"]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.jobs_app", *(f"big-{n}.bin" for n in range(4))],
        cwd=ROOT, env={**env, "FLASK_FS_TEST_SIZE": str(SIZE)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    client = s3_client(moto_endpoint)
    try:
        wait_for_line(child, "SAVED")
        deadline = time.monotonic() + 60
        while not client.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            assert time.monotonic() < deadline, "no upload started"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    promoted_before = set(keys(moto_endpoint, bucket))
    assert len(promoted_before) < 4  # killed mid-promotion
    unfinished = journal_rows(app, "SELECT filename, state FROM jobs")
    assert len(unfinished) == 4 - len(promoted_before)
    for name in {f"big-{n}.bin" for n in range(4)} - promoted_before:  # no partial object under a final name
        assert name not in keys(moto_endpoint, bucket)
    restarted = jobs_app.create_app()  # a new start resumes the jobs of the dead process
    runtime = jobs.jobs_of(restarted)
    assert runtime.wait(180)
    assert runtime.pending() == []
    assert keys(moto_endpoint, bucket) == sorted(f"big-{n}.bin" for n in range(4))  # none lost, none duplicated
    for n in range(4):
        body = client.get_object(Bucket=bucket, Key=f"big-{n}.bin")["Body"].read()
        assert body == b"x" * SIZE + f"big-{n}.bin".encode()
    assert list(restarted.extensions["fs"].bound["files"].backend.cache.list_files()) == []


def test_s3_stopped_during_jobs_fails_them_with_the_error_and_retry_finishes_them(monkeypatch, tmp_path):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        app, env = app_for(monkeypatch, tmp_path, FS_JOBS_RETRIES=3, **s3_settings(endpoint))
        bucket = app.config["FILES_FS_BUCKET"]
        runtime = jobs.jobs_of(app)
        gate = threading.Event()
        hold = lambda sender, **kwargs: gate.wait(30)  # noqa: E731
        jobs.job_started.connect(hold)
        with app.app_context():
            jobs_app.files.write("first.txt", b"bucket created")
            names = [
                jobs_app.files.save(io.BytesIO(b"later %d" % n), f"doc-{n}.txt", background=True) for n in range(3)
            ]
            server.stop()  # the server goes away while the jobs run
            gate.set()
            jobs.job_started.disconnect(hold)
            assert runtime.wait(60)
            records = runtime.pending()
            assert sorted(r.args["filename"] for r in records) == names
            assert {(r.state, r.attempts) for r in records} == {("failed", 3)}
            assert all(r.error.startswith(f"BackendError: S3 at {endpoint} failed: Could not connect") for r in records)
            assert [jobs_app.files.read(name) for name in names] == [b"later 0", b"later 1", b"later 2"]
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)  # same state: same process
        server.start()
        retry = flask(env, "fs", "jobs", "retry")
        out, err = retry.communicate(timeout=120)
        assert retry.returncode == 0, out + err
        assert "3 job(s) retried" in out
        assert keys(endpoint, bucket) == ["doc-0.txt", "doc-1.txt", "doc-2.txt", "first.txt"]
        assert runtime.pending() == []
    finally:
        server.stop()


# -- RQ with a real Redis ------------------------------------------------------------------------------


@pytest.fixture
def rq_settings(redis_server):
    return {"FS_JOBS_BACKEND": "rq", "FS_JOBS_REDIS_URL": redis_server.url, "FS_JOBS_QUEUE": uuid.uuid4().hex}


def test_rq_workers_in_other_processes_promote_and_delete(monkeypatch, tmp_path, moto_endpoint, rq_settings):
    app, env = app_for(monkeypatch, tmp_path, **rq_settings, **s3_settings(moto_endpoint))
    bucket = app.config["FILES_FS_BUCKET"]
    with app.app_context():
        names = [jobs_app.files.save(io.BytesIO(b"rq %d" % n), f"rq-{n}.txt", background=True) for n in range(5)]
        assert [jobs_app.files.read(name) for name in names] == [b"rq %d" % n for n in range(5)]
    assert keys(moto_endpoint, bucket) == []  # nothing runs in the app process
    workers = [flask(env, "fs", "jobs", "worker", "--burst") for _ in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    assert keys(moto_endpoint, bucket) == sorted(names)
    assert jobs.jobs_of(app).pending() == []
    with app.app_context():
        jobs.delete_later(jobs_app.files, *names[:2])
    worker = flask(env, "fs", "jobs", "worker", "--burst")
    worker.communicate(timeout=120)
    assert keys(moto_endpoint, bucket) == sorted(names[2:])


def test_rq_worker_on_another_machine_with_the_journal_in_redis_and_a_shared_cache(
    monkeypatch, tmp_path, moto_endpoint, rq_settings
):
    """The worker has its own instance folder: it sees only Redis, the shared cache storage and S3."""
    settings = {
        **rq_settings, **s3_settings(moto_endpoint), "FS_JOBS_JOURNAL": rq_settings["FS_JOBS_REDIS_URL"],
        "FS_JOBS_CACHE": "other", "OTHER_FS_ROOT": str(tmp_path / "shared"),
    }  # fmt: skip
    app, env = app_for(monkeypatch, tmp_path / "web", **settings)
    _, worker_env = app_for(monkeypatch, tmp_path / "worker", **settings)
    with app.app_context():
        name = jobs_app.files.save(io.BytesIO(b"far away"), "far.txt", background=True)
        assert os.listdir(tmp_path / "shared" / "files") == ["far.txt"]
        assert app.test_client().get(jobs_app.files.url(name)).data == b"far away"
    assert not (tmp_path / "web" / "instance" / "fs-jobs.sqlite3").exists()
    worker = flask(worker_env, "fs", "jobs", "worker", "--burst")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert keys(moto_endpoint, app.config["FILES_FS_BUCKET"]) == ["far.txt"]
    assert os.listdir(tmp_path / "shared" / "files") == []
    assert jobs.jobs_of(app).pending() == []
    with app.app_context():
        assert app.test_client().get(jobs_app.files.url(name)).data == b"far away"


def test_kill_9_of_an_rq_worker_mid_promotion_then_a_new_worker_finishes(monkeypatch, tmp_path, rq_settings):
    app, env = app_for(monkeypatch, tmp_path, **rq_settings)
    with app.app_context():
        name = jobs_app.files.save(io.BytesIO(b"survives"), "survivor.txt", background=True)
    worker = flask({**env, "FLASK_FS_TEST_HANG": "promote"}, "fs", "jobs", "worker", "--simple")
    try:
        wait_for_line(worker, "STARTED")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    [record] = jobs.jobs_of(app).pending()
    assert record.state == "running"
    target = app.extensions["fs"].bound["files"].backend.main
    assert not target.exists(name)
    with app.app_context():
        assert app.test_client().get(jobs_app.files.url(name)).data == b"survives"
    again = flask(env, "fs", "jobs", "worker", "--burst")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert target.read(name) == b"survives"
    assert jobs.jobs_of(app).pending() == []


def test_rq_job_failing_for_good_is_listed_and_retried(monkeypatch, tmp_path, rq_settings):
    app, env = app_for(monkeypatch, tmp_path, FS_JOBS_RETRIES=2, **rq_settings)
    with app.app_context():
        jobs.thumbnails_later(jobs_app.files, "missing.png", {16: "missing-16.png"})
    worker = flask(env, "fs", "jobs", "worker", "--burst")
    worker.communicate(timeout=120)
    listing = flask(env, "fs", "jobs", "list")
    out, _ = listing.communicate(timeout=60)
    assert "failed" in out and "thumbnails" in out and "FileNotFound: no file named 'missing.png'" in out
    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (40, 40), "blue").save(image, "PNG")
    with app.app_context():
        jobs_app.files.write("missing.png", image.getvalue())
    retry = flask(env, "fs", "jobs", "retry")
    out, err = retry.communicate(timeout=60)
    assert "1 job(s) retried, enqueued" in out, err
    worker = flask(env, "fs", "jobs", "worker", "--burst")
    worker.communicate(timeout=120)
    with app.app_context():
        assert Image.open(io.BytesIO(jobs_app.files.read("missing-16.png"))).size == (16, 16)
    assert jobs.jobs_of(app).pending() == []


# -- migration ----------------------------------------------------------------------------------------


def test_migration_killed_twice_finishes_verified_while_reads_never_fail(monkeypatch, tmp_path, moto_endpoint):
    """2,000 files local -> S3 with --verify --delete-source; readers go through a mirror (S3, then local)."""
    settings = {**s3_settings(moto_endpoint, "OTHER"), "FS_JOBS_MIRROR": {"other": "files"}}
    app, env = app_for(monkeypatch, tmp_path, **settings)
    bucket = app.config["OTHER_FS_BUCKET"]
    source = app.extensions["fs"].bound["files"].backend.main
    contents = {f"d{n % 20}/f{n}.bin": os.urandom(1024 + n) for n in range(2000)}
    for name, data in contents.items():
        source.write(name, data)
    names = list(contents)
    stop, failures, reads = threading.Event(), [], [0]

    def reader() -> None:
        with app.app_context():
            while not stop.is_set():
                name = random.choice(names)
                try:
                    if jobs_app.other.read(name) != contents[name]:
                        failures.append((name, "content"))
                except Exception as exc:
                    failures.append((name, repr(exc)))
                reads[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    args = ("fs", "migrate", "files", "other", "--verify", "--delete-source", "--workers", "8")
    try:
        for threshold in (400, 1200):
            run = flask(env, *args)
            deadline = time.monotonic() + 120
            while len(journal_rows(app, "SELECT filename FROM migrated")) < threshold:
                assert run.poll() is None, run.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            run.send_signal(signal.SIGKILL)
            run.wait()
        recorded = len(journal_rows(app, "SELECT filename FROM migrated"))
        deleted_before = 2000 - len(list(source.list_files()))
        assert recorded < 2000
        run = flask(env, *args)
        out, err = run.communicate(timeout=300)
    finally:
        stop.set()
        thread.join()
    assert run.returncode == 0, out + err
    copied, skipped = (int(word) for word in out.replace(",", "").split()[0:3:2])
    # Finished files were not copied again: those deleted from the source are not listed, those
    # recorded but not deleted yet (killed in between) are skipped.
    assert copied == 2000 - recorded and skipped == recorded - deleted_before, out
    assert failures == [] and reads[0] > 100
    assert keys(moto_endpoint, bucket) == sorted(names)
    client = s3_client(moto_endpoint)
    for name in names:
        assert client.get_object(Bucket=bucket, Key=name)["Body"].read() == contents[name]
    assert list(source.list_files()) == []


def test_migrate_from_backend_to_backend_local_swift_gridfs_s3(tmp_path, moto_endpoint, swift_server, use_mongomock):
    app = make_app(
        tmp_path,
        SWIFTED_FS_BACKEND="swift", SWIFTED_FS_AUTHURL=swift_server.auth_url, SWIFTED_FS_USER=swift_server.user,
        SWIFTED_FS_KEY=swift_server.key, SWIFTED_FS_TEMPURL_KEY=SWIFT_TEMPURL_KEY,
        SWIFTED_FS_CONTAINER=f"jobs-{uuid.uuid4().hex[:12]}",
        GRID_FS_BACKEND="gridfs", GRID_FS_MONGO_URL="mongodb://localhost",
        GRID_FS_MONGO_DB=f"jobs{uuid.uuid4().hex[:8]}",
        **s3_settings(moto_endpoint, "BUCKETED"),
    )  # fmt: skip
    chain = [fs.Storage(name, fs.ALL) for name in ("files", "swifted", "grid", "bucketed")]
    fs.init_app(app, *chain)
    runtime = jobs.init_app(app)
    contents = {f"dir{n % 3}/file {n}.bin": os.urandom(100 * n) for n in range(30)}
    contents["big.bin"] = os.urandom(9 * 1024 * 1024)  # streamed, and in parts on S3
    first = unlayered(chain[0].bind(app).backend)
    for name, data in contents.items():
        first.write(name, data)
    for source, target in zip(chain, chain[1:], strict=False):
        report = jobs.migrate(
            unlayered(source.bind(app).backend), unlayered(target.bind(app).backend), runtime.journal,
            (source.name, target.name), workers=4, verify=True,
        )  # fmt: skip
        assert report.ok, report.failed
        assert (report.copied, report.skipped) == (len(contents), 0), (source.name, target.name)
    last = unlayered(chain[-1].bind(app).backend)
    assert sorted(last.list_files()) == sorted(contents)
    assert all(last.read(name) == data for name, data in contents.items())


def test_swift_stopped_during_jobs_fails_them_with_the_error_and_retry_finishes_them(tmp_path, swift_server):
    from flask.cli import cli as flask_cli

    container = f"jobs-{uuid.uuid4().hex[:12]}"
    app = make_app(
        tmp_path, FILES_FS_BACKEND="swift", FILES_FS_AUTHURL=swift_server.auth_url, FILES_FS_USER=swift_server.user,
        FILES_FS_KEY=swift_server.key, FILES_FS_CONTAINER=container, FS_JOBS_RETRIES=2, FS_JOBS_BACKOFF=0.05,
    )  # fmt: skip
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    runtime = jobs.init_app(app)
    gate = threading.Event()
    hold = lambda sender, **kwargs: gate.wait(30)  # noqa: E731
    jobs.job_started.connect(hold)
    try:
        with app.app_context():
            files.write("first.txt", b"container ready")
            names = [files.save(io.BytesIO(b"swift %d" % n), f"s-{n}.txt", background=True) for n in range(2)]
            swift_server.stop_proxy()
            try:
                gate.set()
                jobs.job_started.disconnect(hold)
                assert runtime.wait(120)
                records = runtime.pending()
                assert {(r.state, r.attempts) for r in records} == {("failed", 2)}
                assert all(r.error.startswith("BackendError") for r in records), records[0].error
                assert [files.read(name) for name in names] == [b"swift 0", b"swift 1"]  # from the cache
            finally:
                swift_server.start_proxy()
            result = app.test_cli_runner().invoke(flask_cli, ["fs", "jobs", "retry"])
            assert result.exit_code == 0, result.output
            assert sorted(unlayered(files.backend).list_files()) == ["first.txt", "s-0.txt", "s-1.txt"]
            assert runtime.pending() == []
    finally:
        gate.set()
        jobs.job_started.disconnect(hold)
