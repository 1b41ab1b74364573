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
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from flask import current_app
from mongoengine import signals
from mongoengine.base import BaseField
from PIL import Image
from werkzeug.datastructures import FileStorage

from . import images, names
from .backends import CHUNK_SIZE, copy_stream
from .errors import ConfigurationError, FileTooLarge, FSError, ImageError, UnauthorizedFileType
from .files import extension
from .storage import Storage

__all__ = ["FileField", "FileReference", "ImageField", "ImageReference", "delete_files_with_document"]

log = logging.getLogger(__name__)

Upload = FileStorage | IO[bytes]
#: ``upload_to`` and ``basename``: a string, or a callable receiving the document.
NameRule = str | Callable[[Any], str] | None
BBox = tuple[float, float, float, float]


class FileReference:
    """A FileField's value: the stored file's name and URL, with ``save`` and ``delete``.

    It is falsy while no file is stored; ``str()`` gives its URL (``''`` when empty).
    """

    #: Keys read from (and written to) MongoDB.
    stored_keys: tuple[str, ...] = ("filename",)

    def __init__(
        self,
        fs: Storage | None = None,
        filename: str | None = None,
        upload_to: NameRule = None,
        basename: NameRule = None,
        instance: Any = None,
        name: str | None = None,
    ) -> None:
        self.fs = fs
        self.filename = filename
        self.upload_to = upload_to
        self.basename = basename
        self._instance = instance
        self._name = name

    def to_mongo(self) -> dict[str, Any]:
        """The value stored in MongoDB."""
        return {"filename": self.filename}

    @property
    def files(self) -> list[str]:
        """Every stored name this reference owns (without duplicates)."""
        return [self.filename] if self.filename else []

    @property
    def url(self) -> str | None:
        """The file's URL, or None when no file is stored."""
        return self.storage.url(self.filename) if self.filename else None

    @property
    def storage(self) -> Storage:
        if self.fs is None:
            raise ConfigurationError("this file reference is not bound to a storage")
        return self.fs

    def save(self, file_or_wfs: Upload, filename: str | None = None, overwrite: bool | None = None) -> str:
        """Store an upload (Werkzeug ``FileStorage``) or binary file object; return its stored name.

        The previous file, if any, is deleted once the new one is stored.
        """
        target = self._target_name(file_or_wfs, filename)
        previous = self.files
        stored = self.storage.save(file_or_wfs, target, prefix="", overwrite=self._overwrite(target, overwrite))
        self.filename = stored
        self._mark_as_changed()
        self._discard(previous)
        return stored

    def delete(self) -> None:
        """Delete every file this reference owns from its storage, then clear the reference."""
        for name in self.files:
            self.storage.delete(name)
        self._clear()
        self._mark_as_changed()

    # -- helpers -------------------------------------------------------------------------------------

    def _clear(self) -> None:
        self.filename = None

    def _target_name(self, upload: Upload, filename: str | None) -> str:
        """The full stored name: explicit ``filename``, else the sanitised upload name (renamed by
        ``basename``), inside the field's ``upload_to`` folder (or the storage's)."""
        if filename is None:
            stream = upload.stream if isinstance(upload, FileStorage) else upload
            client = upload.filename if isinstance(upload, FileStorage) else getattr(stream, "name", "")
            filename = names.secure_upload_name(os.path.basename(str(client or "")))
            if self.basename is not None:
                base = self.basename(self._instance) if callable(self.basename) else self.basename
                ext = extension(filename)
                filename = f"{base}.{ext}" if ext else str(base)
        folder = self.upload_to(self._instance) if callable(self.upload_to) else self.upload_to
        if folder is None:
            folder = self.storage.upload_to() if callable(self.storage.upload_to) else self.storage.upload_to
        return names.join(folder, filename)

    def _overwrite(self, name: str, overwrite: bool | None) -> bool | None:
        """A reference may replace its own files; other names follow ``overwrite`` / the storage."""
        return True if name in self.files else overwrite

    def _discard(self, previous: Iterable[str]) -> None:
        """Delete files this reference no longer names; a failure is logged, the save stands."""
        keep = set(self.files)
        for name in dict.fromkeys(previous):
            if name in keep:
                continue
            try:
                self.storage.delete(name)
            except FSError:
                log.warning("could not delete replaced file %r from storage %r", name, self.storage.name, exc_info=True)

    def _mark_as_changed(self) -> None:
        if self._instance is not None and self._name and hasattr(self._instance, "_mark_as_changed"):
            self._instance._mark_as_changed(self._name)

    # -- protocol ------------------------------------------------------------------------------------

    def __bool__(self) -> bool:
        return bool(self.filename)

    def __str__(self) -> str:
        return self.url or ""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_mongo() == self.to_mongo()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.filename!r}>"


