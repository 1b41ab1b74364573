"""Background jobs in the app process: the journal, retries, signals, promotion, deferred work, the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from flask.cli import cli as flask_cli

import flask_fs as fs
from flask_fs import jobs
from flask_fs.errors import ConfigurationError, FileExists, FSError
from flask_fs.jobs.journal import Journal
from tests.conftest import make_app


@pytest.fixture(params=["sqlite", "redis"])
def journal(request, tmp_path):
    """Each journal: SQLite in the instance folder, and Redis (for workers on several machines)."""
    if request.param == "sqlite":
        return Journal(str(tmp_path / "journal.sqlite3"))
    from flask_fs.jobs.redis_journal import RedisJournal

    return RedisJournal(request.getfixturevalue("redis_server").url, namespace=uuid.uuid4().hex)


calls: list[tuple[str, int]] = []


@pytest.fixture(autouse=True)
def no_calls_yet():
    calls.clear()


@jobs.task("test-flaky")
def flaky(runtime, name: str, fail_times: int) -> None:
    """Fails its first ``fail_times`` attempts."""
    calls.append((name, len(calls)))
    if sum(1 for call in calls if call[0] == name) <= fail_times:
        raise OSError(f"server away ({name})")


def runtime(journal, **kwargs):
    return jobs.Jobs(journal, storage=lambda name: None, dispatcher=jobs.ThreadDispatcher(2), **kwargs)


# -- journal and runner ----------------------------------------------------------------------------


def test_a_job_that_fails_then_succeeds_is_retried_with_backoff_and_forgotten(journal):
    events = []
    receivers = [
        (jobs.job_started, lambda sender, **kw: events.append(("started", kw["attempt"]))),
        (jobs.job_failed, lambda sender, **kw: events.append(("failed", kw["attempt"], kw["final"]))),
        (jobs.job_succeeded, lambda sender, **kw: events.append(("succeeded", kw["attempt"]))),
    ]
    for signal, receiver in receivers:
        signal.connect(receiver, sender="test-flaky")
    try:
        run = runtime(journal, retries=4, backoff=0.05)
        job_id = run.submit("test-flaky", name="twice", fail_times=2)
        assert run.wait(10)
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver, sender="test-flaky")
    assert events == [
        ("started", 1), ("failed", 1, False), ("started", 2), ("failed", 2, False), ("started", 3), ("succeeded", 3),
    ]  # fmt: skip
    assert journal.get(job_id) is None  # done jobs leave the journal
    assert run.pending() == []


def test_a_job_that_keeps_failing_ends_failed_with_its_error_and_retry_finishes_it(journal):
    run = runtime(journal, retries=3, backoff=0.01)
    job_id = run.submit("test-flaky", name="thrice", fail_times=3)
    assert run.wait(10)
    record = journal.get(job_id)
    assert (record.state, record.attempts) == ("failed", 3)
    assert record.error == "OSError: server away (thrice)"
    assert run.retry() == [job_id]
    assert run.wait(10)
    assert journal.get(job_id) is None


def test_unknown_task_is_refused_at_submit(journal):
    with pytest.raises(FSError, match="unknown job task 'nope'"):
        runtime(journal).submit("nope")


def test_journal_holds_promoted_names_and_migration_progress(journal):
    first = journal.add("promote", {"filename": "a.txt"}, "files", "a.txt")
    second = journal.add("promote", {"filename": "a.txt"}, "files", "a.txt")  # saved twice, overwriting
    journal.add("delete", {"filenames": ["b.txt"]}, None, None)
    assert journal.is_pending("files", "a.txt") and not journal.is_pending("other", "a.txt")
    assert journal.held("files") == ["a.txt"]
    journal.claim(first, "host:1")
    journal.done(first)
    assert journal.is_pending("files", "a.txt")  # the second save still waits
    journal.done(second)
    assert not journal.is_pending("files", "a.txt") and journal.held("files") == []
    assert [record.task for record in journal.jobs()] == ["delete"]
    journal.record_migrated("files", "other", "x.txt", "sha256:00")
    assert journal.migrated("files", "other") == {"x.txt": "sha256:00"} and journal.migrated("other", "files") == {}
    journal.forget_migration("files", "other")
    assert journal.migrated("files", "other") == {}


def test_a_job_is_claimed_once_even_when_dispatched_twice(journal):
    job_id = journal.add("test-flaky", {"name": "once", "fail_times": 0})
    run = jobs.Jobs(journal, storage=lambda name: None, dispatcher=jobs.ThreadDispatcher(1))
    assert run.execute(job_id) == "done"
    assert run.execute(job_id) == "skipped"
    assert [call[0] for call in calls].count("once") == 1


def test_jobs_of_a_dead_process_are_released_and_resumed(journal, tmp_path):
    job_id = journal.add("test-flaky", {"name": "orphan", "fail_times": 0})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    assert journal.claim(job_id, f"{socket.gethostname()}:{dead.stdout.strip()}") is not None
    alive = journal.add("test-flaky", {"name": "alive", "fail_times": 0})
    journal.claim(alive, f"{socket.gethostname()}:{os.getpid()}")
    run = runtime(journal)
    assert run.resume() == [job_id]  # the running job of this live process is not taken from it
    assert run.wait(10)
    assert journal.get(job_id) is None
    assert journal.get(alive).state == "running"


# -- the Flask layer ---------------------------------------------------------------------------------


@pytest.fixture
def jobs_app(tmp_path):
    app = make_app(tmp_path, FS_JOBS_BACKOFF=0.01, FS_JOBS_RETRIES=2)
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    runtime = jobs.init_app(app)
    yield app, files, runtime
    runtime.close()


def test_unknown_jobs_setting_is_named_with_a_hint(tmp_path):
    app = make_app(tmp_path, FS_JOBS_BAKEND="rq")
    fs.init_app(app, fs.Storage("files"))
    with pytest.raises(ConfigurationError, match="unknown setting FS_JOBS_BAKEND; did you mean FS_JOBS_BACKEND"):
        jobs.init_app(app)


def test_bad_jobs_backend_is_named(tmp_path):
    app = make_app(tmp_path, FS_JOBS_BACKEND="celery")
    fs.init_app(app, fs.Storage("files"))
    with pytest.raises(ConfigurationError, match="FS_JOBS_BACKEND = 'celery': must be one of 'thread', 'rq'"):
        jobs.init_app(app)


def test_background_save_without_jobs_says_what_to_call(storage):
    with pytest.raises(ConfigurationError, match=r"flask_fs.jobs.init_app\(app\)"):
        storage.save(io.BytesIO(b"x"), "a.txt", background=True)


def test_background_save_is_readable_and_served_before_and_after_promotion(jobs_app):
    app, files, runtime = jobs_app
    gate, seen = threading.Event(), []

    def hold(sender, **kwargs):
        if sender == "promote":
            seen.append(kwargs["args"]["filename"])
            gate.wait(10)

    jobs.job_started.connect(hold)
    try:
        with app.app_context():
            name = files.save(io.BytesIO(b"hello later"), "a/doc.txt", background=True)
            assert name == "a/doc.txt"
            target = files.backend.main
            assert not target.exists(name)  # still in the cache
            assert files.exists(name) and files.read(name) == b"hello later"
            assert files.metadata(name)["size"] == 11
            assert list(files.list_files()) == ["a/doc.txt"]
            response = app.test_client().get(files.url(name))
            assert (response.status_code, response.data) == (200, b"hello later")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert [job.task for job in runtime.pending()] == ["promote"]
            gate.set()
            assert runtime.wait(10)
            assert target.read(name) == b"hello later"
            assert not files.backend.cache.exists(name)
            assert app.test_client().get(files.url(name)).data == b"hello later"
            assert runtime.pending() == []
    finally:
        gate.set()
        jobs.job_started.disconnect(hold)
    assert seen == ["a/doc.txt"]


def test_background_save_keeps_names_unique(jobs_app):
    app, files, runtime = jobs_app
    with app.app_context():
        files.save(io.BytesIO(b"one"), "same.txt")
        with pytest.raises(FileExists):
            files.save(io.BytesIO(b"two"), "same.txt", background=True)
        second = files.save(io.BytesIO(b"two"), "same.txt", background=True, rename=True)
        third = files.save(io.BytesIO(b"three"), "same.txt", background=True, rename=True)
        assert len({"same.txt", second, third}) == 3
        assert runtime.wait(10)
        assert [files.read(n) for n in ("same.txt", second, third)] == [b"one", b"two", b"three"]


def test_background_save_applies_the_storage_policy_at_once(tmp_path):
    app = make_app(tmp_path, FILES_FS_MAX_SIZE=4)
    files = fs.Storage("files", fs.IMAGES)
    fs.init_app(app, files)
    runtime = jobs.init_app(app)
    with app.app_context():
        with pytest.raises(fs.UnauthorizedFileType):
            files.save(io.BytesIO(b"x"), "a.exe", background=True)
        with pytest.raises(fs.FileTooLarge):
            files.save(io.BytesIO(b"GIF89a" + b"x" * 10), "a.gif", background=True)
    assert runtime.pending() == []
    assert list(files.bind(app).backend.cache.list_files()) == []


def test_promotion_to_an_unreachable_target_fails_with_its_error_then_retry_finishes(jobs_app, tmp_path):
    app, files, runtime = jobs_app
    bound = files.bind(app)
    root = bound.backend.main.root
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with open(root, "w") as f:  # the target folder is a file: every write fails
        f.write("in the way")
    with app.app_context():
        name = files.save(io.BytesIO(b"kept"), "kept.txt", background=True)
        assert runtime.wait(10)
        [record] = runtime.pending()
        assert (record.state, record.attempts) == ("failed", 2)
        assert record.error == "FileExists: cannot save 'kept.txt': one of its folders is a file"
        assert files.read(name) == b"kept"  # still served from the cache
        assert app.test_client().get(files.url(name)).status_code == 200
        result = app.test_cli_runner().invoke(flask_cli, ["fs", "jobs", "list"])
        assert "failed" in result.output and "files:kept.txt" in result.output and record.error in result.output
        os.remove(root)
        result = app.test_cli_runner().invoke(flask_cli, ["fs", "jobs", "retry"])
        assert result.exit_code == 0, result.output
        assert "1 job(s) retried" in result.output
        assert bound.backend.main.read(name) == b"kept"
        assert runtime.pending() == []
        assert "no unfinished job" in app.test_cli_runner().invoke(flask_cli, ["fs", "jobs", "list"]).output


def test_delete_later(jobs_app):
    app, files, runtime = jobs_app
    with app.app_context():
        files.write("old/a.txt", b"a")
        files.write("old/b.txt", b"b")
        jobs.delete_later(files, "old/a.txt", "old/b.txt")
        assert runtime.wait(10)
        assert list(files.list_files()) == []


def test_thumbnails_later_render_from_the_stored_image(jobs_app):
    from PIL import Image

    app, files, runtime = jobs_app
    image = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(image, "PNG")
    with app.app_context():
        files.write("photo.png", image.getvalue())
        jobs.thumbnails_later(files, "photo.png", {32: "photo-32.png", 64: "photo-64.png"})
        assert runtime.wait(10)
        sizes = {name: Image.open(io.BytesIO(files.read(name))).size for name in ("photo-32.png", "photo-64.png")}
    assert sizes == {"photo-32.png": (32, 32), "photo-64.png": (64, 64)}


def test_storage_with_a_public_url_links_pending_files_to_the_app(tmp_path):
    app = make_app(tmp_path, FILES_FS_URL="https://cdn.example.com/files")
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    runtime = jobs.init_app(app)
    gate = threading.Event()

    def hold(sender, **kwargs):
        gate.wait(10)

    jobs.job_started.connect(hold)
    try:
        with app.app_context():
            name = files.save(io.BytesIO(b"x"), "x.txt", background=True)
            assert files.url(name) == "/files/x.txt"
            assert app.test_client().get(files.url(name)).status_code == 200
            gate.set()
            assert runtime.wait(10)
            assert files.url(name) == "https://cdn.example.com/files/x.txt"
    finally:
        gate.set()
        jobs.job_started.disconnect(hold)


def test_every_jobs_setting_is_documented():
    page = (Path(__file__).resolve().parent.parent / "docs" / "background.rst").read_text()
    assert [setting.name for setting in jobs.SETTINGS if f"``{setting.name}``" not in page] == []


# -- mirror ------------------------------------------------------------------------------------------


def test_mirror_writes_to_both_and_reads_fall_back_to_the_secondary(tmp_path):
    app = make_app(tmp_path, FS_JOBS_MIRROR={"new": "old"})
    new, old = fs.Storage("new", fs.ALL), fs.Storage("old", fs.ALL)
    fs.init_app(app, new, old)
    jobs.init_app(app)
    with app.app_context():
        old.write("legacy.txt", b"from before")
        new.save(io.BytesIO(b"fresh"), "fresh.txt")
        with new.open("opened.txt", "wb") as f:
            f.write(b"written")
        new_backend, old_backend = new.backend.main.main, new.backend.main.secondary
        assert sorted(new_backend.list_files()) == ["fresh.txt", "opened.txt"]
        assert sorted(old_backend.list_files()) == ["fresh.txt", "legacy.txt", "opened.txt"]
        assert new.read("legacy.txt") == b"from before" and new.exists("legacy.txt")
        assert app.test_client().get(new.url("legacy.txt")).data == b"from before"
        assert sorted(new.list_files()) == ["fresh.txt", "legacy.txt", "opened.txt"]
        new.delete("fresh.txt")
        assert not old.exists("fresh.txt") and not new.exists("fresh.txt")
        with pytest.raises(fs.FileNotFound):
            new.read("nowhere.txt")


def test_mirror_of_an_unknown_storage_is_named(tmp_path):
    app = make_app(tmp_path, FS_JOBS_MIRROR={"new": "gone"})
    fs.init_app(app, fs.Storage("new"))
    with pytest.raises(ConfigurationError, match="FS_JOBS_MIRROR: no storage named 'gone'"):
        jobs.init_app(app)


def test_jobs_run_finishes_the_jobs_of_a_dead_process(jobs_app):
    app, files, runtime = jobs_app
    with app.app_context():
        files.write("stale.txt", b"to delete")
    job_id = runtime.journal.add("delete", {"storage": "files", "filenames": ["stale.txt"]})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    runtime.journal.claim(job_id, f"{socket.gethostname()}:{dead.stdout.strip()}")
    result = app.test_cli_runner().invoke(flask_cli, ["fs", "jobs", "run"])
    assert (result.exit_code, result.output) == (0, "1 job(s) run\n")
    with app.app_context():
        assert not files.exists("stale.txt")
    assert runtime.pending() == []


def test_migrate_command_reports_each_failed_file_and_exits_1(tmp_path):
    app = make_app(tmp_path)
    source, target = fs.Storage("source", fs.ALL), fs.Storage("target", fs.ALL)
    fs.init_app(app, source, target)
    jobs.init_app(app)
    with app.app_context():
        source.write("a.txt", b"a")
        source.write("b/c.txt", b"c")
        target_root = jobs.unlayered(target.backend).root
    os.makedirs(os.path.dirname(target_root), exist_ok=True)
    with open(target_root, "w") as f:
        f.write("a file where the target folder should be")
    result = app.test_cli_runner().invoke(flask_cli, ["fs", "migrate", "source", "target"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()  # the progress bar goes to stderr
    assert lines[0].startswith("0 copied, 0 already done, 2 failed, 0 deleted from the source;")
    assert lines[1:] == [
        "FAILED a.txt: FileExists: cannot save 'a.txt': one of its folders is a file",
        "FAILED b/c.txt: FileExists: cannot save 'b/c.txt': one of its folders is a file",
    ]
    os.remove(target_root)
    result = app.test_cli_runner().invoke(flask_cli, ["fs", "migrate", "source", "target", "--verify"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2 copied, 0 already done, 0 failed")
    result = app.test_cli_runner().invoke(flask_cli, ["fs", "migrate", "source", "target"])
    assert result.stdout.startswith("0 copied, 2 already done, 0 failed")


def test_a_storage_configured_again_keeps_its_cache_and_mirror(tmp_path):
    app = make_app(tmp_path, FS_JOBS_MIRROR={"new": "old"})
    new, old = fs.Storage("new", fs.ALL), fs.Storage("old", fs.ALL)
    fs.init_app(app, new, old)
    jobs.init_app(app)
    with app.app_context():
        name = new.save(io.BytesIO(b"pending"), "p.txt", background=True)
        new.configure(app)  # as static publishing does for its storage
        old.configure(app)
        assert new.read(name) == b"pending"
        assert jobs.jobs_of(app).wait(10)
        assert old.read(name) == b"pending"  # promoted through the mirror, to both
        new.write("later.txt", b"mirrored")
        assert old.read("later.txt") == b"mirrored"


def test_flask_fs_offers_the_jobs_and_migrate_commands(jobs_app):
    app, _, _ = jobs_app
    output = app.test_cli_runner().invoke(flask_cli, ["fs", "--help"]).output
    assert "jobs" in output and "migrate" in output
    output = app.test_cli_runner().invoke(flask_cli, ["fs", "jobs", "--help"]).output
    assert all(command in output for command in ("list", "retry", "run", "worker"))
    result = app.test_cli_runner().invoke(flask_cli, ["fs", "jobs", "worker"])
    assert result.exit_code == 1 and "flask fs jobs worker needs FS_JOBS_BACKEND = 'rq'" in result.output


def test_clean_also_removes_what_interrupted_writes_left_in_the_cache(jobs_app):
    app, files, runtime = jobs_app
    cache_root = files.bind(app).backend.cache.root
    os.makedirs(cache_root, exist_ok=True)
    leftover = os.path.join(cache_root, ".~fs-interrupted")
    with open(leftover, "wb") as f:
        f.write(b"half an upload")
    os.utime(leftover, (0, 0))
    result = app.test_cli_runner().invoke(flask_cli, ["fs", "clean"])
    assert "files (local): 1 removed" in result.output, result.output
    assert not os.path.exists(leftover)


def test_a_save_during_the_promotion_of_the_same_name_wins(tmp_path):
    """The promotion uploads the older bytes; a synchronous save lands meanwhile: the newer stays."""
    from flask_fs.backends.layered import PromotedBackend
    from flask_fs.backends.local import LocalBackend

    class SlowTarget(LocalBackend):
        during_upload = None

        def save(self, file_or_wfs, filename, overwrite=False, *, headers=None):
            data = file_or_wfs.read()
            if self.during_upload is not None:
                action, self.during_upload = self.during_upload, None
                action()
            super().save(io.BytesIO(data), filename, overwrite=overwrite)

    target = SlowTarget("files", {"root": str(tmp_path / "target")})
    cache = LocalBackend("files", {"root": str(tmp_path / "cache")})
    held = set()
    backend = PromotedBackend(target, cache, held.__contains__, lambda name, headers: held.add(name))
    backend.save_later(io.BytesIO(b"old"), "doc.txt")
    target.during_upload = lambda: backend.save(io.BytesIO(b"new"), "doc.txt", overwrite=True)
    backend.promote("doc.txt")
    held.discard("doc.txt")
    assert target.read("doc.txt") == b"new"
    assert list(cache.list_files()) == []


def test_image_fields_render_thumbnails_later(tmp_path, monkeypatch, use_mongomock):
    """An ImageField(render_later=True) stores the upload at once; best_url() gives the original
    until the job has rendered the thumbnail, then the thumbnail; never a broken link."""
    import mongoengine
    import mongomock
    from PIL import Image

    from flask_fs.fields import core
    from flask_fs.mongo import ImageField

    images = fs.Storage("images", fs.IMAGES)

    class Later(mongoengine.Document):
        meta = {"collection": f"later_{uuid.uuid4().hex}"}
        image = ImageField(fs=images, thumbnails=[64], render_later=True)

    client = mongomock.MongoClient
    options = {"host": "mongodb://localhost", "mongo_client_class": client, "uuidRepresentation": "standard"}
    mongoengine.connect("flask-fs-later", **options)
    monkeypatch.setattr(core, "_RENDERED", set())
    app = make_app(tmp_path, FS_JOBS_BACKOFF=0.01)
    fs.init_app(app, images)
    runtime = jobs.init_app(app)
    gate = threading.Event()

    def hold(sender, **kwargs):
        gate.wait(10)

    jobs.job_started.connect(hold)
    try:
        upload = io.BytesIO()
        Image.new("RGB", (300, 200), "green").save(upload, "PNG")
        with app.app_context():
            doc = Later()
            doc.image.save(io.BytesIO(upload.getvalue()), "shot.png")
            doc.save()
            assert doc.image.thumbnails == {"64": "shot-64.png"}
            assert doc.image.best_url(64) == images.url("shot.png")  # not rendered yet: the original
            client = app.test_client()
            assert client.get(doc.image.best_url(64)).status_code == 200
            gate.set()
            assert runtime.wait(10)
            again = Later.objects.get(id=doc.id)
            assert again.image.best_url(64) == images.url("shot-64.png")
            assert Image.open(io.BytesIO(client.get(again.image.best_url(64)).data)).size == (64, 64)
            with pytest.raises(fs.InvalidImage):  # the header is still checked at once
                Later().image.save(io.BytesIO(b"not an image"), "bad.png")
    finally:
        gate.set()
        jobs.job_started.disconnect(hold)
        runtime.close()
        mongoengine.disconnect()


def test_render_later_without_jobs_says_what_to_set_up(tmp_path, use_mongomock):
    from flask_fs.mongo import ImageField

    images = fs.Storage("images", fs.IMAGES)
    field_value = ImageField(fs=images, thumbnails=[64], render_later=True).proxy()
    app = make_app(tmp_path)
    fs.init_app(app, images)
    upload = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (80, 80)).save(upload, "PNG")
    with app.app_context(), pytest.raises(fs.ConfigurationError, match="flask_fs.jobs.init_app"):
        field_value.save(io.BytesIO(upload.getvalue()), "a.png")
    with app.app_context():
        assert list(images.list_files()) == []


def test_a_field_delete_that_fails_is_retried_by_a_job(jobs_app, use_mongomock, monkeypatch):
    import mongoengine
    import mongomock

    from flask_fs.mongo import FileField

    app, files, runtime = jobs_app

    class Note(mongoengine.Document):
        meta = {"collection": f"notes_{uuid.uuid4().hex}"}
        attachment = FileField(fs=files)

    client = mongomock.MongoClient
    options = {"host": "mongodb://localhost", "mongo_client_class": client, "uuidRepresentation": "standard"}
    mongoengine.connect("flask-fs-notes", **options)
    try:
        with app.app_context():
            note = Note()
            note.attachment.save(io.BytesIO(b"minutes"), "minutes.txt")
            backend = files.bind(app).backend
            real_delete, failures = backend.delete, []

            def flaky_delete(name):
                if not failures:
                    failures.append(name)
                    raise fs.BackendError("the server went away")
                real_delete(name)

            monkeypatch.setattr(backend, "delete", flaky_delete)
            note.attachment.delete()  # fails once: logged and handed to a job
            assert failures == ["minutes.txt"]
            assert runtime.wait(10)
            assert not files.exists("minutes.txt")
    finally:
        mongoengine.disconnect()
