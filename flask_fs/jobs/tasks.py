"""The built-in tasks: promote a background upload, delete files, render thumbnails.

Each takes plain data (a storage name, file names) and is idempotent: run again after a kill, it
finishes the work without duplicating it.
"""

from __future__ import annotations

from typing import Any

from ..backends.layered import PromotedBackend
from ..errors import FSError
from .runner import Jobs, task

__all__ = ["delete", "promote", "thumbnails"]


@task("promote")
def promote(jobs: Jobs, storage: str, filename: str, headers: dict[str, str] | None = None) -> None:
    """Move ``filename`` of ``storage`` from the promotion cache to the storage's backend."""
    backend = jobs.storage(storage).backend
    if not isinstance(backend, PromotedBackend):
        raise FSError(f"storage {storage!r} has no promotion cache: call flask_fs.jobs.init_app(app)")
    backend.promote(filename, headers)


@task("delete")
def delete(jobs: Jobs, storage: str, filenames: list[str]) -> None:
    """Delete these files of ``storage`` (missing ones are already done)."""
    bound = jobs.storage(storage)
    for filename in filenames:
        bound.delete(filename)


@task("thumbnails")
def thumbnails(
    jobs: Jobs,
    storage: str,
    filename: str,
    renditions: dict[str, str],
    square: bool = True,
    optimize: bool = False,
    output_format: str | None = None,
    max_pixels: int | None = None,
    missing_ok: bool = False,
) -> None:
    """Render the image ``filename`` of ``storage`` at each size of ``renditions`` (``{"64": name}``)
    and store each under its name, replacing an older rendering. ``missing_ok``: a missing image is
    nothing to do (an image field's upload may be replaced or rolled back before the job runs)."""
    from ..images import render_all

    bound = jobs.storage(storage)
    sizes = sorted({int(size) for size in renditions})
    if missing_ok and not bound.exists(filename):  # a field's upload, replaced or rolled back since
        return
    with bound.open(filename, "rb") as source:
        result: Any = render_all(
            source, sizes, square=square, optimize=optimize, max_pixels=max_pixels, output_format=output_format
        )
    for size in sizes:
        bound.backend.save(result.thumbnails[size], renditions[str(size)], overwrite=True)
