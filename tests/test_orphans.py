"""``flask fs orphans``: files no SQLAlchemy row (Flask-SQLAlchemy, SQLite file) nor mongoengine document
(mongomock) references, on a local storage whose file times are set on disk."""

from __future__ import annotations

import io
import os
import time

import mongoengine
import mongomock
import pytest
from flask.cli import cli as flask_cli
from flask_sqlalchemy import SQLAlchemy
from mongoengine import Document, EmbeddedDocument, EmbeddedDocumentField, ListField
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from flask_fs import mongo, sqla
from tests.backends.conftest import unique
from tests.conftest import make_app

ALIAS = "flask-fs-orphans"
docs = fs.Storage("docs", fs.ALL)
loose = fs.Storage("loose", fs.ALL)  # no model uses it
db = SQLAlchemy()


class Report(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    file = mapped_column(sqla.FileField(docs), nullable=True)


class Page(EmbeddedDocument):
    scan = mongo.FileField(fs=docs)


class Book(Document):
    meta = {"db_alias": ALIAS, "collection": "books"}
    cover = mongo.FileField(fs=docs)
    pages = ListField(EmbeddedDocumentField(Page))


@pytest.fixture
def app(tmp_path):
    client = {"mongo_client_class": mongomock.MongoClient, "uuidRepresentation": "standard"}
    mongoengine.connect(unique("orphans"), host="mongodb://localhost", alias=ALIAS, **client)
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}")
    db.init_app(app)
    fs.init_app(app, docs, loose)
    with app.app_context():
        db.create_all()
        yield app
    mongoengine.disconnect(ALIAS)


def age(storage: fs.Storage, name: str, days: float) -> None:
    """Make a stored file look ``days`` old."""
    then = time.time() - days * 86400
    os.utime(storage.path(name), (then, then))


@pytest.fixture
def stored(app):
    """Referenced by a row, a document, an embedded document; two old orphans; one recent orphan."""
    report = Report()
    report.file = FileStorage(io.BytesIO(b"r"), filename="report.txt")
    db.session.add(report)
    db.session.commit()
    book = Book()
    book.cover.save(io.BytesIO(b"c"), "cover.txt")
    book.pages = [Page()]
    book.pages[0].scan.save(io.BytesIO(b"s"), "scan.txt")
    book.save()
    for name in ("old.txt", "gone/older.txt", "fresh.txt"):
        docs.write(name, b"orphan")
    for name in ("report.txt", "cover.txt", "scan.txt", "old.txt", "gone/older.txt"):
        age(docs, name, 3)
    return app


def run(app, *args):
    return app.test_cli_runner().invoke(flask_cli, ["fs", "orphans", *args])


def test_lists_only_old_unreferenced_files(stored):
    result = run(stored, "docs")
    assert result.exit_code == 0, result.output
    listed = [line.split()[-1] for line in result.output.splitlines()[:-1]]
    assert sorted(listed) == ["gone/older.txt", "old.txt"]
    assert result.output.splitlines()[-1].startswith("2 orphan(s), 12 bytes")
    assert sorted(docs.list_files()) == [
        "cover.txt",
        "fresh.txt",
        "gone/older.txt",
        "old.txt",
        "report.txt",
        "scan.txt",
    ]


def test_delete_removes_them_and_keeps_the_rest(stored):
    result = run(stored, "docs", "--delete")
    assert result.exit_code == 0, result.output
    assert "deleted 2 orphan(s)" in result.output
    assert sorted(docs.list_files()) == ["cover.txt", "fresh.txt", "report.txt", "scan.txt"]
    # a shorter grace period reaches the recent one
    age(docs, "fresh.txt", 0.5)
    assert run(stored, "docs", "--grace", "1h", "--delete").exit_code == 0
    assert sorted(docs.list_files()) == ["cover.txt", "report.txt", "scan.txt"]


def test_a_file_left_by_a_failed_delete_is_found(stored):
    """The row is gone but its file stayed (a delete that failed after the commit): an orphan."""
    report = db.session.get(Report, 1)
    name = report.file.filename
    db.session.execute(db.delete(Report.__table__))  # Core: not tracked
    db.session.commit()
    assert name in run(stored, "docs").output


def test_refuses_a_storage_no_model_uses(app):
    loose.write("kept-by-hand.txt", b"x")
    age(loose, "kept-by-hand.txt", 30)
    result = run(app, "loose", "--delete")
    assert result.exit_code == 1
    assert "no model or document has a file field on storage 'loose'" in result.output
    assert loose.exists("kept-by-hand.txt")


def test_bad_grace_and_unknown_storage(app):
    assert "not a duration" in run(app, "docs", "--grace", "soon").output
    result = run(app, "nope")
    assert result.exit_code == 1 and "no storage named 'nope'" in result.output


def test_refuses_without_a_way_to_read_the_rows(stored):
    stored.extensions["fs_sqlalchemy_session"] = lambda: None
    result = run(stored, "docs", "--delete")
    assert result.exit_code == 1 and "cannot read them" in result.output
    assert docs.exists("old.txt")
