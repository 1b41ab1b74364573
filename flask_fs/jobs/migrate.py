"""Copy every file of one storage to another: parallel, streaming, checksummed, resumable.

Each file is streamed from the source to the target (bounded memory) while its SHA-256 is
computed; with ``verify`` the target's copy is read back and must give the same digest. A copied
file is recorded in the journal, so a migration killed at any point (even ``kill -9``) restarts
where it stopped without copying finished files again. Targets write atomically: a file cut short
never appears under its name.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..backends import BaseBackend
from ..errors import FileNotFound, FSError
from ..streams import CHUNK_SIZE, sha256_hex
from .journal import Journal

__all__ = ["MigrationReport", "migrate"]


@dataclass
class MigrationReport:
    """What a migration did: names copied, skipped (done before), failed (with the error), bytes, time."""

    copied: int = 0
    skipped: int = 0
    deleted: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One line for people."""
        rate = self.bytes / self.seconds / 1024**2 if self.seconds else 0.0
        return (
            f"{self.copied} copied, {self.skipped} already done, {len(self.failed)} failed, "
            f"{self.deleted} deleted from the source; {self.bytes / 1024**2:.1f} MiB in {self.seconds:.1f} s "
            f"({rate:.1f} MiB/s)"
        )


class _Hashing:
    """A read-only stream that hashes what is read through it (not seekable: read once, in order)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.stream.close()


def digest(backend: BaseBackend, filename: str) -> str:
    """``sha256:<hex>`` of a stored file, streamed."""
    return "sha256:" + sha256_hex(backend.read_chunks(filename, CHUNK_SIZE))


def migrate(
    source: BaseBackend,
    target: BaseBackend,
    journal: Journal,
    key: tuple[str, str],
    *,
    workers: int = 8,
    verify: bool = False,
    delete_source: bool = False,
    progress: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Copy every file of ``source`` missing from the journal's record of migration ``key`` to ``target``.

    ``key`` names the migration (the storage names). ``delete_source`` deletes each source file once
    its copy is recorded (and verified, with ``verify``). ``progress(name)`` is called after each file.
    """
    report = MigrationReport()
    start = time.perf_counter()
    done = journal.migrated(*key)
    lock = threading.Lock()

    def one(name: str) -> None:
        try:
            if name in done:
                if delete_source:  # recorded, but killed before the source copy was deleted
                    source.delete(name)
                with lock:
                    report.skipped += 1
                return
            with source.open_read(name) as stream:
                hashing = _Hashing(stream)
                target.save(hashing, name, overwrite=True)  # type: ignore[arg-type]
            checksum = "sha256:" + hashing.hash.hexdigest()
            if verify and digest(target, name) != checksum:
                raise FSError(f"{name!r}: the target's copy does not match the source (checksum)")
            journal.record_migrated(*key, name, checksum)
            if delete_source:
                source.delete(name)
            with lock:
                report.copied += 1
                report.bytes += hashing.size
                report.deleted += int(delete_source)
        except FileNotFound:  # deleted from the source since the listing: nothing to copy
            with lock:
                report.skipped += 1
        except Exception as error:
            with lock:
                report.failed[name] = f"{type(error).__name__}: {error}"
        finally:
            if progress is not None:
                progress(name)

    names = list(source.list_files())
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="flask-fs-migrate") as pool:
        for _ in pool.map(one, names):
            pass
    report.seconds = time.perf_counter() - start
    return report
