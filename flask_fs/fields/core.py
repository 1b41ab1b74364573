"""File and image references, and the field options shared by the mongoengine and SQLAlchemy fields.

Nothing here knows about a database or about Flask: a reference is given a storage (anything with
the :class:`FieldStorage` methods, in practice a :class:`flask_fs.Storage`) and a :class:`Lifecycle`
that tells its owner (a document, a row) when it changed, which files it stored and which files it no
longer names. The adapters (:mod:`flask_fs.mongo`, :mod:`flask_fs.sqla`) only map those events to
their database.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import IO, Any, Protocol

from PIL import Image

from .. import images, intake, names
from ..errors import ConfigurationError, ContentMismatch, FileExists, FSError, ImageError, UnauthorizedFileType
from ..files import extension
from ..streams import LimitedReader, spooled

__all__ = ["FieldStorage", "FileReference", "FileSpec", "ImageReference", "ImageSpec", "Lifecycle"]

log = logging.getLogger("flask_fs.fields")

#: An upload: a Werkzeug ``FileStorage`` (anything with ``stream`` and ``filename``) or a binary file object.
Upload = Any
#: ``upload_to`` and ``basename``: a string, or a callable receiving the owner (document or row).
NameRule = str | Callable[[Any], str] | None
BBox = tuple[float, float, float, float]


class FieldStorage(Protocol):
    """What a reference needs of its storage (a :class:`flask_fs.Storage` has it all)."""

    name: str
    upload_to: Any
    config: Mapping[str, Any]

    def save(
        self,
        file_or_wfs: Any,
        filename: str | None = None,
        prefix: Any = None,
        overwrite: bool | None = None,
        rename: bool | None = None,
    ) -> str: ...
    def delete(self, filename: str) -> None: ...
    def exists(self, filename: str) -> bool: ...
    def open(self, filename: str, mode: str = "r") -> IO: ...
    def url(self, filename: str, external: bool = False) -> str: ...
    def file_allowed(self, storage: Any, basename: str) -> bool: ...
    def policy(self) -> intake.Policy: ...


class Lifecycle:
    """What a reference tells its owner. This default keeps no owner and deletes released files at once;
    adapters subclass it (mongo marks the document changed, SQLAlchemy defers deletes to the commit)."""

    #: Whether a save may replace a file the reference already names (False: pick a free name instead,
    #: so that the previous file survives until it is released).
    overwrite_own = True

    def changed(self, reference: FileReference) -> None:
        """The reference's stored value changed."""

    def stored(self, reference: FileReference, stored: list[str]) -> None:
        """The reference created these files."""

    def released(self, reference: FileReference, released: list[str]) -> None:
        """The reference no longer names these files: delete them (a failure is logged)."""
        delete_files(reference.storage, released, "released")


def delete_files(storage: FieldStorage, filenames: Iterable[str], why: str) -> None:
    """Delete each file, logging (not raising) failures. With background jobs set up, what failed is
    handed to a ``delete`` job, retried with backoff; without, the orphan sweep finds it."""
    failed = []
    for name in dict.fromkeys(filenames):
        try:
            storage.delete(name)
        except FSError:
            log.warning("could not delete %s file %r from storage %r", why, name, storage.name, exc_info=True)
            failed.append(name)
    jobs = getattr(storage, "jobs", None) if failed else None
    if jobs is not None:
        jobs.submit("delete", storage.name, filenames=failed)


IMMEDIATE = Lifecycle()
#: How many free names (``stem_1``, ``stem_2``...) a save tries when its lifecycle never overwrites.
MAX_RENAMES = 1000


