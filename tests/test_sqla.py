"""flask_fs.sqla: file and image columns and their transactional lifecycle, on a SQLite file and on a
PostgreSQL server of their own (tests.servers.start_postgres), with the files on the local backend.

Every assertion looks at what a user sees: the rows as the database holds them, the files in the
storage, the images decoded back from it.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from sqlalchemy import ForeignKey, String, create_engine, delete, inspect, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from werkzeug.datastructures import FileStorage

import flask_fs as fs
from flask_fs.sqla import FileField, FileReference, ImageField, ImageReference
from tests.backends.conftest import unique
from tests.conftest import make_app
from tests.test_mongo import RED, YELLOW, assert_quadrants, encode, quadrants, stored_image, upload

files = fs.Storage("files", fs.ALL)
images = fs.Storage("images", fs.IMAGES)


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "post"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), default="post")
    attachment = mapped_column(FileField(files, upload_to=lambda post: f"posts/{post.slug or 'post'}"), nullable=True)
    image = mapped_column(ImageField(images, max_size=150, thumbnails=[100, 32]), nullable=True)
    comments: Mapped[list[Comment]] = relationship(back_populates="post", cascade="all, delete-orphan")


class Comment(Base):
    __tablename__ = "comment"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id"))
    post: Mapped[Post] = relationship(back_populates="comments")
    file = mapped_column(FileField(files, upload_to="comments"), nullable=True)


class Legacy(Base):
    """A table written by Flask-Store's FlaskStoreType: a string column holding a relative path."""

    __tablename__ = "legacy"
    id: Mapped[int] = mapped_column(primary_key=True)
    document = mapped_column(FileField(files, column_type=String(255)), nullable=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """A database of the test's own: a SQLite file, or a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'test.db'}")
        yield from _with_tables(engine)
        return
    server = create_engine(request.getfixturevalue("postgres_url"), isolation_level="AUTOCOMMIT")
    name = unique("flaskfs").replace("-", "_")
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield from _with_tables(create_engine(server.url.set(database=name)))
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    server.dispose()


def _with_tables(engine):
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def app(tmp_path, engine):
    app = make_app(tmp_path, IMAGES_FS_IMAGES_MAX_PIXELS=300 * 300)
    fs.init_app(app, files, images)
    with app.app_context():
        yield app


@pytest.fixture
def session(app, engine):
    with Session(engine) as session:
        yield session


def text_upload(data: bytes, name: str) -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=name)


def png(name: str, width: int = 300, height: int = 200) -> FileStorage:
    return upload(encode(quadrants(width, height)), name)


def raw(engine, table: str, column: str, row_id: int):
    """The column as the database holds it (JSON decoded)."""
    with engine.connect() as connection:
        value = connection.execute(text(f"SELECT {column} FROM {table} WHERE id = :id"), {"id": row_id}).scalar()
    return json.loads(value) if isinstance(value, str) and value.startswith("{") else value


def reload(engine, model, row_id):
    """The row as a new session loads it (the session is closed, the loaded columns stay readable)."""
    with Session(engine, expire_on_commit=False) as other:
        return other.get(model, row_id)


def all_files() -> list[str]:
    return sorted([*(f"files:{n}" for n in files.list_files()), *(f"images:{n}" for n in images.list_files())])


# -- values, API and stored layout -------------------------------------------------------------------------


def test_empty_columns_are_empty_references_and_null(session, engine):
    post = Post()
    assert isinstance(post.attachment, FileReference) and isinstance(post.image, ImageReference)
    assert not post.attachment and post.attachment.url is None and str(post.image) == ""
    assert post.image.best_url() is None
    session.add(post)
    session.commit()
    assert raw(engine, "post", "attachment", post.id) is None
    assert raw(engine, "post", "image", post.id) is None
    loaded = reload(engine, Post, post.id)
    assert isinstance(loaded.image, ImageReference) and not loaded.image


def test_upload_is_stored_at_flush_with_the_mongo_layout(session, engine):
    post = Post(slug="hello")
    post.attachment = text_upload(b"report", "Report Final.txt")
    post.image = png("photo.png")
    session.add(post)
    assert all_files() == []  # nothing is stored before the flush
    assert not post.image
    session.commit()

    assert files.read("posts/hello/Report_Final.txt") == b"report"
    assert raw(engine, "post", "attachment", post.id) == {"filename": "posts/hello/Report_Final.txt"}
    assert raw(engine, "post", "image", post.id) == {
        "filename": "photo.png",
        "original": "photo-original.png",
        "thumbnails": {"100": "photo-100.png", "32": "photo-32.png"},
    }
    loaded = reload(engine, Post, post.id)
    assert loaded.attachment.url == files.url("posts/hello/Report_Final.txt")
    assert loaded.image.url == images.url("photo.png")
    assert loaded.image.best_url(64) == loaded.image(64) == images.url("photo-100.png")
    assert loaded.image(30) == images.url("photo-32.png")
    assert loaded.image.thumbnail(100) == "photo-100.png"
    assert stored_image(images, "photo.png").size == (150, 100)
    assert_quadrants(stored_image(images, "photo-32.png"), RED, (0, 255, 0), (0, 0, 255), YELLOW)
    with pytest.raises(ValueError):
        loaded.image.thumbnail(200)


def test_json_columns_are_jsonb_on_postgresql(engine):
    types = {column["name"]: column["type"] for column in inspect(engine).get_columns("post")}
    expected = "JSONB" if engine.dialect.name == "postgresql" else "JSON"
    assert type(types["image"]).__name__ == type(types["attachment"]).__name__ == expected


def test_a_reference_saved_before_the_row_joins_a_session(session):
    """Files stored while the row was in no session follow the transaction it is flushed in."""
    post = Post()
    post.attachment.save(io.BytesIO(b"early"), "early.txt")
    assert files.exists("posts/post/early.txt")
    session.add(post)
    session.flush()
    session.rollback()
    assert all_files() == []


def test_a_binary_file_object_with_a_name(session, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"from disk")
    post = Post(slug="disk")
    with open(path, "rb") as handle:
        post.attachment = handle
        session.add(post)
        session.commit()
    assert post.attachment.filename == "posts/disk/notes.txt"
    assert files.read("posts/disk/notes.txt") == b"from disk"


def test_reference_save_bbox_delete_and_rerender_mark_the_row(session, engine):
    post = Post()
    session.add(post)
    session.commit()

    post.image.save(png("box.png"), bbox=(0, 0, 100, 100))  # stored at once, the row is dirty
    assert post in session.dirty
    session.commit()
    assert raw(engine, "post", "image", post.id)["bbox"] == [0, 0, 100, 100]
    assert_quadrants(stored_image(images, "box-100.png"), RED, RED, RED, RED)

    with Session(engine) as other:
        loaded = other.get(Post, post.id)
        images.delete("box-32.png")  # a lost thumbnail comes back
        loaded.image.rerender()
        other.commit()
        assert_quadrants(stored_image(images, "box-32.png"), RED, RED, RED, RED)

        loaded.image.delete()
        assert images.exists("box.png")  # released, deleted at commit
        other.commit()
    assert raw(engine, "post", "image", post.id) is None
    assert all_files() == []


def test_assigning_stored_values_and_other_references(session, engine):
    files.write("shared/a.txt", b"a")
    first = Post(attachment="shared/a.txt")
    assert first.attachment.filename == "shared/a.txt"
    second = Post(attachment={"filename": "shared/a.txt"})
    third = Post()
    third.attachment = first.attachment
    assert third.attachment is not first.attachment and third.attachment == first.attachment
    session.add_all([first, second, third])
    session.commit()
    assert raw(engine, "post", "attachment", third.id) == {"filename": "shared/a.txt"}
    with pytest.raises(TypeError, match="attachment"):
        first.attachment = 42


# -- the lifecycle -----------------------------------------------------------------------------------------


def test_rollback_deletes_what_the_flush_stored(session):
    post = Post(image=png("gone.png"), attachment=text_upload(b"x", "gone.txt"))
    session.add(post)
    session.flush()
    assert len(all_files()) == 5
    session.rollback()
    assert all_files() == []
    # the session is usable again
    session.add(Post(image=png("kept.png")))
    session.commit()
    assert all_files() == ["images:kept-100.png", "images:kept-32.png", "images:kept-original.png", "images:kept.png"]


def test_closing_without_commit_deletes_what_was_stored(engine, app):
    with Session(engine) as session:
        session.add(Post(attachment=text_upload(b"x", "uncommitted.txt")))
        session.flush()
        assert files.exists("posts/post/uncommitted.txt")
    assert all_files() == []


def test_savepoint_rollback_deletes_only_its_files(session, engine):
    session.add(Post(attachment=text_upload(b"outer", "outer.txt")))
    session.flush()
    savepoint = session.begin_nested()
    session.add(Post(attachment=text_upload(b"inner", "inner.txt")))
    session.flush()
    savepoint.rollback()
    assert all_files() == ["files:posts/post/outer.txt"]

    with session.begin_nested():  # a released savepoint hands its files to the transaction
        session.add(Post(attachment=text_upload(b"kept", "kept.txt")))
    session.commit()
    assert all_files() == ["files:posts/post/kept.txt", "files:posts/post/outer.txt"]
    with Session(engine) as check:
        assert sorted(p.attachment.filename for p in check.scalars(select(Post))) == [
            "posts/post/kept.txt",
            "posts/post/outer.txt",
        ]


def test_replaced_files_are_deleted_after_commit_only(session, engine):
    post = Post(image=png("first.png"))
    session.add(post)
    session.commit()

    post.image = png("second.png")
    session.flush()
    assert images.exists("first.png") and images.exists("second.png")
    session.rollback()  # the row still names first.png: its files stay, second.png goes
    assert sorted(images.list_files()) == ["first-100.png", "first-32.png", "first-original.png", "first.png"]
    assert post.image.filename == "first.png"

    post.image = png("second.png")
    session.commit()
    assert sorted(images.list_files()) == ["second-100.png", "second-32.png", "second-original.png", "second.png"]
    assert raw(engine, "post", "image", post.id)["filename"] == "second.png"


def test_the_same_name_again_gets_a_free_name_until_the_commit(session, engine):
    post = Post(attachment=text_upload(b"one", "same.txt"))
    session.add(post)
    session.commit()
    post.attachment = text_upload(b"two", "same.txt")
    session.commit()
    assert post.attachment.filename == "posts/post/same_1.txt"
    assert all_files() == ["files:posts/post/same_1.txt"]
    assert files.read("posts/post/same_1.txt") == b"two"

    post.image = png("pic.png")
    session.commit()
    post.image.save(png("pic.png", 200, 300))  # every rendition name moves together
    session.rollback()
    assert raw(engine, "post", "image", post.id)["filename"] == "pic.png"
    assert stored_image(images, "pic.png").size == (150, 100)  # the committed file is untouched
    assert sorted(images.list_files()) == ["pic-100.png", "pic-32.png", "pic-original.png", "pic.png"]


def test_set_to_none_deletes_after_commit(session, engine):
    post = Post(attachment=text_upload(b"x", "none.txt"))
    session.add(post)
    session.commit()
    post.attachment = None
    session.flush()
    assert files.exists("posts/post/none.txt")
    session.rollback()
    assert files.exists("posts/post/none.txt")
    post.attachment = None
    session.commit()
    assert all_files() == []
    assert raw(engine, "post", "attachment", post.id) is None


def test_deleted_rows_release_their_files_after_commit(session):
    post = Post(image=png("row.png"), attachment=text_upload(b"x", "row.txt"))
    post.comments.append(Comment(file=text_upload(b"c", "comment.txt")))
    session.add(post)
    session.commit()
    session.expire_all()  # deleting must load what the row references

    session.delete(post)
    session.flush()
    assert len(all_files()) == 6
    session.rollback()
    assert len(all_files()) == 6

    session.delete(session.get(Post, post.id))  # the comment goes by cascade
    session.commit()
    assert all_files() == []


def test_orphaned_children_release_their_files(session):
    post = Post(comments=[Comment(file=text_upload(b"a", "a.txt")), Comment(file=text_upload(b"b", "b.txt"))])
    session.add(post)
    session.commit()
    post.comments.pop(0)  # delete-orphan
    session.commit()
    assert all_files() == ["files:comments/b.txt"]


def test_bulk_delete_releases_the_files_of_the_deleted_rows(session):
    session.add_all(
        [Post(slug="a", attachment=text_upload(b"a", "a.txt")), Post(slug="b", attachment=text_upload(b"b", "b.txt"))]
    )
    session.commit()
    session.execute(delete(Post).where(Post.slug == "a"))
    assert len(all_files()) == 2
    session.commit()
    assert all_files() == ["files:posts/b/b.txt"]
    session.execute(delete(Post))
    session.rollback()
    assert all_files() == ["files:posts/b/b.txt"]


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: text_upload(b"MZ", "tool.exe"), fs.UnauthorizedFileType),
        (lambda: upload(b"not an image", "fake.png"), fs.InvalidImage),
        (lambda: upload(encode(quadrants(300, 200))[:-300], "cut.png"), fs.InvalidImage),
        (lambda: png("bomb.png", 400, 400), fs.ImageTooLarge),
    ],
)
def test_refused_uploads_store_nothing_and_the_session_recovers(session, make, error):
    post = Post(attachment=text_upload(b"fine", "fine.txt"))
    session.add(post)
    with pytest.raises(error):
        post.image = make()  # the extension is checked here, the image at flush
        session.flush()
    session.rollback()
    assert all_files() == []
    session.add(Post(attachment=text_upload(b"again", "again.txt")))
    session.commit()
    assert all_files() == ["files:posts/post/again.txt"]


def test_byte_limit_refuses_at_flush(app, session):
    app.config["IMAGES_FS_MAX_SIZE"] = 1000
    images.configure(app)
    session.add(Post(image=upload(encode(quadrants(300, 200)) + b"\0" * 1000, "big.png")))
    with pytest.raises(fs.FileTooLarge):
        session.flush()
    session.rollback()
    assert all_files() == []


def test_a_failed_delete_after_commit_is_logged_and_the_commit_stands(session, engine, monkeypatch, caplog):
    post = Post(attachment=text_upload(b"x", "stuck.txt"))
    session.add(post)
    session.commit()

    def broken(name):
        raise fs.BackendError("storage went away")

    monkeypatch.setattr(files.backend, "delete", broken)
    session.delete(post)
    with caplog.at_level(logging.WARNING, logger="flask_fs.fields"):
        session.commit()
    assert "stuck.txt" in caplog.text
    with Session(engine) as check:
        assert check.get(Post, post.id) is None
    assert files.exists("posts/post/stuck.txt")  # left for `flask fs orphans`


def test_flask_store_string_column_reads_as_a_file_field(session, engine):
    files.write("uploads/old.pdf", b"%PDF")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO legacy (id, document) VALUES (1, 'uploads/old.pdf')"))
    legacy = session.get(Legacy, 1)
    assert legacy.document.filename == "uploads/old.pdf"
    assert legacy.document.url == files.url("uploads/old.pdf")
    legacy.document = text_upload(b"new", "new.pdf")
    session.commit()
    assert raw(engine, "legacy", "document", 1) == "new.pdf"
    assert all_files() == ["files:new.pdf"]


def test_a_core_insert_of_an_upload_is_refused(session, engine):
    post = Post()
    post.attachment = text_upload(b"x", "core.txt")
    with pytest.raises(StatementError, match="stored by the ORM flush") as info:
        session.execute(Post.__table__.insert().values(id=99, slug="x", attachment=post.attachment))
    assert isinstance(info.value.orig, fs.FSError)
    assert all_files() == []
