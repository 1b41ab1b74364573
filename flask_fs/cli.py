"""``flask fs``: look at the configured storages and publish the static files.

Commands: ``storages`` (backends and resolved settings, secrets masked), ``ls STORAGE`` (its
files), ``check [STORAGE...]`` (is each server reachable with its credentials?) and ``publish``
(upload the app's static files to the static storage, see :mod:`flask_fs.static`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask.cli import AppGroup

from .errors import FSError
from .static.cli import publish_command
from .storage import by_name, state

cli = AppGroup("fs", help="File storages: list them, check them, publish the static files.")


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
        storages = state().storages
        selected = [by_name(name) for name in names] if names else [storages[n] for n in sorted(storages)]
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


cli.add_command(publish_command)  # defined with static publishing (flask_fs.static.cli)
