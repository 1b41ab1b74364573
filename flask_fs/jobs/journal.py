"""The durable record of jobs: an SQLite file that survives a killed process.

Each job is a row: its task name, its arguments (plain JSON data), its state (``pending``,
``running``, ``failed``; a job that succeeds is removed), how many attempts it made, and the last
error. A promotion job also names the file it holds in the cache, so readers can tell that the file
is still there (:meth:`Journal.is_pending`). Migrations record each file copied, so a restarted
migration skips them. Every process of one machine (app processes, workers) can share one journal.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["JobRecord", "Journal", "owner_id"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    args TEXT NOT NULL,
    storage TEXT,
    filename TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    owner TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_held ON jobs(storage, filename) WHERE filename IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS migrated (
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    filename TEXT NOT NULL,
    checksum TEXT NOT NULL,
    PRIMARY KEY (source, target, filename)
);
"""


def owner_id() -> str:
    """Who runs a job: ``host:pid``, so a restarted process can tell its dead predecessors' jobs."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class JobRecord:
    """One job as the journal holds it."""

    id: str
    task: str
    args: dict[str, Any]
    state: str
    attempts: int
    error: str | None
    owner: str | None
    created: float
    updated: float


class Journal:
    """Jobs and migration progress in an SQLite file (WAL mode, one connection per thread and process)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._local = threading.local()
        with self._connection() as db:
            db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"<Journal {self.path!r}>"

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():  # a forked worker must not share its parent's connection
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db, self._local.pid = db, os.getpid()
        yield db

    # -- jobs ------------------------------------------------------------------------------------

    def add(self, task: str, args: dict[str, Any], storage: str | None = None, filename: str | None = None) -> str:
        """Record a new pending job; ``storage``/``filename`` name the file it holds in the cache, if any."""
        job_id = uuid.uuid4().hex
        now = time.time()
        with self._connection() as db:
            db.execute(
                "INSERT INTO jobs (id, task, args, storage, filename, state, created, updated) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                (job_id, task, json.dumps(args), storage, filename, now, now),
            )
        return job_id

    def get(self, job_id: str) -> JobRecord | None:
        """The job ``job_id``, or None once it succeeded (or never existed)."""
        with self._connection() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def jobs(self, states: Iterable[str] = ("pending", "running", "failed")) -> list[JobRecord]:
        """The jobs in ``states``, oldest first."""
        states = tuple(states)
        marks = ", ".join("?" * len(states))
        with self._connection() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY created", states)
            return [_record(row) for row in rows]

    def claim(self, job_id: str, owner: str) -> JobRecord | None:
        """Mark a pending job running for ``owner``; None if it is not pending (done, failed, or taken)."""
        with self._connection() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'running', owner = ?, updated = ? WHERE id = ? AND state = 'pending'",
                (owner, time.time(), job_id),
            )
            if cursor.rowcount != 1:
                return None
        return self.get(job_id)

    def attempted(self, job_id: str, error: str | None) -> None:
        """Count one more attempt, keeping its error (None when it succeeded)."""
        with self._connection() as db:
            db.execute(
                "UPDATE jobs SET attempts = attempts + 1, error = ?, updated = ? WHERE id = ?",
                (error, time.time(), job_id),
            )

    def done(self, job_id: str) -> None:
        """Forget a job that succeeded (its file, if any, is no longer pending)."""
        with self._connection() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def failed(self, job_id: str) -> None:
        """Mark a job failed for good (its error stays; ``retry`` makes it pending again)."""
        with self._connection() as db:
            db.execute(
                "UPDATE jobs SET state = 'failed', owner = NULL, updated = ? WHERE id = ?", (time.time(), job_id)
            )

    def retry(self, job_ids: Iterable[str] | None = None) -> list[str]:
        """Make failed jobs (these, or all) pending again with a fresh count of attempts; return their ids."""
        with self._connection() as db:
            if job_ids is None:
                ids = [row[0] for row in db.execute("SELECT id FROM jobs WHERE state = 'failed'")]
            else:
                ids = [
                    i
                    for i in job_ids
                    if db.execute("SELECT 1 FROM jobs WHERE id = ? AND state = 'failed'", (i,)).fetchone()
                ]
            for job_id in ids:
                db.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, updated = ? WHERE id = ?", (time.time(), job_id)
                )
        return ids

    def release_dead(self) -> int:
        """Make pending again the running jobs of processes of this host that died (kill -9, crash)."""
        host = socket.gethostname()
        released = 0
        with self._connection() as db:
            for job_id, owner in db.execute("SELECT id, owner FROM jobs WHERE state = 'running'").fetchall():
                owner_host, _, pid = (owner or "").rpartition(":")
                if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                    cursor = db.execute(
                        "UPDATE jobs SET state = 'pending', owner = NULL, updated = ? WHERE id = ? AND owner = ?",
                        (time.time(), job_id, owner),
                    )
                    released += cursor.rowcount
        return released

    def is_pending(self, storage: str, filename: str) -> bool:
        """Whether a job not yet done holds ``filename`` of ``storage`` (in the promotion cache)."""
        with self._connection() as db:
            row = db.execute(
                "SELECT 1 FROM jobs WHERE storage = ? AND filename = ? LIMIT 1", (storage, filename)
            ).fetchone()
        return row is not None

    def held(self, storage: str) -> list[str]:
        """The names of ``storage`` that jobs not yet done hold."""
        with self._connection() as db:
            rows = db.execute(
                "SELECT DISTINCT filename FROM jobs WHERE storage = ? AND filename IS NOT NULL", (storage,)
            )
            return [row[0] for row in rows]

    # -- migrations ------------------------------------------------------------------------------

    def migrated(self, source: str, target: str) -> dict[str, str]:
        """The files already copied from ``source`` to ``target``, with their checksums."""
        with self._connection() as db:
            rows = db.execute(
                "SELECT filename, checksum FROM migrated WHERE source = ? AND target = ?", (source, target)
            )
            return dict(rows.fetchall())

    def record_migrated(self, source: str, target: str, filename: str, checksum: str) -> None:
        """Remember that ``filename`` was copied (and verified when asked) with this checksum."""
        with self._connection() as db:
            db.execute(
                "INSERT OR REPLACE INTO migrated (source, target, filename, checksum) VALUES (?, ?, ?, ?)",
                (source, target, filename, checksum),
            )

    def forget_migration(self, source: str, target: str) -> None:
        """Drop the progress of a migration (a new one then checks every file again)."""
        with self._connection() as db:
            db.execute("DELETE FROM migrated WHERE source = ? AND target = ?", (source, target))


_COLUMNS = "id, task, args, state, attempts, error, owner, created, updated"


def _record(row: tuple[Any, ...]) -> JobRecord:
    job_id, task, args, state, attempts, error, owner, created, updated = row
    return JobRecord(job_id, task, json.loads(args), state, attempts, error, owner, created, updated)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
