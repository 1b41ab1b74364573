"""Every error flask_fs raises on purpose: catch :class:`FSError` to catch them all."""

from __future__ import annotations


class FSError(Exception):
    """Base class of every flask_fs error."""


class ConfigurationError(FSError):
    """A storage's settings are missing, unknown or inconsistent (raised by ``init_app``)."""


class InvalidFileName(FSError, ValueError):
    """A storage-relative name is unsafe (traversal, absolute path, NUL byte, ...) or empty."""


class FileExists(FSError, FileExistsError):
    """The target name is taken and overwriting was not allowed."""


class FileNotFound(FSError, FileNotFoundError):
    """The named file is not in the storage."""


class UnauthorizedFileType(FSError):
    """The upload's extension is not allowed in this storage."""


class UploadNotAllowed(FSError):
    """The upload was refused for another reason than its type (see subclasses)."""


class ContentMismatch(UploadNotAllowed):
    """The upload's bytes are not of the type its extension names (a GIF or HTML named ``x.jpg``)."""


class FileTooLarge(UploadNotAllowed):
    """The upload is bigger than the storage's ``MAX_SIZE`` setting."""


class OperationNotSupported(FSError):
    """The storage's backend cannot do this (e.g. ``path()`` on an object store)."""


class BackendError(FSError):
    """The storage server failed or went away; the original exception is in ``__cause__``."""


class ImageError(FSError, ValueError):
    """An image could not be processed."""


class InvalidImage(ImageError):
    """The data is not an image Pillow can decode, or it is truncated."""


class ImageTooLarge(ImageError):
    """The image has more pixels than allowed (a possible decompression bomb)."""


class UploadTokenInvalid(FSError):
    """A direct-upload token is forged, damaged, or was issued for another storage or app."""


class UploadTokenExpired(UploadTokenInvalid):
    """A direct-upload token is past its ``UPLOAD_EXPIRES`` lifetime."""


class UploadTokenUsed(UploadTokenInvalid):
    """A direct-upload token was already finalized: each token stores at most one file."""


class UploadIncomplete(UploadNotAllowed):
    """A direct upload's stored bytes are not the size or checksum its token announced."""


class BatchError(FSError):
    """Some items of a batch operation (``save_many``, ``read_many``) failed; the others were done.

    ``results`` has one entry per item, in order: its result, or the exception it raised.
    ``errors`` maps the index of each failed item to that exception.
    """

    def __init__(self, results: list, labels: list[str]) -> None:
        self.results = results
        self.errors = {i: r for i, r in enumerate(results) if isinstance(r, BaseException)}
        shown = "; ".join(f"{labels[i]}: {type(e).__name__}: {e}" for i, e in list(self.errors.items())[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"{len(self.errors)} of {len(results)} items failed: {shown}{more}")
