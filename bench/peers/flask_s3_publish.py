"""Flask-S3 0.3.3 as a benchmark peer: build its virtualenv, and publish an app's static files with it.

``python bench/peers/flask_s3_publish.py build`` creates ``bench/.venvs/flask-s3`` (idempotent).
Inside that virtualenv, ``python flask_s3_publish.py publish STATIC_DIR BLUEPRINT_STATIC_DIR BUCKET``
times ``flask_s3.create_all`` against ``AWS_ENDPOINT_URL`` (a first and an unchanged publish) and
prints the seconds as JSON.
Flask-S3 0.3.3 predates Flask 2.3, so it runs with Flask 2.2 / Werkzeug 2.2 and a current boto3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import venv
from pathlib import Path

VENV = Path(__file__).resolve().parent.parent / ".venvs" / "flask-s3"
REQUIREMENTS = ["flask-s3==0.3.3", "flask>=2.2,<2.3", "werkzeug>=2.2,<2.3", "boto3", "six"]


def python() -> Path:
    """Interpreter of the Flask-S3 virtualenv."""
    return VENV / "bin" / "python"


def ensure() -> Path:
    """Create the virtualenv and install Flask-S3 with its working dependencies, unless done already."""
    stamp = VENV / ".installed"
    wanted = "\n".join(REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == wanted:
        return python()
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    subprocess.run([python(), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return python()


def publish(static: str, blueprint_static: str, bucket: str) -> None:
    """Time ``flask_s3.create_all`` (run inside the peer virtualenv): a first publish, then an
    unchanged one (``FLASKS3_ONLY_MODIFIED``, so it compares file hashes); print both as JSON."""
    import flask_s3
    from flask import Blueprint, Flask

    app = Flask("bench", static_folder=static)
    app.register_blueprint(Blueprint("admin", "bench", static_folder=blueprint_static, url_prefix="/admin"))
    app.config.update(
        FLASKS3_BUCKET_NAME=bucket,
        FLASKS3_REGION="us-east-1",
        FLASKS3_ONLY_MODIFIED=True,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    flask_s3.FlaskS3(app)
    timings = {}
    for run in ("first", "again"):
        start, cpu = time.perf_counter(), time.process_time()
        flask_s3.create_all(app, put_bucket_acl=False)
        timings[run] = time.perf_counter() - start
        timings[f"{run}_client_cpu"] = time.process_time() - cpu
    print(json.dumps(timings))


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        print(ensure())
    elif sys.argv[1:2] == ["publish"]:
        publish(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
