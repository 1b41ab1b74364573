"""The storage commands of ``flask fs``: ``storages``, ``ls``, ``check`` and ``clean`` (see :mod:`flask_fs.cli`)."""

from __future__ import annotations

import sys

import click
from flask import current_app

from . import uploads
from .cli import with_app
from .config import STORAGE_SETTINGS, Setting, Size, format_size
from .errors import FSError
from .storage import Storage, by_name, state

commands = click.Group("storage commands")


@commands.command("storages")
@with_app
def storages_command() -> None:
    """List the storages with their backend, URL and settings (secrets masked)."""
    storages = state().storages
    if not storages:
        click.echo("no storage is registered on this app")
        return
    for name in sorted(storages):
        storage = storages[name]
        click.echo(f"{name}  ({storage.config.get('backend')})")
        for line in describe(storage):
            click.echo(f"    {line}")


def describe(storage: Storage) -> list[str]:
    """``key = value`` lines for a storage's resolved settings: secrets masked, sizes in MiB, and its URL."""
    declared: dict[str, Setting] = {s.name: s for s in (*STORAGE_SETTINGS, *type(storage.backend).settings)}
    config = storage.config
    secrets = {name for name, setting in declared.items() if setting.secret}
    lines = []
    for key, value in sorted(config.masked(secrets).items()):
        if key == "backend":
            continue
        setting = declared.get(key)
        shown = format_size(value) if setting and setting.type is Size and isinstance(value, int) else repr(value)
        lines.append(f"{key} = {shown}")
    if not config.get("url"):
        if current_app.config.get("FS_SERVE"):
            lines.append(f"url: none set, files are served by the fs view at {storage.base_url}")
        else:
            lines.append("url: none set, and FS_SERVE is off: files have no public URL")
    return lines


@commands.command("ls")
@click.argument("storage")
@click.option("-l", "--long", "long_format", is_flag=True, help="Also show each file's size and modification time.")
@with_app
def ls_command(storage: str, long_format: bool) -> None:
    """List the files of STORAGE."""
    files = by_name(storage)
    if not long_format:
        for name in files.list_files():
            click.echo(name)
        return
    for name, meta in files.backend.list_metadata():
        modified = meta.get("modified")
        when = modified.strftime("%Y-%m-%d %H:%M:%S") if modified else "-"
        click.echo(f"{meta.get('size', '-'):>12}  {when}  {name}")


@commands.command("check")
@click.argument("names", nargs=-1)
@with_app
def check_command(names: tuple[str, ...]) -> None:
    """Check that each storage (default: all) reaches its server with its credentials."""
    failed = 0
    for storage in selected(names):
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


@commands.command("clean")
@click.argument("names", nargs=-1)
@click.option(
    "--older-than", "hours", type=float, default=24.0, show_default=True, metavar="HOURS",
    help="Only remove leftovers untouched for this long (an upload in progress must not be taken for one).",
)  # fmt: skip
@with_app
def clean_command(names: tuple[str, ...], hours: float) -> None:
    """Remove what interrupted uploads left in each storage (default: all), and the direct uploads
    never finalized (their grace is at least the storage's ``UPLOAD_EXPIRES``)."""
    for storage in selected(names):
        removed = storage.backend.clean_stale(hours * 3600) + uploads.sweep(storage.bind(), hours * 3600)
        for item in removed:
            click.echo(f"{storage.name}: removed {item}")
        click.echo(f"{storage.name} ({storage.config.get('backend')}): {len(removed)} removed")


def selected(names: tuple[str, ...]) -> list[Storage]:
    """The storages named on the command line, or all of them, by name."""
    storages = state().storages
    return [by_name(name) for name in names] if names else [storages[n] for n in sorted(storages)]
