"""Many small files over a distant link: ``save_many``/``read_many`` against a loop of raw calls.

Real object stores are tens of milliseconds away, so a loop of small uploads waits a round trip
(or more) per file. The servers here (moto's S3 and, with ``--swift``, a Swift All-In-One) sit
behind bench/latency_proxy.py, which delays every byte ``--delay-ms`` each way (a 20 ms round trip
by default, no bandwidth cap). Measured, in the same run, alternating who goes first by round:

* S3: a loop of raw boto3 ``put_object`` / ``get_object`` against ``Storage.save_many`` /
  ``Storage.read_many`` (``BATCH_CONCURRENCY``, 16 by default);
* Swift: a loop of raw python-swiftclient ``put_object`` / ``get_object`` against the same.

moto answers every request with ``Connection: close`` (werkzeug's server), so each request also
pays a TCP handshake through the proxy, for both sides; moto's CPU (a few ms per PUT, on the same
two cores) bounds any client near 200 PUT/s.

Run: ``.venv/bin/python bench/bench_batch.py [--count N] [--rounds N] [--delay-ms MS] [--swift]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import boto3  # noqa: E402
import swiftclient  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402

import flask_fs as fs  # noqa: E402
from bench._common import save_results, start_moto, table  # noqa: E402
from bench.latency_proxy import start_proxy  # noqa: E402


def s3_sides(endpoint: str) -> tuple[dict[str, Any], fs.BoundStorage]:
    bucket = f"bench-batch-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=BotoConfig(s3={"addressing_style": "path"}),
    )  # fmt: skip
    client.create_bucket(Bucket=bucket)
    storage = fs.Storage("files", fs.ALL).from_settings({
        "FS_BACKEND": "s3", "FS_S3_ENDPOINT": endpoint, "FS_S3_REGION": "us-east-1", "FS_S3_ACCESS_KEY": "testing",
        "FS_S3_SECRET_KEY": "testing", "FS_S3_ADDRESSING_STYLE": "path", "FILES_FS_BUCKET": f"{bucket}-fs",
        "FS_S3_CREATE_BUCKET": True,
    })  # fmt: skip
    raw = {
        "save": lambda name, data: client.put_object(Bucket=bucket, Key=name, Body=data),
        "read": lambda name: client.get_object(Bucket=bucket, Key=name)["Body"].read(),
    }
    return raw, storage


def swift_sides(auth_url: str, user: str, key: str) -> tuple[dict[str, Any], fs.BoundStorage]:
    container = f"bench-batch-{uuid.uuid4().hex[:8]}"
    conn = swiftclient.Connection(authurl=auth_url, user=user, key=key)
    conn.put_container(container)
    storage = fs.Storage("files", fs.ALL).from_settings({
        "FS_BACKEND": "swift", "FS_SWIFT_AUTHURL": auth_url, "FS_SWIFT_USER": user, "FS_SWIFT_KEY": key,
        "FILES_FS_CONTAINER": f"{container}-fs",
    })  # fmt: skip
    raw = {
        "save": lambda name, data: conn.put_object(container, name, data),
        "read": lambda name: conn.get_object(container, name)[1],
    }
    return raw, storage


def run(raw: dict[str, Any], storage: fs.BoundStorage, count: int, rounds: int, data: bytes) -> dict[str, Any]:
    """Per round: raw loop and batch, order alternating; seconds per side and operation."""
    storage.write("warm-up", b"")  # the client made, the bucket or container checked
    raw["save"]("warm-up", b"")
    seconds: dict[str, dict[str, list[float]]] = {op: {"raw": [], "flask_fs": []} for op in ("save", "read")}
    for round_ in range(rounds):
        names = [f"r{round_}/file-{i:05d}.bin" for i in range(count)]
        order = ["raw", "flask_fs"] if round_ % 2 == 0 else ["flask_fs", "raw"]
        for who in order:
            start = time.perf_counter()
            if who == "raw":
                for name in names:
                    raw["save"](name, data)
            else:
                storage.save_many((name, data) for name in names)
            seconds["save"][who].append(time.perf_counter() - start)
        for who in order:
            start = time.perf_counter()
            got = [raw["read"](name) for name in names] if who == "raw" else storage.read_many(names)
            seconds["read"][who].append(time.perf_counter() - start)
            assert got == [data] * count
        print(round_, {op: {who: round(v[-1], 2) for who, v in sides.items()} for op, sides in seconds.items()},
              file=sys.stderr)  # fmt: skip
    return {
        op: {
            "raw_s": statistics.median(sides["raw"]),
            "flask_fs_s": statistics.median(sides["flask_fs"]),
            "speedup": statistics.median(sides["raw"]) / statistics.median(sides["flask_fs"]),
            "samples": sides,
        }
        for op, sides in seconds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="files per round (default: %(default)s)")
    parser.add_argument("--size-kib", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay-ms", type=float, default=10.0, help="delay each way (default: %(default)s)")
    parser.add_argument("--swift", action="store_true", help="also run against a Swift All-In-One")
    args = parser.parse_args()
    data = os.urandom(args.size_kib * 1024)
    report: dict[str, Any] = {"python": platform.python_version(), "boto3": boto3.__version__,
                              "load_before": os.getloadavg(), "args": vars(args)}  # fmt: skip
    started = []
    try:
        moto, endpoint = start_moto()
        started.append(moto)
        proxy, proxied = start_proxy(endpoint, args.delay_ms)
        started.append(proxy)
        raw, storage = s3_sides(proxied)
        report["s3-moto"] = run(raw, storage, args.count, args.rounds, data)
        storage.close()
        if args.swift:
            from tests.servers import start_swift

            swift = start_swift()
            try:
                swift_proxy, swift_proxied = start_proxy(f"http://127.0.0.1:{swift.port}", args.delay_ms)
                started.append(swift_proxy)
                raw, storage = swift_sides(f"{swift_proxied}/auth/v1.0", swift.user, swift.key)
                report["swift"] = run(raw, storage, args.count, args.rounds, data)
                storage.close()
            finally:
                swift.stop()
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(10)
    report["load_after"] = os.getloadavg()
    rows = [
        [server, f"{op} {args.count} x {args.size_kib} KiB", report[server][op]["raw_s"],
         report[server][op]["flask_fs_s"], report[server][op]["speedup"]]
        for server in ("s3-moto", "swift") if server in report for op in ("save", "read")
    ]  # fmt: skip
    print(f"{2 * args.delay_ms:g} ms round trip; seconds, median of {args.rounds} rounds; load {report['load_before']}")
    print(table(rows, ["server", "operation", "raw loop", "flask_fs batch", "speedup"]))
    print("results:", save_results("batch", report))


if __name__ == "__main__":
    main()
