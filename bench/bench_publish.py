"""Publishing 500 static files (1-100 KiB, nested, one blueprint) to S3: flask_fs vs Flask-S3 0.3.3.

Both publish to the same moto server, run as its own process, in the same run, alternately, each
round into fresh (versioned) buckets. Flask-S3 runs in its own virtualenv
(``bench/peers/flask_s3_publish.py`` builds it) and reaches moto through ``AWS_ENDPOINT_URL``.
Real S3 is tens of milliseconds away: by default every side reaches moto through
bench/latency_proxy.py, a 20 ms round trip (``--delay-ms 0`` for plain loopback). Measured:

* first publish of the 500 files;
* an unchanged re-publish (Flask-S3 with ``FLASKS3_ONLY_MODIFIED``; flask_fs by default), which
  must upload nothing;
* the same two through Flask-S3's API, ``flask_fs.static.create_all`` with the peer's ``FLASKS3_*``
  settings, and the PUTs each unchanged re-publish sent (from the buckets' versions);
* flask_fs's re-publish with ``verify=True`` (lists the bucket and checks each file), and whether it
  notices a file deleted and one changed in the bucket behind its back.

moto's own CPU time is recorded for each first publish: a PUT costs moto a few milliseconds of CPU
whoever sends it, which bounds how fast any client can publish to it.

Run: ``.venv/bin/python bench/bench_publish.py [--rounds N] [--delay-ms MS] [--workers N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3
from flask import Blueprint, Flask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import save_results, start_moto, table  # noqa: E402
from bench.latency_proxy import start_proxy  # noqa: E402
from bench.peers import flask_s3_publish as peer  # noqa: E402
from flask_fs.static import StaticFiles, publish  # noqa: E402
from flask_fs.static.settings import Settings as StaticSettings  # noqa: E402

COUNT, BLUEPRINT_COUNT = 500, 50
EXTENSIONS = (".css", ".js", ".png", ".svg", ".json", ".woff2", ".txt", ".jpg")
FOLDERS = ("", "css", "js", "js/vendor", "img", "img/icons", "img/icons/small", "fonts")


def make_site(root: Path, seed: int = 42) -> tuple[Path, Path, int]:
    """Write the files: 450 in the app's static folder, 50 in the blueprint's; return folders and bytes."""
    rng = random.Random(seed)
    total = 0
    for folder, count, subfolders in (
        ("static", COUNT - BLUEPRINT_COUNT, FOLDERS),
        ("admin_static", BLUEPRINT_COUNT, ("", "css", "js/lib")),
    ):
        for i in range(count):
            path = root / folder / rng.choice(subfolders) / f"f{i:03d}{rng.choice(EXTENSIONS)}"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = rng.randbytes(rng.randint(1024, 100 * 1024))
            path.write_bytes(data)
            total += len(data)
    return root / "static", root / "admin_static", total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip


def key_count(s3, bucket: str) -> int:
    return sum(len(page.get("Contents", ())) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))


def versioned_bucket(s3, bucket: str) -> str:
    """A new bucket that keeps every version, so that PUTs can be counted afterwards."""
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def repeated_puts(s3, bucket: str) -> int:
    """PUTs beyond the first of each key: what re-publishing wrote."""
    versions = keys = 0
    seen = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", ()):
            versions += 1
            keys += version["Key"] not in seen
            seen.add(version["Key"])
    return versions - keys


def empty_bucket(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", ())]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    s3.delete_bucket(Bucket=bucket)


def run_flask_s3(python: Path, static: Path, bp_static: Path, endpoint: str, moto_pid: int) -> dict:
    bucket = versioned_bucket(client(endpoint), f"flask-s3-{uuid.uuid4().hex[:10]}")  # Flask-S3 would create it
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    before = cpu_seconds(moto_pid)
    out = subprocess.run(
        [python, peer.__file__, "publish", str(static), str(bp_static), bucket],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    timings = json.loads(out.stdout.strip().splitlines()[-1])
    timings["moto_cpu"] = cpu_seconds(moto_pid) - before  # both runs: the second is 2 requests
    timings["objects"] = key_count(client(endpoint), bucket) - 1  # its .file-hashes
    timings["again_puts"] = repeated_puts(client(endpoint), bucket)
    empty_bucket(client(endpoint), bucket)
    return timings


def run_compat(static: Path, bp_static: Path, endpoint: str, workdir: Path, workers: int) -> dict:
    """flask_fs through Flask-S3's API: ``flask_fs.static.create_all`` with the same ``FLASKS3_*``
    settings as the peer; a first publish, then an unchanged one."""
    from flask_fs.static import compat

    bucket = versioned_bucket(client(endpoint), f"flask-fs-compat-{uuid.uuid4().hex[:10]}")
    app = Flask("bench_site", static_folder=str(static), root_path=str(workdir))
    app.register_blueprint(
        Blueprint("admin", "bench_site", static_folder=str(bp_static), root_path=str(workdir), url_prefix="/admin")
    )
    app.config.update(
        FLASKS3_BUCKET_NAME=bucket, FLASKS3_REGION="us-east-1", FLASKS3_ONLY_MODIFIED=True,
        FLASKS3_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        FS_STATIC_WORKERS=workers,
    )  # fmt: skip
    compat.FlaskS3(app)
    timings: dict = {}
    for run in ("first", "again"):
        start = time.perf_counter()
        result = compat.create_all(app, put_bucket_acl=False)
        timings[run] = time.perf_counter() - start
        timings[f"{run}_uploaded"] = len(result.uploaded)
    timings["objects"] = timings["first_uploaded"]
    timings["again_puts"] = repeated_puts(client(endpoint), bucket)
    empty_bucket(client(endpoint), bucket)
    return timings


def run_ours(static: Path, bp_static: Path, endpoint: str, moto_pid: int, workdir: Path, workers: int) -> dict:
    bucket = f"flask-fs-{uuid.uuid4().hex[:10]}"
    app = Flask(
        "bench_site", static_folder=str(static), root_path=str(workdir), instance_path=str(workdir / "instance")
    )
    app.register_blueprint(
        Blueprint("admin", "bench_site", static_folder=str(bp_static), root_path=str(workdir), url_prefix="/admin")
    )
    app.config.update(
        ASSETS_FS_BACKEND="s3", ASSETS_FS_ENDPOINT=endpoint, ASSETS_FS_REGION="us-east-1",
        ASSETS_FS_ACCESS_KEY="testing", ASSETS_FS_SECRET_KEY="testing", ASSETS_FS_BUCKET=bucket,
        ASSETS_FS_CREATE_BUCKET=True, ASSETS_FS_ADDRESSING_STYLE="path", FS_STATIC_WORKERS=workers,
    )  # fmt: skip
    StaticFiles(app)
    timings: dict = {}
    before, cpu = cpu_seconds(moto_pid), time.process_time()
    start = time.perf_counter()
    result = publish(app)
    timings["first"] = time.perf_counter() - start
    timings["first_client_cpu"] = time.process_time() - cpu
    timings["moto_cpu"] = cpu_seconds(moto_pid) - before
    timings["objects"] = len(result.uploaded)
    start = time.perf_counter()
    again = publish(app)
    timings["again"] = time.perf_counter() - start
    timings["again_uploaded"] = len(again.uploaded)
    start = time.perf_counter()
    verified = publish(app, verify=True)
    timings["verify"] = time.perf_counter() - start
    timings["verify_uploaded"] = len(verified.uploaded)
    s3 = client(endpoint)  # behind its back: one file deleted, one replaced
    victims = sorted(result.uploaded)[:2]
    s3.delete_object(Bucket=bucket, Key=victims[0])
    s3.put_object(Bucket=bucket, Key=victims[1], Body=b"tampered")
    timings["trusting_uploaded"] = len(publish(app).uploaded)
    start = time.perf_counter()
    repaired = publish(app, verify=True)
    timings["verify_repair"] = time.perf_counter() - start
    timings["verify_repaired"] = sorted(repaired.reasons.values())
    empty_bucket(s3, bucket)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=10.0,
        help="delay each way added by bench/latency_proxy.py; 0: loopback (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=StaticSettings.workers,
                        help="FS_STATIC_WORKERS for flask_fs (default: %(default)s)")  # fmt: skip
    args = parser.parse_args()
    python = peer.ensure()
    workdir = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    moto, endpoint = start_moto()
    proxy = None
    load_before = os.getloadavg()
    try:
        if args.delay_ms:
            proxy, endpoint = start_proxy(endpoint, args.delay_ms)
        static, bp_static, total = make_site(workdir / "site")
        runs: dict[str, list[dict]] = {"flask-s3": [], "flask_fs": [], "compat": []}
        for round_ in range(args.rounds):
            order = list(runs)[round_ % 3 :] + list(runs)[: round_ % 3]
            for name in order:
                if name == "flask-s3":
                    runs[name].append(run_flask_s3(python, static, bp_static, endpoint, moto.pid))
                elif name == "compat":
                    runs[name].append(run_compat(static, bp_static, endpoint, workdir, args.workers))
                else:
                    runs[name].append(run_ours(static, bp_static, endpoint, moto.pid, workdir, args.workers))
                print(name, json.dumps(runs[name][-1]), file=sys.stderr)
    finally:
        for proc in (proxy, moto):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    theirs, ours = runs["flask-s3"], runs["flask_fs"]
    summary = {
        "files": COUNT,
        "bytes": total,
        "rounds": args.rounds,
        "round_trip_ms": 2 * args.delay_ms,
        "workers": args.workers,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "compat_first": med("compat", "first"),
        "compat_again": med("compat", "again"),
        "compat_first_speedup": med("flask-s3", "first") / med("compat", "first"),
        "flask_s3_again_puts": med("flask-s3", "again_puts"),
        "compat_again_puts": med("compat", "again_puts"),
        "flask_s3_first": med("flask-s3", "first"),
        "flask_fs_first": med("flask_fs", "first"),
        "first_speedup": med("flask-s3", "first") / med("flask_fs", "first"),
        "flask_s3_again": med("flask-s3", "again"),
        "flask_fs_again": med("flask_fs", "again"),
        "flask_fs_verify": med("flask_fs", "verify"),
        "flask_fs_verify_repair": med("flask_fs", "verify_repair"),
        "flask_s3_first_client_cpu": med("flask-s3", "first_client_cpu"),
        "flask_fs_first_client_cpu": med("flask_fs", "first_client_cpu"),
        "moto_cpu_first_flask_fs": med("flask_fs", "moto_cpu"),
        "moto_cpu_flask_s3_both_runs": med("flask-s3", "moto_cpu"),
        "runs": runs,
    }
    assert all(run["objects"] == COUNT for run in theirs + ours + runs["compat"]), "a side did not publish every file"
    assert all(run["again_uploaded"] == 0 and run["verify_uploaded"] == 0 for run in ours)
    assert all(run["verify_repaired"] == ["changed in the storage", "missing from the storage"] for run in ours)
    rows = [
        ["first publish (500 files)", summary["flask_s3_first"], summary["flask_fs_first"], summary["compat_first"]],
        ["unchanged re-publish", summary["flask_s3_again"], summary["flask_fs_again"], summary["compat_again"]],
        ["PUTs in the unchanged re-publish", summary["flask_s3_again_puts"], 0, summary["compat_again_puts"]],
        ["re-publish, verify=True", "-", summary["flask_fs_verify"], "-"],
        ["verify, 1 deleted + 1 changed in bucket", "-", summary["flask_fs_verify_repair"], "-"],
        ["client CPU, first publish", summary["flask_s3_first_client_cpu"], summary["flask_fs_first_client_cpu"], "-"],
        ["moto CPU, first publish", "-", summary["moto_cpu_first_flask_fs"], "-"],
    ]  # fmt: skip
    print(f"round trip {2 * args.delay_ms:g} ms, FS_STATIC_WORKERS={args.workers}, load {load_before}")
    print(table(rows, ["seconds (median of rounds)", "Flask-S3 0.3.3", "flask_fs", "flask_fs create_all"]))
    print(f"first publish: flask_fs is {summary['first_speedup']:.2f}x faster ({total / 2**20:.1f} MiB)")
    print("results:", save_results("publish", summary))


if __name__ == "__main__":
    main()
