"""GridFS backend against raw GridFSBucket calls: 1,000 x 4 KiB files and one 256 MiB file, same run.

Run from the project virtualenv: ``python bench/bench_gridfs.py`` (``--help`` for options). With
FLASK_FS_MONGO_URL set (``mongodb://host:port``), both sides talk to that MongoDB, in a fresh database
dropped at the end. Without it they run on mongomock, in this process: those figures compare the
code each side runs (and how many queries it makes: mongomock answers each by scanning a Python
collection), not a server's speed.

Small files: raw ``GridFSBucket.upload_from_stream`` + ``open_download_stream(file_id)`` against a
flask_fs storage's ``save`` (default policy: no overwrite, race-checked) + ``read`` by name,
alternating batch by batch (bench/_common.interleave). Large file: saved from a streaming source and
read back in 1 MiB chunks, both ways, alternating who goes first. Memory: mongomock keeps the stored
bytes in this process, so each side's peak includes the file itself; the flask_fs layer's cost is its
peak minus raw GridFSBucket's peak for the same operation (on a real server both peaks are the
client's own). Results: a table on stdout and bench/results/gridfs.json.

Targets (issue 3): small files >= 0.9x raw ops/s; the 256 MiB file saved and streamed back with
< 32 MiB extra peak memory over raw GridFSBucket.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import platform
import sys
import time
import types
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import gridfs  # noqa: E402
import pymongo  # noqa: E402
from _common import Producer, add_size_arguments, interleave, peak_memory, save_results, table  # noqa: E402
from flask import Flask  # noqa: E402

import flask_fs as fs  # noqa: E402

MIB = 1024 * 1024
CHUNK = MIB


def use_mongomock() -> None:
    """Make ``pymongo.MongoClient`` build mongomock clients sharing one in-memory server."""
    import mongomock
    import mongomock.gridfs
    import mongomock.store

    mongomock.gridfs.enable_gridfs_integration()
    mongomock.MongoClient.options = property(lambda self: types.SimpleNamespace(timeout=None))
    pymongo.MongoClient = functools.partial(mongomock.MongoClient, _store=mongomock.store.ServerStore())


def make_storage(url: str, database: str) -> tuple[Flask, fs.Storage]:
    app = Flask("bench")
    app.config.update(FS_BACKEND="gridfs", FS_GRIDFS_MONGO_URL=url, FS_GRIDFS_MONGO_DB=database)
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    return app, files


def small_files(url: str, database: str, count: int, rounds: int, batches: int, data: bytes) -> dict:
    """Save then read ``count`` files per round, raw and flask_fs interleaved; total seconds per op."""
    totals = {"save": {"raw": 0.0, "flask_fs": 0.0}, "read": {"raw": 0.0, "flask_fs": 0.0}}
    for round_ in range(rounds):
        for op, seconds in small_round(url, database, f"raw{round_}", count, batches, data).items():
            for who in seconds:
                totals[op][who] += seconds[who]
    return totals


def small_round(url: str, database: str, raw_bucket: str, count: int, batches: int, data: bytes) -> dict:
    """One round of small files in fresh buckets, dropped at the end."""
    app, files = make_storage(url, database)
    db = pymongo.MongoClient(url)[database]
    bucket = gridfs.GridFSBucket(db, bucket_name=raw_bucket)
    names = [f"dir/file-{i:05d}.bin" for i in range(count)]
    ids: list = [None] * count

    def raw_save(i: int) -> None:
        ids[i] = bucket.upload_from_stream(names[i], io.BytesIO(data))

    def fs_save(i: int) -> None:
        files.save(io.BytesIO(data), names[i])

    def raw_read(i: int) -> None:
        with bucket.open_download_stream(ids[i]) as f:
            assert len(f.read()) == len(data)

    def fs_read(i: int) -> None:
        assert len(files.read(names[i])) == len(data)

    seconds = {}
    with app.test_request_context():  # as in a view: the app context is already there
        files.write(".warm-up", b"")  # connect, create the indexes, like the raw bucket's first write
        files.delete(".warm-up")
        bucket.delete(bucket.upload_from_stream(".warm-up", io.BytesIO(b"")))
        seconds["save"] = interleave({"raw": raw_save, "flask_fs": fs_save}, batches, count // batches)
        seconds["read"] = interleave({"raw": raw_read, "flask_fs": fs_read}, batches, count // batches)
        assert sorted(files.list_files()) == names
        for name in ("files.files", "files.chunks", f"{raw_bucket}.files", f"{raw_bucket}.chunks"):
            files.backend.database.drop_collection(name)
    return seconds


def large_file(url: str, database: str, size: int, rounds: int, block: bytes) -> dict:
    """Save then stream back one ``size``-byte file per round, raw and flask_fs, alternating who goes first.

    Each side deletes its file before the other runs, so no peak includes the other side's data."""
    app, files = make_storage(url, database)
    bucket = gridfs.GridFSBucket(pymongo.MongoClient(url)[database], bucket_name="raw")
    results = {op: {w: {"seconds": 0.0, "peak_mib": 0.0} for w in ("raw", "flask_fs")} for op in ("save", "read")}
    raw_id: list = [None]

    def raw_save() -> None:
        raw_id[0] = bucket.upload_from_stream("big.bin", Producer(size, block))

    def raw_read() -> int:
        total = 0
        with bucket.open_download_stream(raw_id[0]) as f:
            while chunk := f.read(CHUNK):
                total += len(chunk)
        return total

    def fs_save() -> None:
        files.save(Producer(size, block), "big.bin")

    def fs_read() -> int:
        return sum(len(chunk) for chunk in files.read_chunks("big.bin"))

    sides = {
        "raw": (raw_save, raw_read, lambda: bucket.delete(raw_id[0])),
        "flask_fs": (fs_save, fs_read, lambda: files.delete("big.bin")),
    }
    with app.app_context():
        for round_ in range(rounds):
            for who in ("raw", "flask_fs") if round_ % 2 == 0 else ("flask_fs", "raw"):
                save, read, delete = sides[who]
                for op, func in (("save", save), ("read", read)):
                    with peak_memory() as peak:
                        start = time.perf_counter()
                        result = func()
                        elapsed = time.perf_counter() - start
                    if op == "read":
                        assert result == size, (who, result)
                    results[op][who]["seconds"] += elapsed
                    results[op][who]["peak_mib"] = max(results[op][who]["peak_mib"], peak["extra_mib"])
                delete()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser, rounds=3, large_rounds=2)
    args = parser.parse_args()

    url = os.environ.get("FLASK_FS_MONGO_URL")
    server = "MongoDB at FLASK_FS_MONGO_URL" if url else "mongomock (in process)"
    if not url:
        use_mongomock()
        url = "mongodb://localhost"
    database = f"flaskfs-bench-{uuid.uuid4().hex[:8]}"
    try:
        data = os.urandom(args.size_kib * 1024)
        small = small_files(url, database, args.count, args.rounds, args.batches, data)
        large = large_file(url, database, args.large_mib * MIB, args.large_rounds, os.urandom(CHUNK))
    finally:
        pymongo.MongoClient(url).drop_database(database)

    n_small = args.count * args.rounds
    rows, report = [], {"server": server, "python": platform.python_version(), "args": vars(args)}
    for op in ("save", "read"):
        raw_ops, fs_ops = n_small / small[op]["raw"], n_small / small[op]["flask_fs"]
        rows.append(
            [
                f"{op} {args.size_kib} KiB x {args.count} x {args.rounds}",
                f"{raw_ops:,.0f}",
                f"{fs_ops:,.0f}",
                fs_ops / raw_ops,
                "",
                "",
                "",
                "",
                "",
            ]
        )
        report[f"small_{op}"] = {"raw_ops_s": raw_ops, "flask_fs_ops_s": fs_ops, "ratio": fs_ops / raw_ops}
    raw_both = n_small / (small["save"]["raw"] + small["read"]["raw"])
    fs_both = n_small / (small["save"]["flask_fs"] + small["read"]["flask_fs"])
    rows.append(
        [
            f"save+read {args.size_kib} KiB",
            f"{raw_both:,.0f}",
            f"{fs_both:,.0f}",
            fs_both / raw_both,
            "",
            "",
            "",
            "",
            "",
        ]
    )
    report["small_save_read"] = {"raw_ops_s": raw_both, "flask_fs_ops_s": fs_both, "ratio": fs_both / raw_both}
    for op in ("save", "read"):
        raw, ours = large[op]["raw"], large[op]["flask_fs"]
        total_mb = args.large_mib * MIB * args.large_rounds / 1e6
        raw_mbs, fs_mbs = total_mb / raw["seconds"], total_mb / ours["seconds"]
        extra = ours["peak_mib"] - raw["peak_mib"]
        rows.append(
            [
                f"{op} {args.large_mib} MiB x {args.large_rounds}",
                "",
                "",
                fs_mbs / raw_mbs,
                f"{raw_mbs:.0f}",
                f"{fs_mbs:.0f}",
                f"{raw['peak_mib']:.1f}",
                f"{ours['peak_mib']:.1f}",
                f"{extra:+.1f}",
            ]
        )
        report[f"large_{op}"] = {
            "raw_mb_s": raw_mbs,
            "flask_fs_mb_s": fs_mbs,
            "ratio": fs_mbs / raw_mbs,
            "raw_peak_mib": raw["peak_mib"],
            "flask_fs_peak_mib": ours["peak_mib"],
            "flask_fs_extra_over_raw_mib": extra,
        }
    header = [
        "operation",
        "raw ops/s",
        "flask_fs ops/s",
        "ratio",
        "raw MB/s",
        "flask_fs MB/s",
        "raw peak MiB",
        "flask_fs peak MiB",
        "flask_fs - raw MiB",
    ]
    print(f"GridFS backend vs raw GridFSBucket on {server}, Python {platform.python_version()}")
    if server.startswith("mongomock"):
        print("NOTE: mongomock figures only compare the code overhead of both sides (and their query counts),")
        print("      not a MongoDB server; peaks include the stored file, which mongomock keeps in this process.")
    print(table(rows, header))
    print("results:", save_results("gridfs", report))


if __name__ == "__main__":
    main()