class ImageReference(FileReference):
    """An ImageField's value: the displayed image, its untouched original and its thumbnails."""

    stored_keys = ("filename", "original", "thumbnails", "bbox")

    def __init__(
        self,
        original: str | None = None,
        max_size: int | None = None,
        thumbnail_sizes: Iterable[int] | None = None,
        thumbnails: Mapping[str, str] | None = None,
        bbox: Iterable[float] | None = None,
        optimize: bool | None = None,
        max_pixels: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.original = original or self.filename
        self.max_size = max_size
        self.thumbnail_sizes = sorted(set(thumbnail_sizes or ()))
        self.thumbnails = {str(size): name for size, name in (thumbnails or {}).items()}
        self.bbox = list(bbox) if bbox else None
        self.optimize = optimize
        self.max_pixels = max_pixels

    def to_mongo(self) -> dict[str, Any]:
        data = super().to_mongo()
        if self.original and self.original != self.filename:  # an unchanged upload has no separate original
            data["original"] = self.original
        if self.thumbnails:
            data["thumbnails"] = dict(self.thumbnails)
        if self.bbox:
            data["bbox"] = list(self.bbox)
        return data

    @property
    def files(self) -> list[str]:
        found = [self.original, self.filename, *self.thumbnails.values()]
        return list(dict.fromkeys(name for name in found if name))

    def thumbnail(self, size: int) -> str | None:
        """The stored name of the ``size`` thumbnail (None if not rendered yet); ValueError if unknown."""
        if str(size) not in self.thumbnails and size not in self.thumbnail_sizes:
            raise ValueError(f"no thumbnail size {size} on this field (sizes: {self.thumbnail_sizes})")
        return self.thumbnails.get(str(size))

    def best_url(self, size: int | None = None, external: bool = False) -> str | None:
        """URL of the smallest rendition at least ``size`` px (thumbnails win ties), else the largest.

        Candidates are the thumbnails and, with ``max_size``, the displayed image (as ``max_size`` px);
        no ``size`` asks for the largest; without thumbnails it is the displayed image. None when empty.
        """
        name = self._best(size)
        return self.storage.url(name, external=external) if name else None

    def full(self, external: bool = False) -> str | None:
        """URL of the displayed image (resized to ``max_size`` if needed), None when empty."""
        return self.storage.url(self.filename, external=external) if self.filename else None

    def __call__(self, size: int | None = None, external: bool = False) -> str | None:
        """Shortcut for :meth:`best_url`, handy in templates: ``{{ post.image(64) }}``."""
        return self.best_url(size, external)

    def _best(self, size: int | None) -> str | None:
        if not self.filename:
            return None
        candidates = sorted((int(k), 0, v) for k, v in self.thumbnails.items() if k.isdigit())
        if self.max_size or not candidates:
            candidates.append((self.max_size or 0, 1, self.filename))
            candidates.sort()
        if size is not None:
            for candidate_size, _, name in candidates:
                if candidate_size >= size:
                    return name
        return candidates[-1][2]

    def save(
        self,
        file_or_wfs: Upload,
        filename: str | None = None,
        bbox: Iterable[float] | None = None,
        overwrite: bool | None = None,
    ) -> str:
        """Validate an image upload, store it with its renditions and return the displayed name.

        ``bbox`` = (x1, y1, x2, y2) in source pixels crops the thumbnails. Nothing is stored unless
        the image decodes within the pixel limit (InvalidImage, ImageTooLarge); the previous files
        are deleted once the new ones are stored.
        """
        box = _bbox(bbox)
        target = self._target_name(file_or_wfs, filename)
        if not self.storage.file_allowed(file_or_wfs, posixpath.basename(target)):
            raise UnauthorizedFileType(f"files of type {extension(target) or '(none)'!r} are not allowed here")
        with _seekable(file_or_wfs) as (upload, stream):
            self._check_size(stream)
            rendition = self._render(stream, box)
            self._store(self._plan(target, rendition, upload), overwrite, box)
        return self.filename  # type: ignore[return-value]

    def rerender(self) -> None:
        """Render the displayed image and thumbnails again from the original, with the field's
        current ``max_size``, ``thumbnails`` and ``optimize`` settings; drop renditions no longer wanted."""
        if not self.original or not self.filename:
            raise FSError("this image field is empty: there is nothing to rerender")
        with tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE * 8) as spool:
            with self.storage.open(self.original, "rb") as source:
                copy_stream(source, spool)
            target = _derive(self.filename, "", _ext(self.original))
            box = _bbox(self.bbox)
            rendition = self._render(spool, box)
            self._store(self._plan(target, rendition, spool, stored_original=self.original), None, box)

    # -- helpers -------------------------------------------------------------------------------------

    def _clear(self) -> None:
        self.filename = self.original = self.bbox = None
        self.thumbnails = {}

    def _check_size(self, stream: IO[bytes]) -> None:
        limit = self.storage.config.get("max_size")
        if limit and stream.seek(0, os.SEEK_END) > int(limit):
            raise FileTooLarge(f"uploads to this storage are limited to {int(limit)} bytes")

    def _render(self, stream: IO[bytes], bbox: BBox | None) -> images.Renditions:
        """Validate the image and render every output from a single decode."""
        optimize = self.optimize if self.optimize is not None else current_app.config.get("FS_IMAGES_OPTIMIZE")
        max_pixels = self.max_pixels or self.storage.config.get("images_max_pixels")
        stream.seek(0)
        try:
            return images.render_all(
                stream,
                self.thumbnail_sizes,
                bbox=bbox,
                max_size=self.max_size,
                optimize=bool(optimize),
                max_pixels=int(max_pixels) if max_pixels else None,
            )
        except ValueError as exc:
            if isinstance(exc, FSError):
                raise
            raise ImageError(str(exc)) from exc  # e.g. a bbox outside the image

    def _plan(
        self, target: str, rendition: images.Renditions, source: Any, stored_original: str | None = None
    ) -> list[tuple[str, str, Any]]:
        """(role, name, content) to store, in order; content None means "already stored there".

        ``target`` is the displayed image's name; ``stored_original`` the original already stored
        (rerender), which keeps its name unless it must make room for a resized image.
        """
        source_ext = _ext(target)
        registered = Image.registered_extensions().get(source_ext.lower())
        ext = source_ext if registered == rendition.format else "." + rendition.extension
        if rendition.main is None:  # the upload is displayed as it is
            plan = [("original", target, None if target == stored_original else source)]
        else:
            if stored_original and stored_original != self.filename:
                plan = [("original", stored_original, None)]
            else:
                plan = [("original", _derive(target, "-original", source_ext), source)]
            plan.append(("main", _derive(target, "", ext), rendition.main))
        for size, data in sorted(rendition.thumbnails.items()):
            plan.append((str(size), _derive(target, f"-{size}", ext), data))
        return plan

    def _store(self, plan: list[tuple[str, str, Any]], overwrite: bool | None, bbox: BBox | None) -> None:
        """Store the planned files, then point the reference at them and drop the previous ones.

        If a write fails, the files this call created are deleted and the reference is unchanged.
        """
        for _, name, content in plan:
            if content is not None and not self.storage.file_allowed(content, posixpath.basename(name)):
                raise UnauthorizedFileType(f"files of type {extension(name) or '(none)'!r} are not allowed here")
        owned, stored, created = set(self.files), {}, []
        try:
            for role, name, content in plan:
                if content is None:
                    stored[role] = name
                    continue
                if isinstance(content, FileStorage):
                    content.stream.seek(0)
                else:
                    content.seek(0)
                stored[role] = self.storage.save(content, name, prefix="", overwrite=self._overwrite(name, overwrite))
                if stored[role] not in owned:
                    created.append(stored[role])
        except Exception:
            for name in created:
                try:
                    self.storage.delete(name)
                except FSError:
                    log.warning("could not remove %r after a failed image save", name, exc_info=True)
            raise
        previous = self.files
        self.original = stored["original"]
        self.filename = stored.get("main", self.original)
        self.thumbnails = {role: name for role, name in stored.items() if role.isdigit()}
        self.bbox = list(bbox) if bbox else None
        self._mark_as_changed()
        self._discard(previous)


