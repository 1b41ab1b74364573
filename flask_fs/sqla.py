"""SQLAlchemy column types that keep files in a :class:`~flask_fs.Storage`, with a transactional lifecycle.

::

    from flask_fs.sqla import FileField, ImageField

    class Post(Base):
        __tablename__ = "post"
        id: Mapped[int] = mapped_column(primary_key=True)
        attachment = mapped_column(FileField(files, upload_to="posts"), nullable=True)
        image = mapped_column(ImageField(images, max_size=800, thumbnails=[200, 64]), nullable=True)

    post.image = request.files["image"]     # stored at flush
    session.add(post); session.commit()
    post.image.best_url(64)

The value of a file column is always a reference (:class:`~flask_fs.fields.FileReference`, or
:class:`~flask_fs.fields.ImageReference`), falsy when empty, with the API and the stored layout of
:mod:`flask_fs.mongo` (``{"filename", "original", "thumbnails", "bbox"}`` in a JSON column, JSONB on
PostgreSQL; SQL NULL when empty). Assign an upload (a Werkzeug ``FileStorage`` or a binary file
object with a ``name``), a stored name, a stored dict, another reference or None.

**Lifecycle**: files are stored at flush (or at once by ``reference.save()``); the files a flush or a
``save()`` stored are deleted when the transaction (or the savepoint) they belong to rolls back. Files
a row stops naming (replaced, set to None, ``reference.delete()``, the row deleted by the session,
by a cascade or by an ORM bulk ``delete()``) are deleted only after the commit. A failed delete is
logged (logger ``flask_fs.fields``); ``flask fs orphans`` finds what is left.
"""

from __future__ import annotations

import logging
import posixpath
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, event, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, object_session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.types import TypeDecorator, TypeEngine

from . import names
from .errors import FSError, UnauthorizedFileType
from .fields.core import FileReference, FileSpec, ImageReference, ImageSpec, Lifecycle, NameRule, _is_filestorage
from .files import extension

__all__ = ["FileField", "FileReference", "ImageField", "ImageReference", "referenced_files"]

log = logging.getLogger("flask_fs.fields")

_BOOK = "flask_fs.files"  # session.info key: {transaction or None: _Pending}
_COMMITTED = "flask_fs.committed"  # session.info key: set between after_commit and after_transaction_end


@dataclass
class _Pending:
    """Files to delete if the transaction rolls back (``created``) or once it commits (``released``)."""

    created: list[tuple[Any, str]] = field(default_factory=list)
    released: list[tuple[Any, str]] = field(default_factory=list)

    def merge(self, other: _Pending) -> None:
        self.created += other.created
        self.released += other.released


#: The file columns of each mapper that has some: ``{mapper: {attribute key: column type}}``.
_mapped: weakref.WeakKeyDictionary[Mapper, dict[str, FileField]] = weakref.WeakKeyDictionary()
#: Files stored or released by references of rows that are in no session yet (moved in at flush).
_unattached: weakref.WeakKeyDictionary[Any, _Pending] = weakref.WeakKeyDictionary()


