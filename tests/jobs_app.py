"""An app for the jobs tests run in other processes (``flask --app tests.jobs_app``, workers, kill -9).

Its settings come as JSON in ``FLASK_FS_TEST_CONFIG``; its storages are ``files`` (every
extension) and ``other``. With ``FLASK_FS_TEST_HANG`` set to a task name, the first attempt of
each job of that task prints ``STARTED <job id>`` and hangs, so a test can kill the process there.
"""

from __future__ import annotations

import json
import os
import sys
import time

from flask import Flask

import flask_fs as fs
from flask_fs import jobs

files = fs.Storage("files", fs.ALL)
other = fs.Storage("other", fs.ALL)


def create_app() -> Flask:
    config = json.loads(os.environ.get("FLASK_FS_TEST_CONFIG", "{}"))
    app = Flask(__name__, instance_path=config.pop("INSTANCE_PATH"))
    app.config.update(config)
    fs.init_app(app, files, other)
    jobs.init_app(app)
    hang = os.environ.get("FLASK_FS_TEST_HANG")
    if hang:

        def started(task, job_id, attempt, **_):
            if task == hang and attempt == 1:
                print(f"STARTED {job_id}", flush=True)
                sys.stdout.flush()
                time.sleep(600)

        jobs.job_started.connect(started, weak=False)
    return app


if __name__ == "__main__":  # python -m tests.jobs_app NAME...: save each NAME in the background, then wait
    # (each is FLASK_FS_TEST_SIZE bytes of "x" followed by its name)
    application = create_app()
    with application.app_context():
        size = int(os.environ.get("FLASK_FS_TEST_SIZE", "1024"))
        for name in sys.argv[1:]:
            files.save(b"x" * size + name.encode(), name, background=True)
        print("SAVED", flush=True)
        jobs.jobs_of().wait(600)