class FileReference:
    """A file field's value: the stored file's name and URL, with ``save`` and ``delete``.

    It is falsy while no file is stored; ``str()`` gives its URL (``''`` when empty).
    """

    #: Keys of the stored value.
    stored_keys: tuple[str, ...] = ("filename",)

    def __init__(
        self,
        fs: FieldStorage | None = None,
        filename: str | None = None,
        upload_to: NameRule = None,
        basename: NameRule = None,
        instance: Any = None,
        name: str | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.fs = fs
        self._filename = filename
        self.upload_to = upload_to
        self.basename = basename
        self._instance = instance
        self._name = name
        self._lifecycle = lifecycle or IMMEDIATE

    @property
    def filename(self) -> str | None:
        """The stored name (None when empty); setting it only changes the reference."""
        return self._filename

    @filename.setter
    def filename(self, value: str | None) -> None:
        self._filename = value
        self._mark_as_changed()

    def to_mongo(self) -> dict[str, Any]:
        """The stored value (the same layout in MongoDB and in SQL JSON columns)."""
        return {"filename": self.filename}

    to_dict = to_mongo

    @property
    def files(self) -> list[str]:
        """Every stored name this reference owns (without duplicates)."""
        return [self.filename] if self.filename else []

    @property
    def url(self) -> str | None:
        """The file's URL, or None when no file is stored."""
        return self.storage.url(self.filename) if self.filename else None

    @property
    def storage(self) -> FieldStorage:
        if self.fs is None:
            raise ConfigurationError("this file reference is not bound to a storage")
        return self.fs

    def save(self, file_or_wfs: Upload, filename: str | None = None, overwrite: bool | None = None) -> str:
        """Store an upload (Werkzeug ``FileStorage``) or binary file object; return its stored name.

        The previous file, if any, is released (deleted, or deleted at commit) once the new one is stored.
        """
        target = self._target_name(file_or_wfs, filename)
        previous = self.files
        if self._lifecycle.overwrite_own:
            stored = self.storage.save(file_or_wfs, target, prefix="", overwrite=self._overwrite(target, overwrite))
        else:  # never replace (a released file lives until the commit): take a free name, stem_1.ext...
            stored = self.storage.save(file_or_wfs, target, prefix="", overwrite=bool(overwrite), rename=True)
        self._lifecycle.stored(self, [stored] if stored not in previous else [])
        self.filename = stored
        self._discard(previous)
        return stored

    def delete(self) -> None:
        """Release every file this reference owns (deleted now, or at commit), then clear the reference."""
        previous = self.files
        self._clear()
        self._mark_as_changed()
        self._lifecycle.released(self, previous)

    # -- helpers -------------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._filename = None

    def _target_name(self, upload: Upload, filename: str | None) -> str:
        """The full stored name: explicit ``filename``, else the sanitised upload name (renamed by
        ``basename``), inside the field's ``upload_to`` folder (or the storage's)."""
        if filename is None:
            client = getattr(upload, "filename", None) if _is_filestorage(upload) else getattr(upload, "name", "")
            filename = names.secure_upload_name(os.path.basename(str(client or "")))
            if self.basename is not None:
                base = self.basename(self._instance) if callable(self.basename) else self.basename
                ext = extension(filename)
                filename = f"{base}.{ext}" if ext else str(base)
        folder = self.upload_to(self._instance) if callable(self.upload_to) else self.upload_to
        if folder is None:
            folder = self.storage.upload_to() if callable(self.storage.upload_to) else self.storage.upload_to
        return names.join(folder, filename)

    def _overwrite(self, name: str, overwrite: bool | None, replace_own: bool | None = None) -> bool | None:
        """A reference may replace its own files (unless its lifecycle says otherwise); other names
        follow ``overwrite`` / the storage."""
        replace_own = self._lifecycle.overwrite_own if replace_own is None else replace_own
        if replace_own and name in self.files:
            return True
        if overwrite is None and not self._lifecycle.overwrite_own:
            return False  # a file released in a transaction must survive until its commit
        return overwrite

    def _discard(self, previous: Iterable[str]) -> None:
        """Release the files this reference no longer names."""
        keep = set(self.files)
        released = [name for name in dict.fromkeys(previous) if name not in keep]
        if released:
            self._lifecycle.released(self, released)

    def _mark_as_changed(self) -> None:
        self._lifecycle.changed(self)

    # -- protocol ------------------------------------------------------------------------------------

    def __bool__(self) -> bool:
        return bool(self.filename)

    def __str__(self) -> str:
        return self.url or ""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and _comparable(other) == _comparable(self)  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.filename!r}>"


