"""``flask fs``: one command group, assembled from the commands of each part of flask_fs.

Each part declares its own click group (:data:`GROUPS`): :mod:`flask_fs.commands` has ``storages``,
``ls`` and ``check``, :mod:`flask_fs.static.cli` has ``publish``. They are imported when the group
first lists or runs a command, so ``flask --help`` stays fast. Commands load the app with
:func:`with_app`, which reports an app that fails to load, and any flask_fs error, on one line.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from flask import Flask, current_app
from flask.cli import NoAppException, ScriptInfo

from .errors import FSError

#: The command groups merged into ``flask fs``, as ``"module:attribute"``; add yours here.
GROUPS = (
    "flask_fs.commands:commands",
    "flask_fs.static.cli:commands",
    "flask_fs.orphans_cli:commands",
    "flask_fs.jobs.cli:commands",
)

F = TypeVar("F", bound=Callable[..., Any])


class FSGroup(click.Group):
    """A click group that also offers the commands of the groups named in ``groups``."""

    def __init__(self, *args: Any, groups: tuple[str, ...] = GROUPS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups = groups
        self._loaded: list[click.Group] | None = None

    def _subgroups(self) -> list[click.Group]:
        if self._loaded is None:
            loaded = []
            for path in self.groups:
                module, _, attribute = path.partition(":")
                loaded.append(getattr(importlib.import_module(module), attribute))
            self._loaded = loaded
        return self._loaded

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for group in self._subgroups():
            names.update(group.list_commands(ctx))
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        for group in self._subgroups():
            if command is not None:
                break
            command = group.get_command(ctx, name)
        return command


cli = FSGroup("fs", help="File storages: list them, check them, clean them, publish the static files.")


@contextmanager
def errors() -> Iterator[None]:
    """Show flask_fs errors (and system errors such as a refused permission) as one line, exit status 1."""
    try:
        yield
    except (FSError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


def load_app() -> Flask:
    """The app ``flask`` was told to use; an app that fails to load is one line, not a traceback."""
    if current_app:
        return current_app._get_current_object()  # type: ignore[attr-defined]
    info = click.get_current_context().ensure_object(ScriptInfo)
    try:
        return info.load_app()
    except NoAppException as exc:
        raise click.ClickException(f"cannot load the app: {_one_line(exc.format_message())}") from exc
    except Exception as exc:  # the app's own code failed (import, factory, init_app): say what and where
        raise click.ClickException(f"cannot load the app: {type(exc).__name__}: {_one_line(str(exc))}") from exc


def _one_line(message: str) -> str:
    """A message on one line: Flask's 'While importing ...' messages keep their first and last lines."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) > 1 and any(line.startswith("Traceback") for line in lines):
        return f"{lines[0]} {lines[-1]}"
    return " ".join(lines)


def with_app(command: F) -> F:
    """Run ``command`` in the app's context, with flask_fs errors shown as one line."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = load_app()
        with app.app_context(), errors():
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