def _bbox(bbox: Iterable[float] | None) -> BBox | None:
    if not bbox:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"bbox must be four numbers (x1, y1, x2, y2), not {bbox!r}") from exc
    return (x1, y1, x2, y2)


def _ext(name: str) -> str:
    """The extension of ``name`` with its dot, as written (``''`` without one)."""
    base = posixpath.basename(name)
    stem, dot, ext = base.rpartition(".")
    return f".{ext}" if dot and stem else ""


def _derive(name: str, suffix: str, ext: str) -> str:
    """``folder/stem.png`` with suffix ``-100`` and ext ``.jpg`` gives ``folder/stem-100.jpg``."""
    folder, base = posixpath.split(name)
    old = _ext(base)
    stem = base[: -len(old)] if old else base
    return posixpath.join(folder, f"{stem}{suffix}{ext}")


@contextmanager
def _seekable(upload: Upload) -> Iterator[tuple[Any, IO[bytes]]]:
    """The upload and its stream, readable again from the start (spooled when it is not seekable)."""
    stream = upload.stream if isinstance(upload, FileStorage) else upload
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable() and stream.tell() == 0:
        yield upload, stream
        return
    with tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE * 8) as spool:
        copy_stream(stream, spool)
        spool.seek(0)
        if isinstance(upload, FileStorage):
            yield FileStorage(spool, upload.filename, upload.name, headers=upload.headers), spool
        else:
            yield spool, spool


