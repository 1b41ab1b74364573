"""``flask fs``: look at the configured storages and publish the static files.

Commands: ``storages`` (backends and resolved settings, secrets masked), ``ls STORAGE`` (its
files), ``check [STORAGE...]`` (is each server reachable with its credentials?), ``clean
[STORAGE...]`` (remove what interrupted uploads left) and ``publish`` (upload the app's static
files to the static storage, see :mod:`flask_fs.static`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from .errors import FSError
from .storage import Storage, by_name, state

cli = AppGroup("fs", help="File storages: list them, check them, clean them, publish the static files.")


@contextmanager
def _errors() -> Iterator[None]:
    """Show flask_fs errors as one line and exit with status 1, instead of a traceback."""
    try:
        yield
    except FSError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command("storages")
def storages_command() -> None:
    """List the storages with their backend and settings (secrets masked)."""
    with _errors():
        storages = state().storages
        if not storages:
            click.echo("no storage is registered on this app")
            return
        for name in sorted(storages):
            config = storages[name].config
            click.echo(f"{name}  ({config.get('backend')})")
            for key, value in sorted(config.masked().items()):
                if key != "backend":
                    click.echo(f"    {key} = {value!r}")


@cli.command("ls")
@click.argument("storage")
@click.option("-l", "--long", "long_format", is_flag=True, help="Also show each file's size and modification time.")
def ls_command(storage: str, long_format: bool) -> None:
    """List the files of STORAGE."""
    with _errors():
        files = by_name(storage)
        if not long_format:
            for name in files.list_files():
                click.echo(name)
            return
        for name, meta in files.backend.list_metadata():
            modified = meta.get("modified")
            when = modified.strftime("%Y-%m-%d %H:%M:%S") if modified else "-"
            click.echo(f"{meta.get('size', '-'):>12}  {when}  {name}")


@cli.command("check")
@click.argument("names", nargs=-1)
def check_command(names: tuple[str, ...]) -> None:
    """Check that each storage (default: all) reaches its server with its credentials."""
    with _errors():
        selected = _selected(names)
    failed = 0
    for storage in selected:
        backend = storage.config.get("backend")
        try:
            storage.check()
        except FSError as exc:
            failed += 1
            click.echo(f"{storage.name} ({backend}): FAILED: {exc}")
        else:
            click.echo(f"{storage.name} ({backend}): ok")
    if failed:
        sys.exit(1)


@cli.command("clean")
@click.argument("names", nargs=-1)
@click.option(
    "--older-than", "hours", type=float, default=24.0, show_default=True, metavar="HOURS",
    help="Only remove leftovers untouched for this long (an upload in progress must not be taken for one).",
)  # fmt: skip
def clean_command(names: tuple[str, ...], hours: float) -> None:
    """Remove what interrupted uploads left in each storage (default: all)."""
    with _errors():
        for storage in _selected(names):
            removed = storage.backend.clean_stale(hours * 3600)
            for item in removed:
                click.echo(f"{storage.name}: removed {item}")
            click.echo(f"{storage.name} ({storage.config.get('backend')}): {len(removed)} removed")


def _selected(names: tuple[str, ...]) -> list[Storage]:
    """The storages named on the command line, or all of them, by name."""
    storages = state().storages
    return [by_name(name) for name in names] if names else [storages[n] for n in sorted(storages)]


@cli.command("publish")
@click.option("--dry-run", is_flag=True, help="Only list what would be uploaded and deleted.")
@click.option("--delete", is_flag=True, help="Delete published files that no longer exist locally.")
@click.option("--verify", is_flag=True, help="Also check the storage for files changed or deleted there.")
@click.option("--force", is_flag=True, help="Upload every file, changed or not.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, only the summary.")
def publish_command(dry_run: bool, delete: bool, verify: bool, force: bool, quiet: bool) -> None:
    """Upload the app's static files (and its blueprints') to the static storage."""
    from .static import PublishError, StaticFiles, publishing

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with _errors():
        planned = StaticFiles.plan(app, delete=delete, verify=verify, force=force)
        if dry_run:
            result = publishing.dry_run(planned)
            for upload in sorted(planned.uploads, key=lambda u: u.name):
                click.echo(f"upload  {upload.name}  ({upload.reason})")
            for name in planned.deletes:
                click.echo(f"delete  {name}")
            click.echo(f"dry run: {result.summary()}")
            return
        total = len(planned.uploads) + len(planned.deletes)
        try:
            if quiet or not total:
                result = publishing.apply(app, planned)
            else:
                with click.progressbar(length=total, label="publishing", show_pos=True) as bar:
                    result = publishing.apply(app, planned, _advance(bar))
        except PublishError as exc:
            for name, error in sorted(exc.result.failed.items()):
                click.echo(f"failed  {name}: {error}", err=True)
            click.echo(exc.result.summary())
            raise
    click.echo(result.summary())


def _advance(bar: Any) -> Callable[[str, str], None]:
    def progress(action: str, name: str) -> None:
        bar.update(1)

    return progress
