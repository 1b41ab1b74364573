"""``flask fs publish``: the static publishing command of ``flask fs`` (see :mod:`flask_fs.cli`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask import current_app

from ..cli import with_app
from . import publishing
from .ext import StaticFiles
from .publishing import PublishError

commands = click.Group("static commands")


@commands.command("publish")
@click.option("--dry-run", is_flag=True, help="Only list what would be uploaded and deleted.")
@click.option("--delete", is_flag=True, help="Delete published files that no longer exist locally.")
@click.option("--verify", is_flag=True, help="Also check the storage for files changed or deleted there.")
@click.option("--force", is_flag=True, help="Upload every file, changed or not.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, only the summary.")
@with_app
def publish_command(dry_run: bool, delete: bool, verify: bool, force: bool, quiet: bool) -> None:
    """Upload the app's static files (and its blueprints') to the static storage."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
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