class FileField(BaseField):
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
        if not isinstance(fs, Storage):
            raise ConfigurationError(f"{type(self).__name__} needs fs=<a flask_fs.Storage>, not {fs!r}")
        self.fs = fs
        self.upload_to = upload_to
        self.basename = basename
        super().__init__(*args, **kwargs)

    def proxy(self, instance: Any = None, **data: Any) -> FileReference:
        """A reference bound to this field's settings and to ``instance``, holding stored ``data``."""
        return self.proxy_class(
            fs=self.fs, upload_to=self.upload_to, basename=self.basename, instance=instance, name=self.name, **data
        )

    def _stored(self, value: Any) -> dict[str, Any]:
        """The stored keys of a MongoDB value (a dict, or a bare filename)."""
        if value is None:
            return {}
        if isinstance(value, FileReference):
            value = value.to_mongo()
        if isinstance(value, str):
            return {"filename": value}
        if isinstance(value, Mapping):
            return {key: value[key] for key in self.proxy_class.stored_keys if value.get(key) is not None}
        self.error(f"expected a file reference, a dict or a filename, not {type(value).__name__}")

    def _bind(self, value: Any, instance: Any) -> FileReference:
        owner = getattr(value, "_instance", None)
        if isinstance(value, self.proxy_class) and value.fs is self.fs and (owner is None or owner is instance):
            value._instance, value._name = instance, self.name
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


class ImageField(FileField):
    """A field storing an image in storage ``fs``; its value is an :class:`ImageReference`.

    The upload is kept untouched; ``max_size`` (px) bounds the displayed image, ``thumbnails`` lists
    square thumbnail sizes (px), ``optimize`` overrides ``FS_IMAGES_OPTIMIZE``, ``max_pixels`` the
    ``FS_IMAGES_MAX_PIXELS`` limit.
    """

    proxy_class = ImageReference

    def __init__(
        self,
        max_size: int | None = None,
        thumbnails: Iterable[int] | None = None,
        optimize: bool | None = None,
        *args: Any,
        max_pixels: int | None = None,
        **kwargs: Any,
    ) -> None:
        sizes = list(thumbnails or ())
        for size in [*sizes, max_size, max_pixels]:
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
                raise ConfigurationError(f"image sizes and limits are positive integers, not {size!r}")
        self.max_size = max_size
        self.thumbnail_sizes = sorted(set(sizes))
        self.optimize = optimize
        self.max_pixels = max_pixels
        super().__init__(*args, **kwargs)

    def proxy(self, instance: Any = None, **data: Any) -> FileReference:
        data.update(
            max_size=self.max_size,
            thumbnail_sizes=self.thumbnail_sizes,
            optimize=self.optimize,
            max_pixels=self.max_pixels,
        )
        return super().proxy(instance, **data)


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
        for filename in reference.files:
            try:
                field.fs.delete(filename)
            except FSError:
                log.warning("could not delete %r of deleted %s", filename, sender.__name__, exc_info=True)
