"""``flask fs orphans STORAGE [--delete] [--grace 24h]``: the files no row or document references.

It reads every SQLAlchemy model (through Flask-SQLAlchemy's session, or the session factory set as
``app.extensions["fs_sqlalchemy_session"]``) and every mongoengine document class imported by the
app that has a file field on STORAGE, and lists the storage's other files older than the grace
period. It refuses to run when no model uses STORAGE, so a storage kept by hand is never wiped.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click
from flask import current_app

from .cli import with_app
from .errors import FSError
from .fields.core import delete_files
from .fields.orphans import DEFAULT_GRACE, find_orphans
from .storage import by_name

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_grace(value: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``24h`` or ``7d`` as a duration."""
    match = _DURATION.match(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration such as 3600, 30m, 24h or 7d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def referenced(storage_name: str) -> set[str]:
    """The names the app's models and documents reference in the storage; FSError if none has a field on it."""
    found: set[str] | None = None
    try:
        from .mongo import referenced_files as mongo_files
    except ImportError:  # mongoengine is not installed
        pass
    else:
        found = _union(found, mongo_files(storage_name))
    try:
        from .sqla import referenced_files as sqla_files
    except ImportError:  # SQLAlchemy is not installed
        pass
    else:
        session = _sqlalchemy_session()
        try:
            found = _union(found, sqla_files(storage_name, session))
        finally:
            if session is not None:
                session.close()
    if found is None:
        raise FSError(
            f"no model or document has a file field on storage {storage_name!r}:"
            " its files cannot be told apart from orphans (are the models imported by the app?)"
        )
    return found


def _union(found: set[str] | None, more: set[str] | None) -> set[str] | None:
    if more is None:
        return found
    return more if found is None else found | more


def _sqlalchemy_session() -> Any:
    """A new session on the app's database: Flask-SQLAlchemy's, or ``app.extensions['fs_sqlalchemy_session']()``."""
    extensions = current_app.extensions
    if "fs_sqlalchemy_session" in extensions:
        return extensions["fs_sqlalchemy_session"]()
    db = extensions.get("sqlalchemy")
    return db.session() if db is not None else None


commands = click.Group("model commands")


@commands.command("orphans")
@click.argument("storage")
@click.option("--delete", is_flag=True, help="Delete the orphans found.")
@click.option(
    "--grace",
    default=f"{int(DEFAULT_GRACE.total_seconds() // 3600)}h",
    show_default=True,
    help="Leave files modified more recently than this (3600, 30m, 24h, 7d).",
)
@with_app
def orphans_command(storage: str, delete: bool, grace: str) -> None:
    """List (or --delete) the files of STORAGE that no SQLAlchemy row or mongoengine document references."""
    period = parse_grace(grace)
    files = by_name(storage)
    names = referenced(storage)
    found = list(find_orphans(files.backend.list_metadata(), names, period))
    for name, meta in found:
        modified = meta["modified"].strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{meta.get('size', '-'):>12}  {modified}  {name}")
    total = sum(int(meta.get("size") or 0) for _, meta in found)
    if delete:
        delete_files(files, [name for name, _ in found], "orphan")
        remaining = sum(1 for name, _ in found if files.exists(name))
        failed = f"; {remaining} could not be deleted (see the log)" if remaining else ""
        click.echo(f"deleted {len(found) - remaining} orphan(s), {total} bytes{failed}")
    else:
        click.echo(f"{len(found)} orphan(s), {total} bytes (older than {grace}); --delete removes them")
