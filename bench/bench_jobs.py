"""Background jobs against raw boto3 and the local disk, same run, interleaved (moto in its own process).

Run from the project virtualenv: ``python bench/bench_jobs.py`` (``--help`` for sizes).

* Request time: saving a 64 MiB upload (a file on disk, as Werkzeug spools large uploads) with
  ``save(..., background=True)`` on an S3 storage, against the synchronous save to S3 and the save
  to a local storage. Target (issue 13): background within 1.2x of local.
* Promotion throughput: ``--promote`` uploads of 64 MiB saved in the background, timed from the
  first save until every promotion is done (4 job threads), against raw boto3 ``upload_file`` of
  the same files on 4 threads. Target: >= 0.9x raw.
* Migration: ``flask_fs.jobs.migrate`` of 2,000 x 64 KiB files local -> S3 (8 workers, no verify)
  against a raw threaded boto3 copy (8 threads, ``put_object`` of each file read from disk).
  Target: >= 0.8x raw.

Results: a table on stdout and bench/results/jobs.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import boto3  # noqa: E402
from _common import save_results, start_moto, table  # noqa: E402
from flask import Flask  # noqa: E402

import flask_fs as fs  # noqa: E402
from flask_fs import jobs  # noqa: E402
from flask_fs.jobs.ext import unlayered  # noqa: E402

MiB = 1024 * 1024


def make_app(endpoint: str, bucket: str, root: str) -> tuple[Flask, fs.Storage, fs.Storage]:
    app = Flask("bench_jobs", instance_path=os.path.join(root, "instance"))
    app.config.update(
        FS_ROOT=os.path.join(root, "fs"),
        REMOTE_FS_BACKEND="s3",
        REMOTE_FS_ENDPOINT=endpoint,
        REMOTE_FS_REGION="us-east-1",
        REMOTE_FS_ACCESS_KEY="testing",
        REMOTE_FS_SECRET_KEY="testing",
        REMOTE_FS_ADDRESSING_STYLE="path",
        REMOTE_FS_BUCKET=bucket,
        FS_JOBS_WORKERS=4,
    )
    remote, disk = fs.Storage("remote", fs.ALL, overwrite=True), fs.Storage("disk", fs.ALL, overwrite=True)
    fs.init_app(app, remote, disk)
    jobs.init_app(app)
    return app, remote, disk


def request_times(app: Flask, remote: fs.Storage, disk: fs.Storage, upload: str, rounds: int) -> dict[str, float]:
    """Seconds per save of the upload file: background to S3, synchronous to S3, to the local disk."""
    runtime = jobs.jobs_of(app)
    totals = {"background": 0.0, "s3": 0.0, "local": 0.0}
    runs = {
        "background": lambda f, i: remote.save(f, f"bg-{i}.bin", background=True),
        "s3": lambda f, i: remote.save(f, f"sync-{i}.bin"),
        "local": lambda f, i: disk.save(f, f"local-{i}.bin"),
    }
    names = list(runs)
    with app.app_context():
        for i in range(rounds):
            for name in names[i % 3 :] + names[: i % 3]:
                with open(upload, "rb") as f:
                    start = time.perf_counter()
                    runs[name](f, i)
                    totals[name] += time.perf_counter() - start
                runtime.wait()  # promotions finish between measures: they do not load the next one
    return {name: total / rounds for name, total in totals.items()}


def promotion(app: Flask, remote: fs.Storage, client: Any, bucket: str, upload: str, count: int) -> dict[str, float]:
    """Seconds to move ``count`` uploads to S3: background promotion (4 job threads) vs raw upload_file."""
    runtime = jobs.jobs_of(app)
    target = unlayered(remote.bind(app).backend)
    results = {}
    with app.app_context():
        names = []
        for i in range(count):  # fill the cache first: only the promotions are timed
            with open(upload, "rb") as f:
                names.append(f"promote-{i}.bin")
                remote.bind(app).backend.cache.save(f, names[-1], overwrite=True)
        start = time.perf_counter()
        for name in names:
            runtime.submit("promote", "remote", name, holds=True)
        runtime.wait()
        results["flask_fs"] = time.perf_counter() - start
    assert all(target.exists(name) for name in names)
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: client.upload_file(upload, bucket, f"raw-{i}.bin"), range(count)))
    results["boto3"] = time.perf_counter() - start
    return results


def migration(app: Flask, client: Any, bucket: str, root: str, count: int, size: int) -> dict[str, float]:
    """Seconds to copy ``count`` files of ``size`` bytes local -> S3: migrate() vs a raw threaded copy."""
    source = unlayered(fs.Storage("disk").bind(app).backend)
    target = unlayered(fs.Storage("remote").bind(app).backend)
    folder = os.path.join(root, "fs", "disk", "m")
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        with open(os.path.join(folder, f"{i}.bin"), "wb") as f:
            f.write(os.urandom(size))
    for name in list(source.list_files()):
        if not name.startswith("m/"):
            source.delete(name)
    journal = jobs.jobs_of(app).journal

    def raw_copy(i: int) -> None:
        with open(os.path.join(folder, f"{i}.bin"), "rb") as f:
            client.put_object(Bucket=bucket, Key=f"raw-m/{i}.bin", Body=f.read())

    results = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(raw_copy, range(count)))
    results["boto3"] = time.perf_counter() - start
    report = jobs.migrate(source, target, journal, (f"disk-{uuid.uuid4().hex}", "remote"), workers=8)
    assert report.ok and report.copied == count, report.summary()
    results["flask_fs"] = report.seconds
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upload-mib", type=int, default=64, help="size of the upload (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="saves of each kind (default: %(default)s)")
    parser.add_argument("--promote", type=int, default=4, help="uploads promoted (default: %(default)s)")
    parser.add_argument("--files", type=int, default=2000, help="files migrated (default: %(default)s)")
    parser.add_argument("--file-kib", type=int, default=64, help="size of a migrated file (default: %(default)s)")
    args = parser.parse_args()
    moto, endpoint = start_moto()
    try:
        with tempfile.TemporaryDirectory() as root:
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            client = boto3.client(
                "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )  # fmt: skip
            client.create_bucket(Bucket=bucket)
            app, remote, disk = make_app(endpoint, bucket, root)
            upload = os.path.join(root, "upload.bin")
            with open(upload, "wb") as f:
                for _ in range(args.upload_mib):
                    f.write(os.urandom(MiB))
            saves = request_times(app, remote, disk, upload, args.rounds)
            promoted = promotion(app, remote, client, bucket, upload, args.promote)
            migrated = migration(app, client, bucket, root, args.files, args.file_kib * 1024)
    finally:
        moto.kill()
    total_mib = args.promote * args.upload_mib
    rows = [
        [f"save {args.upload_mib} MiB, background (s)", saves["background"], saves["local"],
         saves["local"] / saves["background"], ">= 0.83 (within 1.2x of local)"],
        [f"save {args.upload_mib} MiB, synchronous to S3 (s)", saves["s3"], saves["local"],
         saves["local"] / saves["s3"], "-"],
        [f"promote {args.promote} x {args.upload_mib} MiB (MiB/s)", total_mib / promoted["flask_fs"],
         total_mib / promoted["boto3"], promoted["boto3"] / promoted["flask_fs"], ">= 0.9"],
        [f"migrate {args.files} x {args.file_kib} KiB (files/s)", args.files / migrated["flask_fs"],
         args.files / migrated["boto3"], migrated["boto3"] / migrated["flask_fs"], ">= 0.8"],
    ]  # fmt: skip
    print(table(rows, ["measure", "flask_fs", "reference", "ratio", "target"]))
    report = {
        "python": platform.python_version(),
        "args": vars(args),
        "request_seconds": saves,
        "promotion_seconds": promoted,
        "migration_seconds": migrated,
    }
    print("results:", save_results("jobs", report))


if __name__ == "__main__":
    main()