def _session_pending(session: Session) -> _Pending:
    """The pending files of the session's innermost transaction (a savepoint, else the root)."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    return session.info.setdefault(_BOOK, {}).setdefault(transaction, _Pending())


def _pending(instance: Any) -> _Pending | None:
    if instance is None:
        return None
    session = object_session(instance)
    if session is None:
        return _unattached.setdefault(sa_inspect(instance), _Pending())
    return _session_pending(session)


class SqlaLifecycle(Lifecycle):
    """References in SQLAlchemy rows: changes flag the column, deletes wait for the commit, and a save
    never overwrites a file (the previous one must survive a rollback)."""

    overwrite_own = False

    def changed(self, reference: FileReference) -> None:
        instance, key = reference._instance, reference._name
        if instance is not None and key and sa_inspect(instance).dict.get(key) is reference:
            flag_modified(instance, key)

    def stored(self, reference: FileReference, stored: list[str]) -> None:
        pending = _pending(reference._instance)
        if pending is not None:
            pending.created += [(reference.storage, name) for name in stored]

    def released(self, reference: FileReference, released: list[str]) -> None:
        pending = _pending(reference._instance)
        if pending is not None:
            pending.released += [(reference.storage, name) for name in released]


LIFECYCLE = SqlaLifecycle()


class FileField(FileSpec, TypeDecorator):
    """A column type storing a file in storage ``fs``; its value is a :class:`FileReference`.

    ``upload_to`` (folder) and ``basename`` (new name for uploads, keeping their extension) are strings
    or callables receiving the row. The column is JSON (JSONB on PostgreSQL); ``column_type`` (e.g.
    ``String(255)``) stores only the file name instead, as Flask-Store's ``FlaskStoreType`` did.
    """

    impl = JSON
    cache_ok = True

    def __init__(
        self,
        fs: Any = None,
        upload_to: NameRule = None,
        basename: NameRule = None,
        column_type: TypeEngine | None = None,
    ) -> None:
        self._configure(fs, upload_to, basename)
        super().__init__()
        self.column_type = column_type
        self.impl = column_type if column_type is not None else JSON(none_as_null=True)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        if self.column_type is None and dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, FileReference):
            if getattr(value, "_upload", None) is not None:
                raise FSError("an upload assigned to a file column is stored by the ORM flush, not by a Core statement")
            data = value.to_dict() if value else None
        else:
            data = self.stored_data(value) or None
        if data is None or self.column_type is None:
            return data
        return data["filename"]

    def process_result_value(self, value: Any, dialect: Dialect) -> FileReference:
        return self.make_reference(None, None, LIFECYCLE, **self.stored_data(value))

    def coerce(self, target: Any, key: str, value: Any) -> FileReference:
        """The reference a row holds after ``row.<key> = value`` (an upload is kept until the flush)."""
        if isinstance(value, FileReference) and value._instance is target and value._name == key:
            return value
        upload = getattr(value, "_upload", None) if isinstance(value, FileReference) else None
        if value is not None and not isinstance(value, (FileReference, str, dict)):
            if not (_is_filestorage(value) or callable(getattr(value, "read", None))):
                raise TypeError(
                    f"{key}: assign an upload, a file object, a stored name, a reference or None,"
                    f" not {type(value).__name__}"
                )
            upload, value = value, None
        reference = self.make_reference(target, key, LIFECYCLE, **self.stored_data(value))
        if upload is not None:
            self._check_upload(upload)
            reference._upload = upload  # type: ignore[attr-defined]
        return reference

    def _check_upload(self, upload: Any) -> None:
        """Refuse an upload whose extension the storage does not accept, at assignment."""
        client = getattr(upload, "filename" if _is_filestorage(upload) else "name", None)
        name = names.secure_upload_name(posixpath.basename(str(client or "")))
        if not self.fs.file_allowed(upload, name):
            raise UnauthorizedFileType(
                f"files of type {extension(name) or '(none)'!r} are not allowed in {self.fs.name!r}"
            )


class ImageField(ImageSpec, FileField):
    """A column type storing an image in storage ``fs``; its value is an :class:`ImageReference`.

    The upload is kept untouched; ``max_size`` (px) bounds the displayed image, ``thumbnails`` lists
    square thumbnail sizes (px), ``optimize`` overrides ``FS_IMAGES_OPTIMIZE``, ``max_pixels`` the
    ``FS_IMAGES_MAX_PIXELS`` limit.
    """

    cache_ok = True

    def __init__(
        self,
        fs: Any = None,
        max_size: int | None = None,
        thumbnails: Iterable[int] | None = None,
        optimize: bool | None = None,
        max_pixels: int | None = None,
        upload_to: NameRule = None,
        basename: NameRule = None,
        render_later: bool = False,
    ) -> None:
        self._configure_images(max_size, thumbnails, optimize, max_pixels, render_later)
        self.thumbnails = tuple(self.thumbnail_sizes)  # hashable: part of SQLAlchemy's statement cache key
        FileField.__init__(self, fs, upload_to, basename)


# -- wiring: every mapped class with file columns ---------------------------------------------------


def _file_columns(mapper: Mapper) -> dict[str, FileField]:
    """``{attribute key: column type}`` of the mapper's file columns."""
    return {
        mapper.get_property_by_column(column).key: column.type
        for column in mapper.columns
        if isinstance(getattr(column, "type", None), FileField)
    }


def _references(instance: Any, keys: Iterable[str]) -> Iterable[tuple[str, FileReference]]:
    """The loaded references of ``instance`` (attributes not loaded are skipped)."""
    loaded = sa_inspect(instance).dict
    for key in keys:
        value = loaded.get(key)
        if isinstance(value, FileReference):
            yield key, value


@event.listens_for(Mapper, "after_mapper_constructed")
def _instrument(mapper: Mapper, cls: type) -> None:
    columns = _file_columns(mapper)
    if not columns:
        return
    _mapped[mapper] = columns
    for key, column_type in columns.items():
        event.listen(getattr(cls, key), "set", _on_set(column_type, key), retval=True, active_history=True)

    @event.listens_for(cls, "init")
    def init(target: Any, args: Any, kwargs: Any) -> None:
        for key, column_type in columns.items():
            if key not in kwargs:
                setattr(target, key, column_type.make_reference(target, key, LIFECYCLE))

    @event.listens_for(cls, "load")
    def load(target: Any, context: Any) -> None:
        _bind(target, columns)

    @event.listens_for(cls, "refresh")
    def refresh(target: Any, context: Any, attrs: Any) -> None:
        _bind(target, columns)

    @event.listens_for(mapper, "after_delete")
    def deleted(mapper: Mapper, connection: Any, target: Any) -> None:
        for _, reference in _references(target, columns):
            LIFECYCLE.released(reference, reference.files)


