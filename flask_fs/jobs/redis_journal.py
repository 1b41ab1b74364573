"""The journal in Redis, for workers on several machines (``FS_JOBS_JOURNAL = "redis://..."``).

The same records as the SQLite :class:`~flask_fs.jobs.journal.Journal`, under keys starting with
``flask-fs-jobs:<namespace>:``: one hash per job, a sorted set of the unfinished jobs, a hash of
the names each storage holds in the promotion cache, and a hash per migration. State changes that
must not race (claim, done, retry, release) are Lua scripts, atomic on the server.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterable
from typing import Any

from ..config import _mask_url
from .journal import JobRecord, _alive

__all__ = ["RedisJournal"]

_CLAIM = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[1], 'updated', ARGV[2])
return 1
"""
_DONE = """
local storage = redis.call('HGET', KEYS[1], 'storage')
local filename = redis.call('HGET', KEYS[1], 'filename')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if filename and filename ~= '' then
    local key = ARGV[2] .. storage
    if redis.call('HINCRBY', key, filename, -1) <= 0 then redis.call('HDEL', key, filename) end
end
return 1
"""
_RETRY = """
if redis.call('HGET', KEYS[1], 'state') ~= 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempts', 0, 'updated', ARGV[1])
return 1
"""
_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
    return 0
end
redis.call('HSET', KEYS[1], 'state', 'pending', 'owner', '', 'updated', ARGV[2])
return 1
"""


class RedisJournal:
    """Jobs and migration progress in Redis at ``url``, under ``namespace``."""

    def __init__(self, url: str, namespace: str = "flask-fs") -> None:
        from redis import Redis

        self.path = _mask_url(url)
        self.redis = Redis.from_url(url, decode_responses=True)
        self.prefix = f"flask-fs-jobs:{namespace}:"
        self._claim = self.redis.register_script(_CLAIM)
        self._done = self.redis.register_script(_DONE)
        self._retry = self.redis.register_script(_RETRY)
        self._release = self.redis.register_script(_RELEASE)

    def __repr__(self) -> str:
        return f"<RedisJournal {self.path!r} {self.prefix!r}>"

    def _job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    # -- jobs ------------------------------------------------------------------------------------

    def add(self, task: str, args: dict[str, Any], storage: str | None = None, filename: str | None = None) -> str:
        job_id = uuid.uuid4().hex
        now = time.time()
        fields = {
            "task": task, "args": json.dumps(args), "storage": storage or "", "filename": filename or "",
            "state": "pending", "attempts": 0, "error": "", "owner": "", "created": now, "updated": now,
        }  # fmt: skip
        with self.redis.pipeline() as pipe:
            pipe.hset(self._job(job_id), mapping=fields)
            pipe.zadd(self.prefix + "jobs", {job_id: now})
            if filename:
                pipe.hincrby(f"{self.prefix}held:{storage}", filename, 1)
            pipe.execute()
        return job_id

    def get(self, job_id: str) -> JobRecord | None:
        fields = self.redis.hgetall(self._job(job_id))
        return _record(job_id, fields) if fields else None

    def jobs(self, states: Iterable[str] = ("pending", "running", "failed")) -> list[JobRecord]:
        states = set(states)
        ids = self.redis.zrange(self.prefix + "jobs", 0, -1)
        with self.redis.pipeline() as pipe:
            for job_id in ids:
                pipe.hgetall(self._job(job_id))
            rows = pipe.execute()
        records = [_record(job_id, fields) for job_id, fields in zip(ids, rows, strict=True) if fields]
        return [record for record in records if record.state in states]

    def claim(self, job_id: str, owner: str) -> JobRecord | None:
        if not self._claim(keys=[self._job(job_id)], args=[owner, time.time()]):
            return None
        return self.get(job_id)

    def attempted(self, job_id: str, error: str | None) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hincrby(self._job(job_id), "attempts", 1)
            pipe.hset(self._job(job_id), mapping={"error": error or "", "updated": time.time()})
            pipe.execute()

    def done(self, job_id: str) -> None:
        self._done(keys=[self._job(job_id), self.prefix + "jobs"], args=[job_id, self.prefix + "held:"])

    def failed(self, job_id: str) -> None:
        self.redis.hset(self._job(job_id), mapping={"state": "failed", "owner": "", "updated": time.time()})

    def retry(self, job_ids: Iterable[str] | None = None) -> list[str]:
        if job_ids is None:
            job_ids = [record.id for record in self.jobs(("failed",))]
        return [job_id for job_id in job_ids if self._retry(keys=[self._job(job_id)], args=[time.time()])]

    def release_dead(self) -> int:
        host = socket.gethostname()
        released = 0
        for record in self.jobs(("running",)):
            owner_host, _, pid = (record.owner or "").rpartition(":")
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                released += self._release(keys=[self._job(record.id)], args=[record.owner, time.time()])
        return released

    def is_pending(self, storage: str, filename: str) -> bool:
        return bool(self.redis.hexists(f"{self.prefix}held:{storage}", filename))

    def held(self, storage: str) -> list[str]:
        return sorted(self.redis.hkeys(f"{self.prefix}held:{storage}"))

    # -- migrations ------------------------------------------------------------------------------

    def _migration(self, source: str, target: str) -> str:
        return f"{self.prefix}migrated:{source}:{target}"

    def migrated(self, source: str, target: str) -> dict[str, str]:
        return self.redis.hgetall(self._migration(source, target))

    def record_migrated(self, source: str, target: str, filename: str, checksum: str) -> None:
        self.redis.hset(self._migration(source, target), filename, checksum)

    def forget_migration(self, source: str, target: str) -> None:
        self.redis.delete(self._migration(source, target))


def _record(job_id: str, fields: dict[str, str]) -> JobRecord:
    return JobRecord(
        job_id, fields["task"], json.loads(fields["args"]), fields["state"], int(fields["attempts"]),
        fields["error"] or None, fields["owner"] or None, float(fields["created"]), float(fields["updated"]),
    )  # fmt: skip
