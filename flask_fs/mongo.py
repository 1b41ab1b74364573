"""Mongoengine fields that keep files in a :class:`~flask_fs.Storage` and only their names in MongoDB.

::

    avatars = fs.Storage("avatars", fs.IMAGES)

    @delete_files_with_document          # optional: remove the files when a Post is deleted
    class Post(Document):
        attachment = FileField(fs=files, upload_to=lambda post: f"posts/{post.slug}")
        image = ImageField(fs=avatars, max_size=800, thumbnails=[200, 64])

    post.image.save(request.files["image"], bbox=(10, 10, 300, 300))
    post.save()
    post.image.best_url(64)              # or post.image(64), also in templates

**Stored layout** (the same as Flask-FS 0.6, so both read each other's documents): a FileField
stores ``{"filename": name}``; an ImageField adds ``"original"`` (the untouched upload),
``"thumbnails"`` (``{"<size>": name}``) and ``"bbox"`` (``[x1, y1, x2, y2]``), each only when set.
An empty field is not stored at all.

**Image names**: saving ``test.png`` keeps the upload as ``test.png`` when it needs no change. When
it is larger than ``max_size`` or optimization is on, the upload is kept untouched as
``test-original.png`` and the resized/optimized image is ``test.png``. Thumbnails are
``test-<size>.png``. Renditions keep the source's format, and their extension follows it (a JPEG
uploaded as ``photo.png`` gives ``photo-100.jpg``).

**Owned files**: a reference owns the files it names. ``ref.delete()`` removes them and clears the
reference; saving a new file over a reference removes its previous files once the new ones are
stored; :func:`delete_files_with_document` removes them when the document is deleted. Assigning
to the field (``doc.image = None``) only changes the reference, it deletes nothing. Do not share one
stored file between two documents' fields.

**Settings**: ``FS_IMAGES_OPTIMIZE`` (app config) optimizes every rendition, overridden per field by
``optimize=``. ``FS_IMAGES_MAX_PIXELS`` (or ``<NAME>_FS_IMAGES_MAX_PIXELS``, or ``max_pixels=`` on the
field) caps the pixel count of accepted images (default: :data:`flask_fs.images.DEFAULT_MAX_PIXELS`).
"""

from __future__ import annotations

import logging
from typing import Any

from mongoengine import signals
from mongoengine.base import BaseField, get_document
from mongoengine.base.common import _document_registry
from mongoengine.fields import EmbeddedDocumentField, ListField, MapField

from .errors import ConfigurationError
from .fields.core import FileReference, FileSpec, ImageReference, ImageSpec, Lifecycle, NameRule, delete_files
from .fields.orphans import stored_names
from .storage import Storage

__all__ = [
    "FileField",
    "FileReference",
    "ImageField",
    "ImageReference",
    "delete_files_with_document",
    "referenced_files",
]

log = logging.getLogger(__name__)


class MongoLifecycle(Lifecycle):
    """References in mongoengine documents: a change marks the field changed; replaced files go at once."""

    def changed(self, reference: FileReference) -> None:
        instance = reference._instance
        if instance is not None and reference._name and hasattr(instance, "_mark_as_changed"):
            instance._mark_as_changed(reference._name)


LIFECYCLE = MongoLifecycle()


