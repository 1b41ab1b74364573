"""Flask-FS 0.6.1's own test suite, unchanged, run against our flask_fs.

Their tests are not copied here: the 0.6.1 wheel on PyPI ships them, so this test downloads it
(once, into a cache folder), extracts ``tests/`` and runs pytest on it in a subprocess, with the
plugin :mod:`flaskfs_env` providing the servers and files those tests expect. It prints each
test's outcome and asserts how many pass; the ones allowed to fail, and why, are listed in
docs/migrating.rst.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

WHEEL = "flask_fs-0.6.1-py2.py3-none-any.whl"
WHEEL_SHA256 = "1404c1c190bb82d25cb4cdc9194ceab8f591987d42844c76e95dbbbd46400d43"
TOTAL = 194
#: Passing tests required (at least 190 of 194 is the goal: raise it as the mongoengine fixes land).
MIN_PASSED = 184
#: Tests failing on purpose: docs/migrating.rst ("Flask-FS tests that fail on purpose") says why.
ALLOWED_FAILURES = {
    "tests.test_local_backend.LocalBackendTest::test_metadata",  # sha256, not sha1
    "tests.test_s3_backend.S3BackendTest::test_metadata",  # etag:, not md5:, for objects written by other tools
}

HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    base = os.environ.get("FLASK_FS_COMPAT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "flask_fs-compat"
    )
    return Path(base)


def fetch_suite() -> Path:
    """Download (once) the 0.6.1 wheel and extract its ``tests`` package; return the folder holding it."""
    cache = cache_dir()
    wheel = cache / WHEEL
    if not wheel.exists() or hashlib.sha256(wheel.read_bytes()).hexdigest() != WHEEL_SHA256:
        cache.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
             "-d", str(cache), "flask-fs==0.6.1"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if result.returncode != 0 or not wheel.exists():
            pytest.skip(f"PyPI is unreachable, cannot download Flask-FS 0.6.1: {result.stderr.strip()[-300:]}")
    if hashlib.sha256(wheel.read_bytes()).hexdigest() != WHEEL_SHA256:
        pytest.fail(f"{wheel} does not have the published sha256 {WHEEL_SHA256}")
    suite = cache / "suite-0.6.1"
    tests = suite / "tests"
    if not (tests / "conftest.py").exists():
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith("tests/"):
                    archive.extract(member, suite)
    (suite / "pytest.ini").write_text("[pytest]\npython_classes = *Test\n")
    return suite


def run_suite(suite: Path, tmp_path: Path, *selection: str) -> dict[str, tuple[str, str]]:
    """Run their tests in a subprocess; return ``{test id: (outcome, first line of the message)}``."""
    report = tmp_path / "report.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["FLASKFS_SERVERS"] = str(HERE.parent / "servers.py")
    env["FLASKFS_TESTS_DIR"] = str(suite / "tests")
    command = [
        sys.executable, "-m", "pytest", *(selection or ["tests"]), "-p", "flaskfs_env", "-p", "no:cacheprovider",
        "-c", str(suite / "pytest.ini"), "--rootdir", str(suite), f"--junitxml={report}", "-q", "--tb=line",
        "-W", "ignore::DeprecationWarning",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, timeout=1500)
    if not report.exists():
        pytest.fail(f"their suite did not run:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or "").strip().splitlines()[0:1]
                message = message[0][:200] if message else ""
                break
        outcomes[test_id] = (outcome, message)
    return outcomes


def test_flask_fs_061_suite_passes(tmp_path):
    suite = fetch_suite()
    outcomes = run_suite(suite, tmp_path)
    for test_id, (outcome, message) in sorted(outcomes.items()):
        print(f"{outcome:8} {test_id}" + (f"  -- {message}" if message else ""))
    passed = sum(1 for outcome, _ in outcomes.values() if outcome == "passed")
    print(f"Flask-FS 0.6.1 suite: {passed} of {len(outcomes)} passed")
    assert len(outcomes) == TOTAL
    unexpected = sorted(
        test_id
        for test_id, (outcome, _) in outcomes.items()
        if outcome != "passed" and test_id not in ALLOWED_FAILURES and ".test_mongoengine." not in test_id
    )
    assert not unexpected, f"unexpected failures: {unexpected}"
    assert passed >= MIN_PASSED
