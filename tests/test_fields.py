"""The field core (flask_fs.fields) on its own: no Flask, no database, any object with the storage methods."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest

import flask_fs.fields
from flask_fs.errors import ConfigurationError, FileExists
from flask_fs.fields import FileReference, FileSpec, Lifecycle

CORE = Path(flask_fs.fields.__file__).parent


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level and node.module:
            found.add(f"flask_fs.{node.module}" if node.level == 2 else node.module)
    return found


@pytest.mark.parametrize("module", sorted(p.name for p in CORE.glob("*.py") if p.name != "cli.py"))
def test_the_core_imports_no_framework_nor_database(module):
    modules = imported_modules(CORE / module)
    assert not modules & {"flask", "werkzeug", "mongoengine", "pymongo", "sqlalchemy"}, modules
    assert "flask_fs.storage" not in modules


class DictStorage:
    """The least a reference needs of a storage: a dict of names to bytes."""

    name, upload_to, config = "memory", None, {}

    def __init__(self):
        self.files = {}

    def save(self, file_or_wfs, filename=None, prefix=None, overwrite=None, rename=None):
        stem, dot, ext = filename.rpartition(".")
        number = 0
        while rename and filename in self.files:
            number += 1
            filename = f"{stem}_{number}.{ext}"
        if filename in self.files and not overwrite:
            raise FileExists(filename)
        self.files[filename] = file_or_wfs.read()
        return filename

    def delete(self, filename):
        self.files.pop(filename, None)

    def exists(self, filename):
        return filename in self.files

    def url(self, filename, external=False):
        return f"memory://{filename}"

    def file_allowed(self, storage, basename):
        return True


class Recorder(Lifecycle):
    overwrite_own = False

    def __init__(self):
        self.events = []

    def changed(self, reference):
        self.events.append(("changed",))

    def stored(self, reference, stored):
        self.events.append(("stored", stored))

    def released(self, reference, released):
        self.events.append(("released", released))


def test_a_reference_on_any_storage_reports_to_its_lifecycle():
    storage, lifecycle = DictStorage(), Recorder()
    spec = FileSpec()
    spec._configure(storage, "docs", None)
    reference = spec.make_reference(lifecycle=lifecycle)
    assert isinstance(reference, FileReference)
    assert reference.save(io.BytesIO(b"one"), "a.txt") == "docs/a.txt"
    assert reference.url == "memory://docs/a.txt"
    # a lifecycle that never overwrites gets a free name; the previous file is released, not deleted
    assert reference.save(io.BytesIO(b"two"), "a.txt") == "docs/a_1.txt"
    assert storage.files == {"docs/a.txt": b"one", "docs/a_1.txt": b"two"}
    reference.delete()
    assert lifecycle.events == [
        ("stored", ["docs/a.txt"]),
        ("changed",),
        ("stored", ["docs/a_1.txt"]),
        ("changed",),
        ("released", ["docs/a.txt"]),
        ("changed",),
        ("released", ["docs/a_1.txt"]),
    ]


def test_a_field_needs_a_storage():
    with pytest.raises(ConfigurationError, match="fs="):
        FileSpec()._configure(object(), None, None)