def _bind(target: Any, columns: dict[str, FileField]) -> None:
    for key, reference in _references(target, columns):
        reference._instance, reference._name, reference._lifecycle = target, key, LIFECYCLE


def _on_set(column_type: FileField, key: str) -> Callable[..., FileReference]:
    def set_value(target: Any, value: Any, oldvalue: Any, initiator: Any) -> FileReference:
        reference = column_type.coerce(target, key, value)
        if isinstance(oldvalue, FileReference) and oldvalue is not reference:
            kept = set(reference.files)
            released = [name for name in oldvalue.files if name not in kept]
            if released:
                LIFECYCLE.released(oldvalue, released)
            oldvalue._instance = None  # the replaced reference no longer speaks for the row
        return reference

    return set_value


@event.listens_for(Session, "before_flush")
def _store_uploads(session: Session, context: Any, instances: Any) -> None:
    """Store the uploads assigned since the last flush; load what deleted rows reference."""
    for instance in [*session.new, *session.dirty]:
        columns = _mapped.get(sa_inspect(instance).mapper)
        if not columns:
            continue
        unattached = _unattached.pop(sa_inspect(instance), None)
        if unattached is not None:
            _session_pending(session).merge(unattached)
        for _, reference in _references(instance, columns):
            upload = getattr(reference, "_upload", None)
            if upload is not None:
                del reference._upload  # type: ignore[attr-defined]
                reference.save(upload)
    for instance in session.deleted:
        for key in _mapped.get(sa_inspect(instance).mapper, {}):
            getattr(instance, key)  # loaded now, released by after_delete


@event.listens_for(Session, "do_orm_execute")
def _bulk_delete(state: ORMExecuteState) -> None:
    """An ORM ``delete(Model).where(...)``: release the files of the rows it is about to delete."""
    mapper = state.bind_mapper if state.is_delete else None
    columns = _mapped.get(mapper) if mapper is not None else None
    if not columns:
        return
    where = state.statement.whereclause  # type: ignore[attr-defined]
    query = select(*(mapper.get_property(key).columns[0] for key in columns))
    if where is not None:
        query = query.where(where)
    rows = state.session.execute(query, execution_options={"autoflush": False}).all()
    pending = _session_pending(state.session)  # after the query: it may have begun the transaction
    for row in rows:
        for reference in row:
            if isinstance(reference, FileReference):
                pending.released += [(reference.storage, name) for name in reference.files]


@event.listens_for(Session, "after_transaction_create")
def _adopt(session: Session, transaction: Any) -> None:
    """Files recorded before the session began its transaction belong to it."""
    book = session.info.get(_BOOK)
    if transaction.parent is None and book and None in book:
        book.setdefault(transaction, _Pending()).merge(book.pop(None))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info[_COMMITTED] = True


@event.listens_for(Session, "after_transaction_end")
def _settle(session: Session, transaction: Any) -> None:
    """Commit: a savepoint hands its files to its parent; the root deletes the released ones.
    Rollback (or close): delete the files the transaction stored."""
    if not (transaction.nested or transaction.parent is None):
        return  # the subtransaction of a flush
    committed = session.info.pop(_COMMITTED, False)
    pending = session.info.get(_BOOK, {}).pop(transaction, None)
    if pending is None:
        return
    if committed and transaction.nested:
        session.info[_BOOK].setdefault(transaction.parent, _Pending()).merge(pending)
    elif committed:
        _delete_quietly(pending.released, "released")
    else:
        _delete_quietly(pending.created, "rolled back")


def _delete_quietly(files: list[tuple[Any, str]], why: str) -> None:
    """Delete files after the database decided; any failure is logged (the orphan sweep finds the file)."""
    for storage, name in dict.fromkeys(files):
        try:
            storage.delete(name)
        except Exception:
            log.warning("could not delete %s file %r from storage %r", why, name, storage.name, exc_info=True)


def referenced_files(storage_name: str, session: Session | None) -> set[str] | None:
    """Every name that rows reference in storage ``storage_name`` (for ``flask fs orphans``), or None
    when no mapped class has a file column on it. FSError when some do but there is no session to read them."""
    columns = [
        mapper.get_property(key).columns[0]
        for mapper, found in list(_mapped.items())
        for key, column_type in found.items()
        if column_type.fs.name == storage_name
    ]
    if not columns:
        return None
    if session is None:
        raise FSError(
            f"SQLAlchemy models have file columns on storage {storage_name!r} but flask_fs cannot read them:"
            " use Flask-SQLAlchemy or set app.extensions['fs_sqlalchemy_session'] to a session factory"
        )
    found: set[str] = set()
    for column in columns:
        for (reference,) in session.execute(select(column).where(column.is_not(None))):
            found.update(reference.files)
    return found
