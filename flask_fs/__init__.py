"""Simple, production-grade file storages for Flask: local disk, S3, Swift and GridFS."""

from __future__ import annotations

from .errors import (
    BackendError,
    BatchError,
    ConfigurationError,
    ContentMismatch,
    FileExists,
    FileNotFound,
    FileTooLarge,
    FSError,
    ImageError,
    ImageTooLarge,
    InvalidFileName,
    InvalidImage,
    OperationNotSupported,
    UnauthorizedFileType,
    UploadNotAllowed,
)
from .files import (
    ALL,
    ARCHIVES,
    AUDIO,
    DATA,
    DEFAULTS,
    DOCUMENTS,
    EXECUTABLES,
    IMAGES,
    NONE,
    SCRIPTS,
    TEXT,
    All,
    AllExcept,
)
from .storage import Storage, by_name, init_app

__version__ = "1.0.0.dev0"

__all__ = [
    "ALL",
    "ARCHIVES",
    "AUDIO",
    "DATA",
    "DEFAULTS",
    "DOCUMENTS",
    "EXECUTABLES",
    "IMAGES",
    "NONE",
    "SCRIPTS",
    "TEXT",
    "All",
    "AllExcept",
    "BackendError",
    "ConfigurationError",
    "ContentMismatch",
    "FSError",
    "BatchError",
    "FileExists",
    "FileNotFound",
    "FileTooLarge",
    "ImageError",
    "ImageTooLarge",
    "InvalidFileName",
    "InvalidImage",
    "OperationNotSupported",
    "Storage",
    "UnauthorizedFileType",
    "UploadNotAllowed",
    "by_name",
    "init_app",
]