class FileField(FileSpec, BaseField):
    """A field storing a file in storage ``fs``; its value is a :class:`FileReference`.

    ``upload_to`` (folder) and ``basename`` (new name for uploads, keeping their extension) are
    strings or callables receiving the document.
    """

    proxy_class: type[FileReference] = FileReference

    def __init__(
        self,
        fs: Storage | None = None,
        upload_to: NameRule = None,
        basename: NameRule = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self._configure(fs, upload_to, basename)
        super().__init__(*args, **kwargs)

    @property
    def reference_class(self) -> type[FileReference]:  # type: ignore[override]
        return self.proxy_class

    def proxy(self, instance: Any = None, **data: Any) -> FileReference:
        """A reference bound to this field's settings and to ``instance``, holding stored ``data``."""
        return self.make_reference(instance, self.name, LIFECYCLE, **data)

    def _stored(self, value: Any) -> dict[str, Any]:
        """The stored keys of a MongoDB value (a dict, or a bare filename)."""
        try:
            return self.stored_data(value)
        except TypeError as exc:
            self.error(str(exc))
            raise  # error() raises; this line only helps type checkers

    def _bind(self, value: Any, instance: Any) -> FileReference:
        owner = getattr(value, "_instance", None)
        if isinstance(value, self.proxy_class) and value.fs is self.fs and (owner is None or owner is instance):
            value._instance, value._name, value._lifecycle = instance, self.name, LIFECYCLE
            return value
        return self.proxy(instance, **self._stored(value))

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self
        value = instance._data.get(self.name)
        reference = self._bind(value, instance)
        if reference is not value:
            instance._data[self.name] = reference
        return reference

    def __set__(self, instance: Any, value: Any) -> None:
        reference = self._bind(value, instance)
        if instance._initialised and instance._data.get(self.name) != reference:
            instance._mark_as_changed(self.name)
        instance._data[self.name] = reference

    def to_python(self, value: Any) -> Any:
        if isinstance(value, FileReference):
            return value
        return self.proxy(None, **self._stored(value))

    def to_mongo(self, value: Any) -> dict[str, Any] | None:
        reference = self.to_python(value)
        return reference.to_mongo() if reference else None

    def validate(self, value: Any, clean: bool = True) -> None:
        if not isinstance(value, self.proxy_class):
            self.error(f"expected a {self.proxy_class.__name__}, not {type(value).__name__}")
        if self.required and not value:
            self.error("Field is required")


class ImageField(ImageSpec, FileField):
    """A field storing an image in storage ``fs``; its value is an :class:`ImageReference`.

    The upload is kept untouched; ``max_size`` (px) bounds the displayed image, ``thumbnails`` lists
    square thumbnail sizes (px), ``optimize`` overrides ``FS_IMAGES_OPTIMIZE``, ``max_pixels`` the
    ``FS_IMAGES_MAX_PIXELS`` limit.
    """

    proxy_class = ImageReference

    def __init__(
        self,
        max_size: int | None = None,
        thumbnails: list[int] | None = None,
        optimize: bool | None = None,
        *args: Any,
        max_pixels: int | None = None,
        render_later: bool = False,
        **kwargs: Any,
    ) -> None:
        self._configure_images(max_size, thumbnails, optimize, max_pixels, render_later)
        FileField.__init__(self, *args, **kwargs)


def delete_files_with_document(document_cls: type) -> type:
    """Class decorator: after a document of this class is deleted, delete the files of its
    FileField/ImageField values (subclasses need their own decorator).

    It hooks mongoengine's ``post_delete`` signal, so ``QuerySet.delete()`` also deletes document
    by document. A file that cannot be deleted is logged; the document stays deleted.
    """
    if not signals.signals_available:
        raise ConfigurationError("delete_files_with_document needs the blinker package")
    signals.post_delete.connect(_delete_document_files, sender=document_cls)
    return document_cls


def _delete_document_files(sender: type, document: Any, **kwargs: Any) -> None:
    for name, field in document._fields.items():
        if not isinstance(field, FileField):
            continue
        reference = getattr(document, name)
        delete_files(field.fs, reference.files, f"deleted {sender.__name__}'s")


def referenced_files(storage_name: str) -> set[str] | None:
    """Every name that documents may reference in storage ``storage_name`` (for ``flask fs orphans``),
    or None when no imported document class has a file field on it.

    Each collection holding such a field is read in full (only those fields), embedded documents
    included; every string in their values counts, so nothing referenced is ever missed.
    """
    fields_by_collection: dict[Any, set[str]] = {}
    for name in list(_document_registry):
        cls = get_document(name)
        if cls._meta.get("abstract") or getattr(cls, "_is_document", False) is False:
            continue
        keys = {key for key, field in cls._fields.items() if _holds_files(field, storage_name, set())}
        if keys:
            fields_by_collection.setdefault(cls._get_collection(), set()).update(keys)
    if not fields_by_collection:
        return None
    found: set[str] = set()
    for collection, keys in fields_by_collection.items():
        for raw in collection.find({}, dict.fromkeys(keys, 1)):
            for key in keys:
                found.update(stored_names(raw.get(key)))
    return found


def _holds_files(field: Any, storage_name: str, seen: set[type]) -> bool:
    """Whether ``field`` is, or contains (embedded documents, lists, maps), a file field on the storage."""
    if isinstance(field, FileField):
        return field.fs.name == storage_name
    if isinstance(field, (ListField, MapField)) and field.field is not None:
        return _holds_files(field.field, storage_name, seen)
    if isinstance(field, EmbeddedDocumentField):
        embedded = field.document_type
        if embedded in seen:
            return False
        seen.add(embedded)
        return any(_holds_files(inner, storage_name, seen) for inner in embedded._fields.values())
    return False