class ImageReference(FileReference):
    """An image field's value: the displayed image, its untouched original and its thumbnails."""

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
        render_later: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.render_later = render_later
        self._original = original
        self.max_size = max_size
        self.thumbnail_sizes = sorted(set(thumbnail_sizes or ()))
        self.thumbnails = {str(size): name for size, name in (thumbnails or {}).items()}
        self.bbox = bbox or None  # kept as given: a tuple stays a tuple until stored
        self.optimize = optimize
        self.max_pixels = max_pixels

    @property
    def original(self) -> str | None:
        """The untouched upload: its own file when the displayed image was resized or optimized."""
        return self._original or self.filename

    @original.setter
    def original(self, value: str | None) -> None:
        self._original = value
        self._mark_as_changed()

    def to_mongo(self) -> dict[str, Any]:
        data = super().to_mongo()
        if self.original and self.original != self.filename:  # an unchanged upload has no separate original
            data["original"] = self.original
        if self.thumbnails:
            data["thumbnails"] = dict(self.thumbnails)
        if self.bbox:
            data["bbox"] = self.bbox
        return data

    to_dict = to_mongo

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
        if name and self.render_later and name != self.original and not _rendered(self.storage, name):
            name = self.original  # rendered in a job that has not finished: the original meanwhile
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

        ``bbox`` = (x1, y1, x2, y2) in source pixels crops the thumbnails (kept as given). Nothing is
        stored unless the image decodes within the pixel limit (InvalidImage, ImageTooLarge); the
        previous files are released once the new ones are stored.
        """
        box = _bbox(bbox)
        target = self._target_name(file_or_wfs, filename)
        _rewind(file_or_wfs)  # an upload saved to two fields is read from its start each time
        folder, basename = posixpath.split(target)
        policy = self.storage.policy()  # Pillow checks the content, more closely than signatures do
        upload = intake.accept(file_or_wfs, basename, folder or None, replace(policy, check_content=False))
        if self.render_later:
            return self._save_rendering_later(upload, target, basename, policy.check_content, overwrite, bbox)
        with _seekable(upload.stream) as stream:
            rendition = self._render(stream, box)
            if (
                policy.check_content
                and Image.registered_extensions().get(f".{extension(basename)}") != rendition.format
            ):
                raise ContentMismatch(
                    f"the content of {basename!r} is not what its extension says (found: a {rendition.format} image)"
                )
            for number in range(MAX_RENAMES + 1):
                candidate = _derive(target, f"_{number}", _ext(target)) if number else target
                try:
                    self._store(self._plan(candidate, rendition, stream), overwrite, bbox)
                    break
                except FileExists:  # _store removed what it had stored
                    if self._lifecycle.overwrite_own or overwrite or number == MAX_RENAMES:
                        raise
        return self.filename  # type: ignore[return-value]

    def _save_rendering_later(
        self, upload: intake.Upload, target: str, basename: str, check: bool, overwrite: bool | None, bbox: Any
    ) -> str:
        """Store the upload as the displayed image now, and submit a job rendering its thumbnails
        under the names they will have (``best_url`` gives the original until they exist)."""
        jobs = getattr(self.storage, "jobs", None)
        if jobs is None:
            raise ConfigurationError("render_later needs background jobs: call flask_fs.jobs.init_app(app)")
        max_pixels = self._max_pixels()
        with _seekable(upload.stream) as stream:
            found = images.identify(stream, max_pixels)
            if check and Image.registered_extensions().get(f".{extension(basename)}") != found:
                found = f"a {found} image"
                raise ContentMismatch(f"the content of {basename!r} is not what its extension says (found: {found})")
            stream.seek(0)
            for number in range(MAX_RENAMES + 1):
                candidate = _derive(target, f"_{number}", _ext(target)) if number else target
                plan: list[tuple[str, str, IO[bytes] | None]] = [("original", candidate, stream)]
                try:
                    self._store(plan, overwrite, bbox)
                    break
                except FileExists:
                    if self._lifecycle.overwrite_own or overwrite or number == MAX_RENAMES:
                        raise
        ext = _ext(self.original or target)
        original: str = self.original  # type: ignore[assignment] - just stored
        self.thumbnails = {str(size): _derive(original, f"-{size}", ext) for size in self.thumbnail_sizes}
        jobs.submit(
            "thumbnails", self.storage.name, original, renditions=dict(self.thumbnails),
            optimize=self._optimize(), max_pixels=max_pixels, missing_ok=True,
        )  # fmt: skip
        return self.filename  # type: ignore[return-value]

    def rerender(self) -> None:
        """Render the displayed image and thumbnails again from the original (read back from the
        storage, whatever its backend), with the field's current ``max_size``, ``thumbnails`` and
        ``optimize`` settings; drop renditions no longer wanted."""
        if not self.original or not self.filename:
            raise FSError("this image field is empty: there is nothing to rerender")
        with self.storage.open(self.original, "rb") as source:
            spool = spooled(source)  # read whole before the renditions replace their files
        with spool:
            target = _derive(self.filename, "", _ext(self.original))
            rendition = self._render(spool, _bbox(self.bbox))
            plan = self._plan(target, rendition, spool, stored_original=self.original)
            self._store(plan, None, self.bbox, replace_own=True)  # renditions are derived: replace them

    # -- helpers -------------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._filename = self._original = self.bbox = None
        self.thumbnails = {}

    def _optimize(self) -> bool:
        """The field's ``optimize``, else the app's ``FS_IMAGES_OPTIMIZE``."""
        return bool(self.optimize if self.optimize is not None else getattr(self.storage, "images_optimize", False))

    def _max_pixels(self) -> int | None:
        """The field's ``max_pixels``, else the storage's ``IMAGES_MAX_PIXELS`` (None: the default limit)."""
        limit = self.max_pixels or self.storage.config.get("images_max_pixels")
        return int(limit) if limit else None

    def _render(self, stream: IO[bytes], bbox: BBox | None) -> images.Renditions:
        """Validate the image and render every output from a single decode."""
        stream.seek(0)
        try:
            return images.render_all(
                stream,
                self.thumbnail_sizes,
                bbox=bbox,
                max_size=self.max_size,
                optimize=self._optimize(),
                max_pixels=self._max_pixels(),
            )
        except ValueError as exc:
            if isinstance(exc, FSError):
                raise
            raise ImageError(str(exc)) from exc  # e.g. a bbox outside the image

    def _plan(
        self, target: str, rendition: images.Renditions, source: IO[bytes], stored_original: str | None = None
    ) -> list[tuple[str, str, IO[bytes] | None]]:
        """(role, name, content) to store, in order; content None means "already stored there".

        ``target`` is the displayed image's name; ``stored_original`` the original already stored
        (rerender), which keeps its name unless it must make room for a resized image.
        """
        source_ext = _ext(target)
        registered = Image.registered_extensions().get(source_ext.lower())
        ext = source_ext if registered == rendition.format else "." + rendition.extension
        plan: list[tuple[str, str, IO[bytes] | None]]
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

    def _store(
        self,
        plan: list[tuple[str, str, IO[bytes] | None]],
        overwrite: bool | None,
        bbox: Any,
        replace_own: bool | None = None,
    ) -> None:
        """Store the planned files, then point the reference at them and release the previous ones.

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
                content.seek(0)
                replace = self._overwrite(name, overwrite, replace_own)
                stored[role] = self.storage.save(content, name, prefix="", overwrite=replace)
                if stored[role] not in owned:
                    created.append(stored[role])
        except Exception:
            delete_files(self.storage, created, "partly saved")
            raise
        self._lifecycle.stored(self, created)
        previous = self.files
        self._original = stored["original"]
        self._filename = stored.get("main", self._original)
        self.thumbnails = {role: name for role, name in stored.items() if role.isdigit()}
        self.bbox = bbox or None  # kept as given: a tuple stays a tuple until stored
        self._mark_as_changed()
        self._discard(previous)


