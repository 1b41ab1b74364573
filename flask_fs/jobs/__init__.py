"""Work off the request path: background promotion, deferred deletes and thumbnails, migrations.

Jobs are plain data (a task name, storage and file names) recorded in a durable journal (SQLite in
the instance folder) before they run, on a thread pool in the app process by default or on RQ
workers (``FS_JOBS_BACKEND = "rq"``). A killed process resumes its unfinished jobs at the next
start; each job is retried with backoff and ends ``failed`` with its error when it keeps failing.

>>> from flask_fs.jobs import TASKS
>>> sorted(TASKS)
['delete', 'promote', 'thumbnails']
"""

from __future__ import annotations

from . import tasks as _tasks  # noqa: F401 - registers the built-in tasks
from .ext import SETTINGS, delete_later, init_app, jobs_of, layer, thumbnails_later, unlayered
from .journal import JobRecord, Journal
from .migrate import MigrationReport, migrate
from .runner import TASKS, Jobs, ThreadDispatcher, job_failed, job_started, job_succeeded, task

__all__ = [
    "SETTINGS",
    "TASKS",
    "JobRecord",
    "Jobs",
    "Journal",
    "MigrationReport",
    "ThreadDispatcher",
    "delete_later",
    "init_app",
    "job_failed",
    "job_started",
    "job_succeeded",
    "jobs_of",
    "layer",
    "migrate",
    "task",
    "thumbnails_later",
    "unlayered",
]
