"""Maintainer tasks (``inv -l``): tests, quality, docs, benchmarks, and test servers."""

from __future__ import annotations

import os
import signal
import sys

from invoke import task

PID_FILE = ".servers.pid"
PY = ".venv/bin/python" if os.path.exists(".venv/bin/python") else sys.executable


@task(help={"args": "extra pytest arguments"})
def test(c, args=""):
    """Run the test suite (it starts its own moto and Swift servers)."""
    c.run(f"{PY} -m pytest {args}", pty=True)


@task
def qa(c):
    """Lint and format check."""
    c.run(f"{PY} -m ruff check flask_fs tests bench examples tasks.py")
    c.run(f"{PY} -m ruff format --check flask_fs tests bench examples tasks.py")


@task
def docs(c):
    """Build the documentation, warnings as errors."""
    c.run(f"{PY} -m sphinx -W --keep-going -b html docs docs/_build/html")


@task(help={"name": "one of local, s3, swift, gridfs, thumbnails, publish, sqla, jobs, batch, urls (default: all)"})
def bench(c, name=""):
    """Run the benchmarks; results go to bench/results/."""
    everything = ["local", "s3", "swift", "gridfs", "thumbnails", "publish", "sqla", "jobs", "batch", "urls"]
    names = [name] if name else everything
    for each in names:
        c.run(f"{PY} bench/bench_{each}.py", pty=True)


@task
def start(c):
    """Start moto's S3 and a Swift All-In-One in the background and print their settings."""
    c.run(f"nohup {PY} -m tests.servers > .servers.json 2> .servers.log & echo $! > {PID_FILE}")
    c.run("sleep 3; cat .servers.json")


@task
def stop(c):
    """Stop the servers started by ``inv start``."""
    if os.path.exists(PID_FILE):
        with open(PID_FILE) as f:
            os.kill(int(f.read()), signal.SIGTERM)
        os.remove(PID_FILE)
