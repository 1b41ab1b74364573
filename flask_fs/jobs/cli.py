"""``flask fs jobs`` (list, retry, run, worker) and ``flask fs migrate`` (see :mod:`flask_fs.cli`)."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from ..cli import with_app
from ..storage import by_name
from . import ext
from .ext import jobs_of, unlayered
from .migrate import migrate
from .runner import InlineDispatcher, Jobs

commands = click.Group("job commands")


def _with_jobs_app(command: Callable[..., Any]) -> Callable[..., Any]:
    """Load the app without resuming its jobs (each command decides), in its app context."""
    inner = with_app(command)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ext.autoresume = False
        try:
            return inner(*args, **kwargs)
        finally:
            ext.autoresume = True

    return wrapper


def _here(jobs: Jobs) -> bool:
    """Run jobs in this process (thread backend), rather than enqueue them for RQ workers."""
    if jobs.context.get("FS_JOBS_BACKEND") == "rq":
        return False
    jobs.dispatcher.close()
    jobs.dispatcher = InlineDispatcher()
    return True


@commands.group("jobs")
def jobs_group() -> None:
    """Background jobs: list the unfinished ones, retry the failed ones, run a worker."""


@jobs_group.command("list")
@_with_jobs_app
def list_command() -> None:
    """List the jobs not finished yet (pending, running, failed), oldest first, with their last error."""
    records = jobs_of().pending()
    if not records:
        click.echo("no unfinished job")
        return
    for record in records:
        args = record.args
        where = f"{args.get('storage', '')}:{args.get('filename', '')}".strip(":")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.updated))
        click.echo(f"{record.id}  {record.state:<8} {record.task:<10} {where}  attempts={record.attempts}  {when}")
        if record.error:
            click.echo(f"    {record.error}")


@jobs_group.command("retry")
@click.argument("ids", nargs=-1)
@_with_jobs_app
def retry_command(ids: tuple[str, ...]) -> None:
    """Retry the failed jobs (these IDS, default all): here with the thread backend, on the workers with RQ."""
    jobs = jobs_of()
    here = _here(jobs)
    if here:
        jobs.journal.release_dead()
    retried = jobs.retry(list(ids) if ids else None)
    failed = [record for record in jobs.journal.jobs(("failed",)) if record.id in retried]
    click.echo(f"{len(retried)} job(s) retried" + (f", {len(failed)} failed again" if here else ", enqueued"))
    for record in failed:
        click.echo(f"{record.id}  {record.task}: {record.error}")
    if failed:
        sys.exit(1)


@jobs_group.command("run")
@_with_jobs_app
def run_command() -> None:
    """Run here the pending jobs, and those a dead process left running (thread backend); enqueue them with RQ."""
    jobs = jobs_of()
    here = _here(jobs)
    ids = jobs.resume()
    failed = [record for record in jobs.journal.jobs(("failed",)) if record.id in ids]
    click.echo(f"{len(ids)} job(s) " + ("run" if here else "enqueued") + (f", {len(failed)} failed" if failed else ""))
    if failed:
        sys.exit(1)


@jobs_group.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
@click.option("--simple", is_flag=True, help="Run jobs in this process instead of forking one child per job.")
@_with_jobs_app
def worker_command(burst: bool, simple: bool) -> None:
    """Work on the RQ queue (FS_JOBS_BACKEND = 'rq'); first hand out again the jobs a dead worker left."""
    from . import redis_queue

    jobs = jobs_of()
    dispatcher = jobs.dispatcher
    if not isinstance(dispatcher, redis_queue.RQDispatcher):
        raise click.ClickException("flask fs jobs worker needs FS_JOBS_BACKEND = 'rq'")
    redis_queue.current = jobs
    jobs.resume()
    dispatcher.worker(simple=simple).work(burst=burst)


@commands.command("migrate")
@click.argument("source")
@click.argument("target")
@click.option("--verify", is_flag=True, help="Read each copy back and compare its SHA-256 with the source's.")
@click.option("--delete-source", is_flag=True, help="Delete each source file once its copy is recorded (and verified).")
@click.option("--workers", type=int, default=8, show_default=True, help="Files copied in parallel.")
@click.option("--restart", is_flag=True, help="Forget the progress of an earlier run: check every file again.")
@_with_jobs_app
def migrate_command(source: str, target: str, verify: bool, delete_source: bool, workers: int, restart: bool) -> None:
    """Copy every file of storage SOURCE to storage TARGET; resumable, and files done are not copied again."""
    jobs = jobs_of()
    source_backend = unlayered(by_name(source).backend)  # the backends themselves: no mirror writing back
    target_backend = unlayered(by_name(target).backend)
    key = (source, target)
    if restart:
        jobs.journal.forget_migration(*key)
    total = sum(1 for _ in source_backend.list_files())
    with click.progressbar(length=total, label=f"{source} -> {target}", file=sys.stderr) as bar:
        report = migrate(
            source_backend, target_backend, jobs.journal, key, workers=workers, verify=verify,
            delete_source=delete_source, progress=lambda name: bar.update(1),
        )  # fmt: skip
    click.echo(report.summary())
    for name, error in sorted(report.failed.items()):
        click.echo(f"FAILED {name}: {error}")
    if not report.ok:
        sys.exit(1)
