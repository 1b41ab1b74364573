"""Storages bound explicitly: for an app, or from plain settings, with no app context at all."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import threading

import pytest

import flask_fs as fs
from flask_fs.bound import BoundStorage
from tests.conftest import make_app


def test_bind_gives_the_apps_binding_outside_any_context(tmp_path):
    files = fs.Storage("files", fs.ALL)
    app = make_app(tmp_path)
    fs.init_app(app, files)
    bound = files.bind(app)
    assert isinstance(bound, BoundStorage)
    assert bound.save(io.BytesIO(b"from a worker"), "job.txt") == "job.txt"
    with app.app_context():
        assert files.read("job.txt") == b"from a worker"
        assert files.url("job.txt") == bound.url("job.txt") == "/files/job.txt"
    assert bound.url("job.txt", external=True) == "http://localhost/files/job.txt"  # SERVER_NAME is set


def test_an_unbound_storage_says_how_to_bind_it(tmp_path):
    files = fs.Storage("files", fs.ALL)
    with pytest.raises(fs.FSError, match=r"storage\.bind\(app\)"):
        files.exists("a.txt")
    app = make_app(tmp_path)
    with pytest.raises(fs.FSError, match="not registered on app"):
        files.bind(app)


def test_threads_use_a_binding_without_pushing_contexts(tmp_path):
    files = fs.Storage("files", fs.ALL)
    app = make_app(tmp_path)
    fs.init_app(app, files)
    bound = files.bind(app)
    errors = []

    def work(number: int) -> None:
        try:
            bound.write(f"t/{number}.txt", str(number))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(bound.list_files()) == sorted(f"t/{n}.txt" for n in range(8))


def test_from_settings_needs_no_app(tmp_path):
    images = fs.Storage("images", fs.IMAGES)
    bound = images.from_settings({"FS_ROOT": str(tmp_path), "IMAGES_FS_URL": "https://cdn.example.com/img"})
    bound.write("a.txt", b"x")
    assert (tmp_path / "images" / "a.txt").read_bytes() == b"x"
    assert bound.url("a b.png") == "https://cdn.example.com/img/a%20b.png"
    with pytest.raises(fs.UnauthorizedFileType):
        bound.save(io.BytesIO(b"#!/bin/sh"), "run.sh")


def test_from_settings_without_url_explains(tmp_path):
    bound = fs.Storage("files").from_settings({"FS_ROOT": str(tmp_path)})
    with pytest.raises(fs.ConfigurationError, match="FILES_FS_URL"):
        bound.url("a.txt")
    bound.write("a.txt", b"x")
    assert bound.metadata("a.txt")["url"] is None


def test_from_settings_on_s3(moto_endpoint):
    files = fs.Storage("files", fs.ALL)
    bound = files.from_settings(
        {
            "FS_BACKEND": "s3",
            "FS_S3_ENDPOINT": moto_endpoint,
            "FS_S3_ACCESS_KEY": "testing",
            "FS_S3_SECRET_KEY": "testing",
            "FS_S3_REGION": "us-east-1",
            "FS_S3_CREATE_BUCKET": True,
            "FILES_FS_BUCKET": "flask-fs-bound-test",
        }
    )
    bound.write("doc.txt", b"on s3")
    assert bound.read("doc.txt") == b"on s3"
    assert bound.signed_url("doc.txt").startswith(moto_endpoint)
    bound.close()


def test_hooks_overridden_on_the_declaration_run_with_the_binding(tmp_path):
    class NoSecrets(fs.Storage):
        def file_allowed(self, storage, basename):
            return "secret" not in basename and super().file_allowed(storage, basename)

    files = NoSecrets("files", fs.ALL)
    bound = files.from_settings({"FS_ROOT": str(tmp_path)})
    assert bound.save(io.BytesIO(b"x"), "public.txt") == "public.txt"
    with pytest.raises(fs.UnauthorizedFileType):
        bound.save(io.BytesIO(b"x"), "secret.txt")


def test_reconfiguring_an_app_closes_the_previous_backend(tmp_path, monkeypatch):
    files = fs.Storage("files", fs.ALL)
    app = make_app(tmp_path)
    fs.init_app(app, files)
    first = files.bind(app)
    closed = []
    monkeypatch.setattr(first.backend, "close", lambda: closed.append(True), raising=False)
    fs.init_app(app, files)
    assert closed == [True]
    assert files.bind(app) is not first


def test_a_script_uses_a_storage_without_flask_context(tmp_path):
    script = textwrap.dedent(
        f"""
        import flask_fs as fs
        reports = fs.Storage("reports", ["csv"])
        bound = reports.from_settings({{"FS_ROOT": {str(tmp_path)!r}}})
        bound.write("daily.csv", "a,b\\n1,2\\n")
        print(bound.read("daily.csv").decode(), end="")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == "a,b\n1,2\n"
    assert (tmp_path / "reports" / "daily.csv").exists()