class FileSpec:
    """The options of a file field, shared by the mongoengine and SQLAlchemy fields (mixed into both).

    ``upload_to`` (folder) and ``basename`` (new name for uploads, keeping their extension) are
    strings or callables receiving the document or row.
    """

    reference_class: type[FileReference] = FileReference

    def _configure(self, fs: Any, upload_to: NameRule, basename: NameRule) -> None:
        if fs is None or not all(callable(getattr(fs, method, None)) for method in ("save", "delete", "url")):
            raise ConfigurationError(f"{type(self).__name__} needs fs=<a flask_fs.Storage>, not {fs!r}")
        self.fs = fs
        self.upload_to = upload_to
        self.basename = basename

    def _reference_settings(self) -> dict[str, Any]:
        """The field's settings that each reference carries."""
        return {"fs": self.fs, "upload_to": self.upload_to, "basename": self.basename}

    def make_reference(
        self, instance: Any = None, name: str | None = None, lifecycle: Lifecycle | None = None, **data: Any
    ) -> FileReference:
        """A reference with this field's settings, bound to ``instance``, holding stored ``data``."""
        return self.reference_class(
            instance=instance, name=name, lifecycle=lifecycle, **self._reference_settings(), **data
        )

    def stored_data(self, value: Any) -> dict[str, Any]:
        """The stored keys of a stored value (a dict, a bare filename or a reference); TypeError otherwise."""
        if value is None:
            return {}
        if isinstance(value, FileReference):
            value = value.to_mongo()
        if isinstance(value, str):
            return {"filename": value} if value else {}
        if isinstance(value, Mapping):
            return {key: value[key] for key in self.reference_class.stored_keys if value.get(key) is not None}
        raise TypeError(f"expected a file reference, a dict or a filename, not {type(value).__name__}")


