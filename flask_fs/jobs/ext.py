"""The Flask layer of jobs: settings from ``app.config``, the runtime on the app, the storages' layers.

``init_app(app)`` (after ``flask_fs.init_app``) reads the ``FS_JOBS_*`` settings, opens the journal,
puts a promotion cache in front of every storage (and a mirror where ``FS_JOBS_MIRROR`` asks), and
resumes the jobs a previous process left unfinished.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from ..backends.layered import MirrorBackend, PrefixedBackend, PromotedBackend
from ..backends.local import LocalBackend
from ..config import URL, Setting
from ..errors import ConfigurationError, FSError
from ..storage import state
from .journal import Journal
from .runner import Jobs, ThreadDispatcher

__all__ = ["SETTINGS", "delete_later", "init_app", "jobs_of", "layer", "thumbnails_later", "unlayered"]

#: The ``FS_JOBS_*`` settings, read by :func:`init_app` under these names only.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "FS_JOBS_BACKEND",
        str,
        "thread",
        choices=("thread", "rq"),
        doc="Where jobs run: ``thread`` (a thread pool in the app process) or ``rq`` (RQ workers, "
        "started with ``flask fs jobs worker``).",
    ),
    Setting("FS_JOBS_REDIS_URL", URL, "redis://127.0.0.1:6379/0", secret=False, doc="The Redis of the ``rq`` backend."),
    Setting("FS_JOBS_QUEUE", str, "flask-fs", doc="The RQ queue name."),
    Setting("FS_JOBS_WORKERS", int, 4, doc="Threads running jobs in the app process (``thread`` backend)."),
    Setting("FS_JOBS_RETRIES", int, 5, doc="Attempts of a job before it is marked ``failed``."),
    Setting(
        "FS_JOBS_BACKOFF",
        float,
        1.0,
        doc="Seconds to wait after a job's first failed attempt; the wait doubles after each next one.",
    ),
    Setting(
        "FS_JOBS_JOURNAL",
        str,
        shown_default="``<instance_path>/fs-jobs.sqlite3``",
        doc="Where jobs are recorded: an SQLite file (shared by the processes of one machine), or a "
        "``redis://`` URL (shared by workers on several machines).",
    ),
    Setting(
        "FS_JOBS_CACHE_ROOT",
        str,
        shown_default="``<instance_path>/fs-cache``",
        doc="Folder where background saves wait for their promotion (storage ``files`` in ``<root>/files``), "
        "on a fast local disk. Workers must reach it: same machine, or see ``FS_JOBS_CACHE``.",
    ),
    Setting(
        "FS_JOBS_CACHE",
        str,
        shown_default="a local folder (``FS_JOBS_CACHE_ROOT``)",
        doc="Name of a storage registered on the app to keep background saves in instead (storage "
        "``files`` under ``files/``): one every worker reaches, e.g. on a shared file system.",
    ),
    Setting(
        "FS_JOBS_MIRROR",
        dict,
        {},
        doc='``{"files": "files_next"}``: storage ``files`` also writes every file to ``files_next`` and '
        "reads from it the files it does not have (a migration without downtime).",
    ),
    Setting("FS_JOBS_TIMEOUT", int, 3600, doc="Longest run of one job on RQ, in seconds."),
)

_NAMES = {setting.name for setting in SETTINGS}

#: Whether ``init_app`` resumes unfinished jobs; the ``flask fs jobs`` commands turn it off, to decide themselves.
autoresume = True


def settings_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``FS_JOBS_*`` settings of ``config``, converted, with their defaults; unknown keys refused."""
    for key in config:
        if isinstance(key, str) and key.startswith("FS_JOBS_") and key not in _NAMES:
            close = difflib.get_close_matches(key, sorted(_NAMES), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigurationError(f"unknown setting {key}{hint}")
    values = {}
    for setting in SETTINGS:
        value = config.get(setting.name)
        values[setting.name] = setting.default_for("") if value is None else setting.coerce(value, setting.name)
    return values


def init_app(app: Flask, *, resume: bool = True) -> Jobs:
    """Set up background jobs on ``app`` (call it after ``flask_fs.init_app``); return the runtime.

    ``resume`` hands out the jobs left unfinished by an earlier process (the ``flask fs jobs``
    commands pass False and decide themselves).
    """
    settings = settings_of(app.config)
    fs_state = state(app)
    where = settings["FS_JOBS_JOURNAL"] or os.path.join(app.instance_path, "fs-jobs.sqlite3")
    if where.startswith(("redis://", "rediss://", "unix://")):
        from .redis_journal import RedisJournal

        journal: Any = RedisJournal(where, settings["FS_JOBS_QUEUE"])
    else:
        journal = Journal(where)
    if settings["FS_JOBS_BACKEND"] == "rq":
        from .redis_queue import RQDispatcher

        dispatcher: Any = RQDispatcher(
            settings["FS_JOBS_REDIS_URL"], settings["FS_JOBS_QUEUE"], settings["FS_JOBS_TIMEOUT"]
        )
    else:
        dispatcher = ThreadDispatcher(settings["FS_JOBS_WORKERS"])

    def storage(name: str) -> Any:
        if name not in fs_state.storages:
            raise FSError(f"no storage named {name!r} on app {app.name!r}")
        return fs_state.storages[name].bind(app)

    jobs = Jobs(journal, storage, dispatcher, settings["FS_JOBS_RETRIES"], settings["FS_JOBS_BACKOFF"], settings)
    previous = app.extensions.get("fs_jobs")
    if previous is not None:
        previous.close()
    app.extensions["fs_jobs"] = jobs
    layer(app)
    if resume and autoresume:
        jobs.resume()
    return jobs


def layer(app: Flask) -> None:
    """Put a mirror (where asked) and a promotion cache in front of each bound storage of ``app``.

    ``init_app`` does it; call it again after registering (or re-configuring) storages later.
    """
    jobs = jobs_of(app)
    settings = jobs.context
    bound = state(app).bound
    mirrors = settings["FS_JOBS_MIRROR"]
    for name, secondary in mirrors.items():
        for storage in (name, secondary):
            if storage not in bound:
                raise ConfigurationError(f"FS_JOBS_MIRROR: no storage named {storage!r} on app {app.name!r}")
    cache_root = settings["FS_JOBS_CACHE_ROOT"] or os.path.join(app.instance_path, "fs-cache")
    shared = settings["FS_JOBS_CACHE"]
    if shared and shared not in bound:
        raise ConfigurationError(f"FS_JOBS_CACHE: no storage named {shared!r} on app {app.name!r}")
    plain = {name: unlayered(binding.backend) for name, binding in bound.items()}
    for name, binding in bound.items():
        binding.jobs = jobs
        backend = plain[name]
        if name == shared:
            binding.backend = backend
            continue
        if name in mirrors:
            backend = MirrorBackend(backend, plain[mirrors[name]])
        if shared:
            cache: Any = PrefixedBackend(plain[shared], name)
        else:
            cache = LocalBackend(name, {"root": os.path.join(cache_root, name)})
        binding.backend = PromotedBackend(
            backend,
            cache,
            pending=lambda filename, name=name: jobs.journal.is_pending(name, filename),
            promote=lambda filename, headers, name=name: jobs.submit(
                "promote", name, filename, headers=headers, holds=True
            ),
        )


def unlayered(backend: Any) -> Any:
    """The backend behind the promotion cache and mirror layers of ``init_app``."""
    while isinstance(backend, (PromotedBackend, MirrorBackend)):
        backend = backend.main
    return backend


def jobs_of(app: Flask | None = None) -> Jobs:
    """The jobs runtime of ``app`` (default: the current app); FSError if ``init_app`` was not called."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return app.extensions["fs_jobs"]
    except KeyError:
        raise FSError(f"background jobs are not set up on app {app.name!r}: call flask_fs.jobs.init_app(app)") from None


def delete_later(storage: Any, *filenames: str, app: Flask | None = None) -> str:
    """Delete these files of ``storage`` (a Storage or its name) in a job, retried until done; return its id."""
    name = storage if isinstance(storage, str) else storage.name
    return jobs_of(app).submit("delete", name, filenames=list(filenames))


def thumbnails_later(
    storage: Any, filename: str, renditions: Mapping[int, str], *, app: Flask | None = None, **options: Any
) -> str:
    """Render thumbnails of the image ``filename`` in a job: ``renditions`` maps each size to the name
    to store it under; ``options`` are ``square``, ``optimize``, ``output_format``, ``max_pixels``."""
    name = storage if isinstance(storage, str) else storage.name
    return jobs_of(app).submit(
        "thumbnails", name, filename, renditions={str(size): target for size, target in renditions.items()}, **options
    )
