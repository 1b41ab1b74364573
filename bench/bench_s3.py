"""S3 backend against raw boto3: 1,000 x 4 KiB files and one 256 MiB file, same run, interleaved.

Run from the project virtualenv: ``python bench/bench_s3.py`` (``--help`` for options; ``--swift`` also
runs against Swift's S3 API, which checks signatures like AWS). The script starts moto's S3 server in
a process of its own, so the objects it keeps in memory don't count as ours.

* Small files: raw ``put_object`` / ``get_object`` against ``Storage.save`` / ``Storage.read``,
  alternating batch by batch (bench/_common.interleave).
* Large file: a generator-like source (nothing held in memory) uploaded by raw ``upload_fileobj`` with
  boto3's defaults and by ``Storage.save``, then the same from a file on disk (``save-file``: a
  seekable source, which flask_fs hashes before sending), then streamed back by ``get_object`` and by
  ``Storage.read_chunks``, and read into bytes by ``get_object()["Body"].read()`` and ``Storage.read``.
  Each run happens in a fresh child process, so the peak memory it adds is
  its own and not the allocator's left-overs from the previous run; the order alternates by round.
  The file-on-disk save also runs as raw boto3 that first hashes the file and stores the SHA-256
  as flask_fs does (``raw+sha256``): what the checksum costs by itself.
  The large file runs again through bench/latency_proxy.py (``--delay-ms``, 10 ms each way by
  default), where the number of parts in flight counts as it does against a distant S3.

Targets (issue 3): small files >= 0.9x the raw ops/s; the large file saved and read back with less
than 32 MiB of extra peak memory. Results: a table on stdout and bench/results/s3.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import boto3  # noqa: E402
from _common import Producer, add_size_arguments, interleave, peak_memory, save_results, start_moto, table  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402
from flask import Flask  # noqa: E402
from latency_proxy import start_proxy  # noqa: E402

import flask_fs as fs  # noqa: E402
from tests.servers import start_swift  # noqa: E402

MIB = 1024 * 1024
#: The large-file runs: save from a generator-like stream, save from a file on disk, stream back,
#: read back into bytes.
LARGE_OPS = ("save", "save-file", "read", "read-bytes")
#: Who runs them: raw boto3, flask_fs, and (save-file only) raw boto3 that first hashes the file and
#: stores the SHA-256 as flask_fs does: the cost of the checksum alone.
WHO = ("raw", "flask_fs", "raw+sha256")


def raw_client(server: dict[str, str]) -> Any:
    """A boto3 client with boto3's defaults (path-style addressing, as the local servers need)."""
    return boto3.client(
        "s3", endpoint_url=server["endpoint"], region_name="us-east-1", aws_access_key_id=server["key"],
        aws_secret_access_key=server["secret"], config=BotoConfig(s3={"addressing_style": "path"}),
    )  # fmt: skip


def make_storage(server: dict[str, str], bucket: str) -> tuple[Flask, fs.Storage]:
    app = Flask("bench")
    app.config.update(
        FS_BACKEND="s3", FS_S3_ENDPOINT=server["endpoint"], FS_S3_REGION="us-east-1", FS_S3_ADDRESSING_STYLE="path",
        FS_S3_ACCESS_KEY=server["key"], FS_S3_SECRET_KEY=server["secret"], FS_S3_CREATE_BUCKET=True,
        FILES_FS_BUCKET=bucket,
    )  # fmt: skip
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    return app, files


def small_files(server: dict[str, str], count: int, rounds: int, batches: int, data: bytes) -> dict[str, Any]:
    """Save then read ``count`` files per round, raw and flask_fs interleaved; total seconds per op."""
    totals = {"save": {"raw": 0.0, "flask_fs": 0.0}, "read": {"raw": 0.0, "flask_fs": 0.0}}
    for _ in range(rounds):
        for op, seconds in small_round(server, count, batches, data).items():
            for who in seconds:
                totals[op][who] += seconds[who]
    return totals