class ImageSpec(FileSpec):
    """The options of an image field: ``max_size`` (px) bounds the displayed image, ``thumbnails``
    lists square thumbnail sizes (px), ``optimize`` overrides ``FS_IMAGES_OPTIMIZE``, ``max_pixels``
    the ``FS_IMAGES_MAX_PIXELS`` limit. With ``render_later`` the upload is checked from its header,
    stored and displayed at once, and its thumbnails are rendered by a background job
    (:mod:`flask_fs.jobs`); ``max_size`` does not apply then."""

    reference_class = ImageReference

    def _configure_images(
        self,
        max_size: int | None,
        thumbnails: Iterable[int] | None,
        optimize: bool | None,
        max_pixels: int | None,
        render_later: bool = False,
    ) -> None:
        sizes = list(thumbnails or ())
        for size in [*sizes, max_size, max_pixels]:
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
                raise ConfigurationError(f"image sizes and limits are positive integers, not {size!r}")
        self.max_size = max_size
        self.thumbnail_sizes = sorted(set(sizes))
        self.optimize = optimize
        self.max_pixels = max_pixels
        self.render_later = render_later

    def _reference_settings(self) -> dict[str, Any]:
        return {
            **super()._reference_settings(),
            "max_size": self.max_size,
            "thumbnail_sizes": self.thumbnail_sizes,
            "optimize": self.optimize,
            "max_pixels": self.max_pixels,
            "render_later": self.render_later,
        }


def _comparable(reference: FileReference) -> dict[str, Any]:
    """The stored value with the bbox as a list: a bbox given as a tuple equals the one loaded back."""
    data = reference.to_mongo()
    if data.get("bbox"):
        data["bbox"] = list(data["bbox"])
    return data


def _is_filestorage(upload: Any) -> bool:
    """Whether ``upload`` is a Werkzeug ``FileStorage`` (or looks like one: ``stream`` and ``filename``)."""
    return hasattr(upload, "stream") and hasattr(upload, "filename")


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


#: Renditions seen stored, by (storage, name): once rendered they stay, so each is looked up once.
_RENDERED: set[tuple[str, str]] = set()


def _rendered(storage: FieldStorage, name: str) -> bool:
    """Whether a rendition made by a job exists yet (remembered once it does)."""
    key = (storage.name, name)
    if key not in _RENDERED:
        if not storage.exists(name):
            return False
        if len(_RENDERED) > 100_000:
            _RENDERED.clear()
        _RENDERED.add(key)
    return True


def _rewind(upload: Upload) -> None:
    """Rewind a seekable upload to its start."""
    stream = upload.stream if _is_filestorage(upload) else upload
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        stream.seek(0)


@contextmanager
def _seekable(stream: IO[bytes]) -> Iterator[IO[bytes]]:
    """The intake's stream as a seekable one: read through once into a spool (the size limit and the
    content check apply while it is read), unless it is already a plain seekable file."""
    if isinstance(stream, io.IOBase) and not isinstance(stream, (LimitedReader,)) and stream.seekable():
        yield stream
        return
    with spooled(stream) as spool:
        yield spool
