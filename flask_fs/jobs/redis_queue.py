"""Jobs on RQ with Redis: the app records and enqueues them, ``flask fs jobs worker`` runs them.

The journal (an SQLite file) is shared by the app and its workers, so they run on one machine or
share its folder. Workers load the app (``flask --app ... fs jobs worker``), which gives their
jobs the same storages and settings.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ConfigurationError, FSError
from .runner import Jobs

__all__ = ["RQDispatcher", "perform"]

log = logging.getLogger(__name__)

#: The jobs runtime of this worker process, set by ``flask fs jobs worker`` before it starts working.
current: Jobs | None = None


def perform(job_id: str) -> str:
    """What an RQ worker runs: the recorded job ``job_id`` with its retries."""
    if current is None:
        raise FSError("this RQ worker has no flask_fs app: start it with `flask --app APP fs jobs worker`")
    return current.execute(job_id)


class RQDispatcher:
    """Enqueues each job's id on the RQ queue ``queue`` of the Redis at ``url``."""

    def __init__(self, url: str, queue: str = "flask-fs", timeout: int = 3600) -> None:
        try:
            from redis import Redis
            from rq import Queue
        except ImportError as exc:
            raise ConfigurationError(f"FS_JOBS_BACKEND = 'rq' needs RQ ({exc}): pip install 'flask-fs[jobs]'") from exc
        self.url = url
        self.connection = Redis.from_url(url)
        self.queue = Queue(queue, connection=self.connection)
        self.timeout = timeout

    def dispatch(self, jobs: Jobs, job_id: str) -> None:
        from redis.exceptions import RedisError

        try:
            self.queue.enqueue(perform, job_id, job_timeout=self.timeout, result_ttl=0, failure_ttl=86400)
        except RedisError as exc:  # the job is in the journal: the next worker start hands it out
            log.warning("job %s recorded but not enqueued (Redis at FS_JOBS_REDIS_URL: %s)", job_id, exc)

    def worker(self, simple: bool = False) -> Any:
        """An RQ worker on this queue: forking one job per child, or running jobs in-process (``simple``)."""
        from rq import SimpleWorker, Worker

        base = SimpleWorker if simple else Worker

        class PromptWorker(base):  # type: ignore[valid-type,misc]
            """Listens to its command channel with a 1 s poll: RQ's 60 s one can hold a stopping
            worker for a minute (redis-py 8 joins the listening thread when it stops)."""

            def subscribe(self) -> None:
                try:
                    self.pubsub = self.connection.pubsub()
                    self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
                    self.pubsub_thread = self.pubsub.run_in_thread(
                        sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler
                    )
                except AttributeError:  # another RQ version: its own way
                    super().subscribe()

        return PromptWorker([self.queue], connection=self.connection)

    def close(self) -> None:
        self.connection.close()
