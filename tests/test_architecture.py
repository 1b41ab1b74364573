"""The layers, as the import graph shows them: the core imports no Flask and no upper layer.

Core: names, files, errors, streams, intake, signals, config, bound (BoundStorage), images, the
backends and the field core. Adapters (mongo, sqla) build on the core; the Flask layer (storage,
views, cli, static, store, testing) on both. Every import counts, also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "flask_fs"
CORE = [
    "names", "files", "errors", "streams", "intake", "signals", "config", "bound", "images", "backends", "fields",
    "uploads",
]  # fmt: skip
UPPER_LAYERS = {
    "flask_fs.storage", "flask_fs.views", "flask_fs.cli", "flask_fs.static", "flask_fs.store", "flask_fs.upload_views",
}  # fmt: skip
ADAPTERS = {"flask_fs.mongo", "flask_fs.sqla", "flask_fs.jobs"}


def core_files() -> list[Path]:
    files = []
    for name in CORE:
        if (PACKAGE / name).is_dir():
            files += sorted((PACKAGE / name).rglob("*.py"))
        elif (PACKAGE / f"{name}.py").exists():
            files.append(PACKAGE / f"{name}.py")
    return files


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found |= {f"{prefix}.{alias.name}" for alias in node.names}
    return found


def in_layer(name: str, layer: set[str]) -> bool:
    return any(name == top or name.startswith(top + ".") for top in layer)


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_imports_no_flask_and_no_upper_layer(path):
    imported = imports_of(path)
    assert not [name for name in imported if name == "flask" or name.startswith("flask.")]
    assert not [name for name in imported if in_layer(name, UPPER_LAYERS | ADAPTERS)]


def test_the_core_is_what_the_architecture_page_says():
    assert len(core_files()) >= 14  # the walk above really covers the backends
    page = (PACKAGE.parent / "docs" / "architecture.rst").read_text()
    for name in CORE:
        assert f"``{name}``" in page
