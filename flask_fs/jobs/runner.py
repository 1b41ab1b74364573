"""Running jobs: the task registry, retries with backoff, signals, and the embedded thread pool.

A job is a task name and plain-data arguments (storage names, file names), recorded in the
:class:`~flask_fs.jobs.journal.Journal` before it is handed to a dispatcher: the in-process
:class:`ThreadDispatcher` (the default) or RQ (:mod:`flask_fs.jobs.redis_queue`). Whoever runs it
calls :meth:`Jobs.execute`, which claims it in the journal, so a job handed out twice runs once.
Tasks are idempotent: running one again after a kill finishes the work without duplicating it.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from blinker import Namespace

from ..errors import FSError
from .journal import JobRecord, Journal, owner_id

__all__ = ["TASKS", "Dispatcher", "Jobs", "ThreadDispatcher", "job_failed", "job_started", "job_succeeded", "task"]

_namespace = Namespace()
#: Sent (sender: the task name) when an attempt starts: ``job_id``, ``args``, ``attempt`` (1, 2...).
job_started = _namespace.signal("job-started")
#: Sent when a job succeeded: ``job_id``, ``args``, ``attempt``, ``duration`` (seconds).
job_succeeded = _namespace.signal("job-succeeded")
#: Sent when an attempt failed: ``job_id``, ``args``, ``attempt``, ``error``, and ``final`` (no retry left).
job_failed = _namespace.signal("job-failed")

Task = Callable[..., None]
#: The registered tasks, by name: each is called as ``task(jobs, **args)``.
TASKS: dict[str, Task] = {}


def task(name: str) -> Callable[[Task], Task]:
    """Register ``function(jobs, **args)`` as the task ``name``; it must be idempotent."""

    def register(function: Task) -> Task:
        TASKS[name] = function
        return function

    return register


class Dispatcher(Protocol):
    """Hands a recorded job over to whatever runs it."""

    def dispatch(self, jobs: Jobs, job_id: str) -> None: ...

    def close(self) -> None: ...


class Jobs:
    """Submit, run, retry and list jobs; tasks reach storages through ``storage(name)``.

    ``storage`` returns a :class:`~flask_fs.bound.BoundStorage` by name (the Flask layer passes
    ``lambda name: storages[name].bind(app)``). A job is tried ``retries`` times, waiting
    ``backoff`` seconds after the first failure, then twice as long after each next one.
    """

    def __init__(
        self,
        journal: Journal,
        storage: Callable[[str], Any],
        dispatcher: Dispatcher | None = None,
        retries: int = 5,
        backoff: float = 1.0,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.journal = journal
        self.storage = storage
        self.dispatcher: Dispatcher = dispatcher or ThreadDispatcher()
        self.retries = max(1, retries)
        self.backoff = backoff
        #: What tasks may need beyond storages (the cache backends of promoted storages...).
        self.context: dict[str, Any] = dict(settings or {})

    def __repr__(self) -> str:
        return f"<Jobs on {type(self.dispatcher).__name__}, journal {self.journal.path!r}>"

    def submit(self, task_name: str, storage: str | None = None, filename: str | None = None, **args: Any) -> str:
        """Record a job of ``task_name`` and hand it to the dispatcher; return its id.

        ``storage``/``filename`` are passed to the task too; when ``holds`` is in ``args`` and true,
        the job is recorded as holding that file (see :meth:`Journal.is_pending`).
        """
        if task_name not in TASKS:
            raise FSError(f"unknown job task {task_name!r}; known tasks: {', '.join(sorted(TASKS))}")
        holds = args.pop("holds", False)
        if storage is not None:
            args["storage"] = storage
        if filename is not None:
            args["filename"] = filename
        job_id = self.journal.add(task_name, args, storage if holds else None, filename if holds else None)
        self.dispatcher.dispatch(self, job_id)
        return job_id

    def execute(self, job_id: str) -> str:
        """Run a recorded job with its retries; return its final state (``done``, ``failed``, ``skipped``).

        ``skipped`` means another runner has it, or it is already done.
        """
        record = self.journal.claim(job_id, owner_id())
        if record is None:
            return "skipped"
        function = TASKS.get(record.task)
        attempt = record.attempts
        while True:
            attempt += 1
            job_started.send(record.task, job_id=job_id, args=record.args, attempt=attempt)
            start = time.perf_counter()
            try:
                if function is None:
                    raise FSError(f"unknown job task {record.task!r} (is the module defining it imported?)")
                function(self, **record.args)
            except Exception as error:
                message = f"{type(error).__name__}: {error}"
                self.journal.attempted(job_id, message)
                final = attempt >= self.retries or function is None
                job_failed.send(record.task, job_id=job_id, args=record.args, attempt=attempt, error=error, final=final)
                if final:
                    self.journal.failed(job_id)
                    return "failed"
                time.sleep(self.backoff * 2 ** (attempt - 1 - record.attempts))
                continue
            self.journal.done(job_id)
            duration = time.perf_counter() - start
            job_succeeded.send(record.task, job_id=job_id, args=record.args, attempt=attempt, duration=duration)
            return "done"

    def resume(self) -> list[str]:
        """Hand out again the pending jobs, and those whose process died while running them."""
        self.journal.release_dead()
        ids = [record.id for record in self.journal.jobs(("pending",))]
        for job_id in ids:
            self.dispatcher.dispatch(self, job_id)
        return ids

    def retry(self, job_ids: list[str] | None = None) -> list[str]:
        """Make failed jobs (these, or all) pending again and hand them out; return their ids."""
        ids = self.journal.retry(job_ids)
        for job_id in ids:
            self.dispatcher.dispatch(self, job_id)
        return ids

    def pending(self) -> list[JobRecord]:
        """The jobs not finished yet: pending, running, and failed."""
        return self.journal.jobs()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the dispatcher has nothing queued or running (thread pool only); False on timeout."""
        wait = getattr(self.dispatcher, "wait", None)
        return True if wait is None else wait(timeout)

    def close(self) -> None:
        """Stop the dispatcher's threads (queued jobs stay pending in the journal)."""
        self.dispatcher.close()


class ThreadDispatcher:
    """Runs jobs on ``workers`` daemon threads of this process.

    Daemon threads do not hold the process open at exit; a job cut short stays ``running`` for its
    dead process and is resumed by the next start (:meth:`Jobs.resume`).
    """

    def __init__(self, workers: int = 4) -> None:
        self.workers = max(1, workers)
        self._queue: queue.Queue[tuple[Jobs, str] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def dispatch(self, jobs: Jobs, job_id: str) -> None:
        with self._lock:
            if not self._threads:
                for number in range(self.workers):
                    thread = threading.Thread(target=self._work, name=f"flask-fs-jobs-{number}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
        self._queue.put((jobs, job_id))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                jobs, job_id = item
                jobs.execute(job_id)
            except Exception:  # the journal itself failed: the job stays recorded, resumed at next start
                traceback.print_exc()
            finally:
                self._queue.task_done()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued job ran; False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)


class InlineDispatcher:
    """Runs each job at once in the caller's thread (the ``flask fs jobs`` commands use it)."""

    def dispatch(self, jobs: Jobs, job_id: str) -> None:
        jobs.execute(job_id)

    def close(self) -> None:
        pass