def small_round(server: dict[str, str], count: int, batches: int, data: bytes) -> dict[str, dict[str, float]]:
    client = raw_client(server)
    raw_bucket, fs_bucket = f"bench-raw-{uuid.uuid4().hex[:8]}", f"bench-fs-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=raw_bucket)
    app, files = make_storage(server, fs_bucket)
    names = [f"file-{i:05d}.bin" for i in range(count)]
    totals: dict[str, dict[str, float]] = {}
    with app.test_request_context():  # as in a view: the app context is already there
        files.write("warm-up", b"")  # creates the bucket: the first use checks it, once
        client.put_object(Bucket=raw_bucket, Key="warm-up", Body=b"")

        def raw_save(i: int) -> None:
            client.put_object(Bucket=raw_bucket, Key=names[i], Body=data)

        def fs_save(i: int) -> None:
            files.save(io.BytesIO(data), names[i])

        def raw_read(i: int) -> None:
            assert len(client.get_object(Bucket=raw_bucket, Key=names[i])["Body"].read()) == len(data)

        def fs_read(i: int) -> None:
            assert len(files.read(names[i])) == len(data)

        totals["save"] = interleave({"raw": raw_save, "flask_fs": fs_save}, batches, count // batches)
        totals["read"] = interleave({"raw": raw_read, "flask_fs": fs_read}, batches, count // batches)
        assert len(list(files.list_files())) == count + 1
    return totals


def child(spec: dict[str, Any]) -> dict[str, float]:
    """In a fresh process: one large save or read, raw or flask_fs; its seconds and extra peak memory."""
    server, size, key = spec["server"], spec["size"], spec["key"]
    client = raw_client(server)
    app, files = make_storage(server, spec["bucket"])
    with app.app_context():
        files.exists("warm-up")  # client made, bucket checked: both sides start connected
        client.head_bucket(Bucket=spec["bucket"])
        block = os.urandom(MIB)
        total = size
        with peak_memory() as peak:
            start = time.perf_counter()
            if spec["op"] == "read-bytes":  # the whole object as bytes: one buffer, as raw
                if spec["who"] == "raw":
                    total = len(client.get_object(Bucket=spec["bucket"], Key=key)["Body"].read())
                else:
                    total = len(files.read(key))
            elif spec["op"] != "read":
                from_file = spec["op"] == "save-file"
                with open(spec["path"], "rb") if from_file else io.BufferedReader(Producer(size, block), MIB) as stream:
                    if spec["who"] == "raw+sha256":  # what recording a SHA-256 at upload start costs raw boto3
                        digest = hashlib.sha256()
                        while block := stream.read(MIB):
                            digest.update(block)
                        stream.seek(0)
                        checksum = {"Metadata": {"sha256": digest.hexdigest()}}
                        client.upload_fileobj(stream, spec["bucket"], key, ExtraArgs=checksum)
                    elif spec["who"] == "raw":
                        client.upload_fileobj(stream, spec["bucket"], key)
                    else:
                        files.save(stream, key)
            elif spec["who"] == "raw":
                body = client.get_object(Bucket=spec["bucket"], Key=key)["Body"]
                total = sum(len(chunk) for chunk in body.iter_chunks(MIB))
            else:
                total = sum(len(chunk) for chunk in files.read_chunks(key))
            seconds = time.perf_counter() - start
    assert total == size, (spec, total)
    return {"seconds": seconds, "extra_mib": peak["extra_mib"]}


def large_file(server: dict[str, str], size: int, rounds: int, path: str) -> dict[str, Any]:
    """Save (from a stream, then from the file at ``path``) and stream back one ``size``-byte file per
    round, each run in its own process."""
    bucket = f"bench-big-{uuid.uuid4().hex[:8]}"
    raw_client(server).create_bucket(Bucket=bucket)
    results = {op: {who: {"seconds": 0.0, "peak_mib": 0.0} for who in WHO} for op in LARGE_OPS}
    for round_ in range(rounds):
        order = list(WHO) if round_ % 2 == 0 else list(reversed(WHO))
        for op in LARGE_OPS:
            for who in order:
                if who == "raw+sha256" and op != "save-file":
                    continue
                # reads: both sides read the object raw uploaded, so that they fetch the same bytes
                # with the same checksums (an object flask_fs wrote has a whole-object CRC32 that
                # botocore verifies on every GET, where raw's multipart one is left unchecked)
                owner = "raw" if op.startswith("read") else who
                spec = {"server": server, "bucket": bucket, "size": size, "op": op, "who": who, "path": path,
                        "key": f"{'file' if op == 'save-file' else 'big'}-{owner}-{round_}.bin"}  # fmt: skip
                out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                     capture_output=True, text=True)  # fmt: skip
                if out.returncode:
                    raise RuntimeError(f"{op} {who} failed:\n{out.stderr}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results[op][who]["seconds"] += result["seconds"]
                results[op][who]["peak_mib"] = max(results[op][who]["peak_mib"], result["extra_mib"])
        client = raw_client(server)
        for who in order:
            for kind in ("big", "file"):
                client.delete_object(Bucket=bucket, Key=f"{kind}-{who}-{round_}.bin")
    return results


def report_rows(label: str, args: argparse.Namespace, small: dict, large: dict) -> tuple[list, dict]:
    rows, report = [], {}
    n_small = args.count * args.rounds
    for op in ("save", "read") if small else ():
        raw_ops, fs_ops = n_small / small[op]["raw"], n_small / small[op]["flask_fs"]
        rows.append([label, f"{op} {args.size_kib} KiB x {args.count} x {args.rounds}", f"{raw_ops:,.0f}",
                     f"{fs_ops:,.0f}", fs_ops / raw_ops, "", "", "", ""])  # fmt: skip
        report[f"small_{op}"] = {"raw_ops_s": raw_ops, "flask_fs_ops_s": fs_ops, "ratio": fs_ops / raw_ops}
    for op in LARGE_OPS:
        raw, ours = large[op]["raw"], large[op]["flask_fs"]
        total_mb = args.large_mib * MIB * args.large_rounds / 1e6
        raw_mbs, fs_mbs = total_mb / raw["seconds"], total_mb / ours["seconds"]
        peaks = f"{raw['peak_mib']:.1f}", f"{ours['peak_mib']:.1f}"
        rows.append([label, f"{op} {args.large_mib} MiB x {args.large_rounds}", "", "", fs_mbs / raw_mbs,
                     f"{raw_mbs:.0f}", f"{fs_mbs:.0f}", *peaks])  # fmt: skip
        report[f"large_{op}"] = {"raw_mb_s": raw_mbs, "flask_fs_mb_s": fs_mbs, "ratio": fs_mbs / raw_mbs,
                                 "raw_peak_mib": raw["peak_mib"], "flask_fs_peak_mib": ours["peak_mib"]}  # fmt: skip
        hashed = large[op]["raw+sha256"]
        if hashed["seconds"]:
            hashed_mbs = total_mb / hashed["seconds"]
            rows.append([label, f"{op} vs raw + a SHA-256 pass", "", "", fs_mbs / hashed_mbs, f"{hashed_mbs:.0f}",
                         f"{fs_mbs:.0f}", f"{hashed['peak_mib']:.1f}", f"{ours['peak_mib']:.1f}"])  # fmt: skip
            report[f"large_{op}"].update(raw_sha256_mb_s=hashed_mbs, ratio_to_raw_sha256=fs_mbs / hashed_mbs)
    return rows, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser, rounds=3, large_rounds=2)
    parser.add_argument("--swift", action="store_true", help="also run against Swift's S3 API")
    parser.add_argument("--delay-ms", type=float, default=10,
                        help="one-way delay of the latency proxy for the large file, in ms (0: no proxied run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    moto, endpoint = start_moto()
    servers = {"moto": {"endpoint": endpoint, "key": "testing", "secret": "testing"}}
    swift = proxy = None
    try:
        if args.delay_ms:  # the large file again, through a distant link (no small files: too slow to loop)
            proxy, proxied = start_proxy(endpoint, args.delay_ms)
            label = f"moto +{2 * args.delay_ms:g} ms RTT"
            servers[label] = {**servers["moto"], "endpoint": proxied, "large_only": True}
        if args.swift:
            swift = start_swift()
            servers["swift-s3api"] = {"endpoint": swift.endpoint, "key": swift.user, "secret": swift.key}
        rows, report = [], {"python": platform.python_version(), "boto3": boto3.__version__, "args": vars(args)}
        data = os.urandom(args.size_kib * 1024)
        with tempfile.NamedTemporaryFile(prefix="flask-fs-bench-") as big:
            for _ in range(args.large_mib):
                big.write(os.urandom(MIB))
            big.flush()
            for label, server in servers.items():
                small = {}
                if not server.get("large_only"):
                    small = small_files(server, args.count, args.rounds, args.batches, data)
                large = large_file(server, args.large_mib * MIB, args.large_rounds, big.name)
                server_rows, report[label] = report_rows(label, args, small, large)
                rows += server_rows
    finally:
        moto.terminate()
        moto.wait(10)
        if proxy is not None:
            proxy.terminate()
        if swift is not None:
            swift.stop()
    header = ["server", "operation", "raw ops/s", "flask_fs ops/s", "ratio", "raw MB/s", "flask_fs MB/s",
              "raw peak MiB", "flask_fs peak MiB"]  # fmt: skip
    print(f"S3 backend vs raw boto3 {boto3.__version__}, Python {platform.python_version()}")
    print(table(rows, header))
    print("results:", save_results("s3", report))


if __name__ == "__main__":
    main()
