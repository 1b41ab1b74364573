"""flask_fs.testing for users: memory storages in an app's tests, and the contract suite run by a
third party on its own backend (in a separate pytest process, as its author would run it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import flask_fs as fs
from flask_fs.backends.local import LocalBackend
from flask_fs.backends.memory import MemoryBackend
from flask_fs.testing import BackendContract, restore_backends, use_memory_backend
from tests.conftest import make_app

EXAMPLES = Path(__file__).parent.parent / "docs" / "_examples"


@pytest.fixture
def app(tmp_path):
    """A user's app: one storage on the local disk, one on S3 (never contacted here)."""
    app = make_app(tmp_path, IMAGES_FS_BACKEND="s3", IMAGES_FS_BUCKET="images")
    fs.init_app(app, fs.Storage("files", fs.ALL), fs.Storage("images", fs.IMAGES))
    return app


def test_fs_memory_puts_every_storage_on_an_empty_memory_backend(fs_memory):
    with fs_memory.app_context():
        files, images = fs.by_name("files"), fs.by_name("images")
        assert isinstance(files.backend, MemoryBackend) and isinstance(images.backend, MemoryBackend)
        images.write("a.png", b"png")
        assert images.read("a.png") == b"png"
        assert list(files.list_files()) == []


def test_fs_memory_keeps_nothing_on_disk_and_serves_files(fs_memory, tmp_path):
    with fs_memory.app_context():
        fs.by_name("files").write("doc.txt", b"in memory")
    assert fs_memory.test_client().get("/files/doc.txt").data == b"in memory"
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_storages_registered_later_use_memory_too(fs_memory):
    later = fs.Storage("later", fs.ALL)
    fs.init_app(fs_memory, later)
    with fs_memory.app_context():
        assert isinstance(later.backend, MemoryBackend)


def test_restore_gives_back_the_apps_own_backends(app):
    with app.app_context():
        files = fs.by_name("files")
        files.write("kept.txt", b"on disk")
        replaced = use_memory_backend(app)
        assert not files.exists("kept.txt")
        files.write("gone.txt", b"in memory")
        restore_backends(app, replaced)
        assert isinstance(files.backend, LocalBackend)
        assert sorted(files.list_files()) == ["kept.txt"]
        assert fs.by_name("images").config["backend"] == "s3"
        assert app.config["FS_BACKEND"] == "local"


def run_pytest(folder: Path, *paths: str, pythonpath: list[Path] = ()) -> ET.Element:
    """Run pytest on ``paths`` in ``folder`` in a new process; return its JUnit XML report."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*pythonpath, folder]))}
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=report.xml", *paths],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode in (0, 1), process.stdout + process.stderr  # 1: some tests failed
    return ET.parse(folder / "report.xml").getroot()


OUTCOMES = [("error", "error"), ("failure", "failed"), ("skipped", "skipped")]


def outcomes(report: ET.Element) -> dict[str, str]:
    """``{'module.Class::test': 'passed' | 'failed' | 'error' | 'skipped'}`` from a JUnit XML report."""
    results = {}
    for case in report.iter("testcase"):
        tags = {child.tag for child in case}
        outcome = next((word for tag, word in OUTCOMES if tag in tags), "passed")
        results[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return results


def test_the_users_app_tests_of_the_docs_pass(tmp_path):
    shutil.copytree(EXAMPLES / "app_tests", tmp_path / "app_tests")
    results = outcomes(run_pytest(tmp_path / "app_tests"))
    assert results == {
        "test_avatars::test_upload_stores_the_picture": "passed",
        "test_avatars::test_each_test_starts_with_empty_storages": "passed",
    }


SLOPPY = '''
import uuid

import pytest
from dict_backend import DictBackend

from flask_fs.testing import BackendContract


class SloppyBackend(DictBackend):
    """Replaces files even when told not to."""

    def save(self, file_or_wfs, filename, overwrite=False, *, headers=None):
        super().save(file_or_wfs, filename, overwrite=True)


class TestSloppyBackend(BackendContract):
    holds_files_in_memory = True

    @pytest.fixture
    def backend_config(self):
        return {"FS_BACKEND": "sloppy", "FS_SLOPPY_BUCKET": f"test-{uuid.uuid4().hex}"}
'''


def install_entry_points(site: Path, **backends: str) -> None:
    """Register backends the way pip would: a .dist-info folder declaring the entry points."""
    info = site / "third_party_backends-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: third-party-backends\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in backends.items())
    (info / "entry_points.txt").write_text(f"[fs.backend]\n{lines}")


def test_a_third_party_backend_runs_the_contract_and_a_broken_one_fails_it(tmp_path):
    install_entry_points(tmp_path / "site", dict="dict_backend:DictBackend", sloppy="test_sloppy:SloppyBackend")
    shutil.copy(EXAMPLES / "dict_backend.py", tmp_path)
    shutil.copy(EXAMPLES / "test_dict_backend.py", tmp_path)
    (tmp_path / "test_sloppy.py").write_text(SLOPPY)
    results = outcomes(run_pytest(tmp_path, "test_dict_backend.py", "test_sloppy.py", pythonpath=[tmp_path / "site"]))

    contract = sorted(name for name in dir(BackendContract) if name.startswith("test_"))
    good = {name: outcome for name, outcome in results.items() if name.startswith("test_dict_backend.")}
    assert {name.split("::")[1].partition("[")[0] for name in good} == set(contract)
    assert len(good) > 80  # with the parametrised cases
    assert set(good.values()) == {"passed"}

    bad = {name.split("::")[1]: outcome for name, outcome in results.items() if name.startswith("test_sloppy.")}
    assert len(bad) == len(good)
    failed = {name for name, outcome in bad.items() if outcome == "failed"}
    assert {
        "test_overwrite_policy_keeps_existing_content",
        "test_threads_saving_one_name_exactly_one_wins",
        "test_open_x_mode_refuses_existing_and_w_mode_replaces",
        "test_copy_onto_a_taken_name_needs_overwrite",
        "test_copy_and_move",
    } <= failed
    assert bad["test_write_read_exists_contains"] == "passed"
