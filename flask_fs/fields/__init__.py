"""The field core: file and image references shared by :mod:`flask_fs.mongo` and :mod:`flask_fs.sqla`.

It imports neither Flask nor a database library: it works on the storage object it is given.
"""

from __future__ import annotations

from .core import FieldStorage, FileReference, FileSpec, ImageReference, ImageSpec, Lifecycle, delete_files

__all__ = ["FieldStorage", "FileReference", "FileSpec", "ImageReference", "ImageSpec", "Lifecycle", "delete_files"]
