"""``flask fs publish``: the static publishing command, registered in the ``flask fs`` group."""

from __future__ import annotations

import click
from flask import Flask, current_app

from ..cli import with_app
from . import publishing
from .ext import EXTENSION_KEY, _state_for
from .settings import DEFAULTS, uses_flask_s3


def configured(app: Flask) -> bool:
    """Whether static publishing is set up on ``app`` (StaticFiles, FlaskS3) or has settings: ``FS_STATIC_*``,
    Flask-S3's, or the target storage's (``ASSETS_FS_*``)."""
    config = app.config
    storage = str(config.get("FS_STATIC_STORAGE") or DEFAULTS["FS_STATIC_STORAGE"]).upper() + "_FS_"
    own = ("FS_STATIC_", storage)
    return EXTENSION_KEY in app.extensions or uses_flask_s3(config) or any(key.startswith(own) for key in config)


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
    if not configured(app):
        raise click.ClickException(
            f"static publishing is not configured on app {app.name!r}: "
            "use StaticFiles(app) or FlaskS3(app), or set FS_STATIC_* or FLASKS3_* settings"
        )
    result = _publish(app, dry_run, delete, verify, force, quiet)
    click.echo(("dry run: " if result.dry_run else "") + result.summary())


def _publish(
    app: Flask, dry_run: bool, delete: bool, verify: bool, force: bool, quiet: bool
) -> publishing.PublishResult:
    _, bound = _state_for(app)
    planned = publishing.plan(bound.target(app), bound.settings, delete=delete, verify=verify, force=force)
    if dry_run:
        for upload in sorted(planned.uploads, key=lambda u: u.name):
            click.echo(f"upload  {upload.name}  ({upload.reason})")
        for name in planned.deletes:
            click.echo(f"delete  {name}")
        return publishing.dry_run(planned)
    total = len(planned.uploads) + len(planned.deletes)
    try:
        if quiet or not total:
            return publishing.apply(planned)
        with click.progressbar(length=total, label="publishing", show_pos=True) as bar:
            return publishing.apply(planned, lambda action, name: bar.update(1))
    except publishing.PublishError as exc:
        for name, error in sorted(exc.result.failed.items()):
            click.echo(f"failed  {name}: {error}", err=True)
        click.echo(exc.result.summary())
        raise
