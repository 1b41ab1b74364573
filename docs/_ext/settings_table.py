"""``.. fs-settings:: global storage local s3``: the settings table, generated from the declarations.

Each group is :data:`flask_fs.config.GLOBAL_SETTINGS` (``global``), :data:`~flask_fs.config.STORAGE_SETTINGS`
(``storage``) or a backend's ``settings`` (its name), so the documentation cannot drift from the code
that reads, converts and lists the settings (``flask fs storages``).
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from flask_fs.backends import load_backend
from flask_fs.config import (
    GLOBAL_SETTINGS,
    STORAGE_NAME,
    STORAGE_SETTINGS,
    URL,
    BaseURL,
    Extensions,
    Setting,
    Size,
    format_size,
)

TYPES = {str: "text", int: "integer", float: "number", bool: "boolean", list: "list", dict: "mapping", Size: "size",
         URL: "URL", BaseURL: "URL or path", Extensions: "extensions", None: "any"}  # fmt: skip
TITLES = {"global": "Extension (read by init_app, under these names only)", "storage": "Every storage"}


def group(name: str) -> tuple[str, tuple[Setting, ...], bool]:
    """The title, settings and whether they are layered (``<NAME>_FS_KEY``) of one group."""
    if name == "global":
        return TITLES[name], GLOBAL_SETTINGS, False
    if name == "storage":
        return TITLES[name], STORAGE_SETTINGS, True
    return f"{name} backend", load_backend(name).settings, True


def default(setting: Setting) -> str:
    """How the table shows a setting's default."""
    if setting.shown_default:
        return setting.shown_default
    value: Any = setting.default
    if value is STORAGE_NAME:
        return "the storage name"
    if value is None:
        return "required" if setting.required else "unset"
    if setting.type is Size:
        return format_size(value)
    return f'``"{value}"``' if isinstance(value, str) else f"``{value!r}``"


def rows(names: list[str]) -> list[str]:
    """The reStructuredText of a list-table of these groups' settings."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 32 12 14 42", "",
             "   * - Key", "     - Type", "     - Default", "     - Meaning"]  # fmt: skip
    for name in names:
        title, settings, layered = group(name)
        lines += [f"   * - **{title}**", "     -", "     -", "     -"]
        for setting in settings:
            key = f"<NAME>_FS_{setting.name.upper()}" if layered else setting.name
            meaning = setting.doc + (" Secret: ``flask fs storages`` masks it." if setting.secret else "")
            lines += [f"   * - ``{key}``", f"     - {TYPES[setting.type]}", f"     - {default(setting)}",
                      f"     - {meaning}"]  # fmt: skip
    return lines


class SettingsTable(SphinxDirective):
    """The ``fs-settings`` directive: its arguments name the groups, in order."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(rows(self.arguments[0].split()), "fs-settings"), 0, container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("fs-settings", SettingsTable)
    return {"parallel_read_safe": True}
