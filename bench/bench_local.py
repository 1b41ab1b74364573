"""Local backend against plain file I/O: 1,000 x 4 KiB files and one 256 MiB file, same process, same run.

Run from the project virtualenv: ``python bench/bench_local.py`` (``--help`` for options). Each round
saves and reads the small files with plain ``open()`` and with a flask_fs storage alternately, batch
by batch (bench/_common.interleave), then writes and streams back the large file both ways (each alone
on a synced disk), so the two share the same disk conditions. Both write into the same fresh folder on
the real disk (``--dir``, default the system temporary folder; a RAM disk is refused): on ext4 two
sibling folders can differ by 5% to 4x in file-creation cost. Results: a table on stdout (the ratio of
the totals, and the median of the per-round ratios, which shows how noisy the run was) and
bench/results/local.json.

Targets (issue 2): save >= 0.95x and read >= 0.9x the raw ops/s; the 256 MiB file saved from a
streaming source and read back with ``read_chunks`` in under 32 MiB of extra peak memory.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _common import Producer, add_size_arguments, interleave, peak_memory, save_results, table  # noqa: E402
from flask import Flask  # noqa: E402

import flask_fs as fs  # noqa: E402

MIB = 1024 * 1024
CHUNK = MIB


def filesystem_of(path: str) -> str:
    """The file system type holding ``path`` (from /proc/mounts)."""
    path, best = os.path.realpath(path), ("", "?")
    with open("/proc/mounts") as f:
        for line in f:
            _, mount, kind, *_ = line.split()
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best[0]):
                best = (mount, kind)
    return best[1]


def small_files(work: str, count: int, rounds: int, batches: int, data: bytes) -> list[dict[str, dict[str, float]]]:
    """Save then read ``count`` files per round, raw and flask_fs interleaved; seconds per op, per round."""
    return [small_round(work, count, batches, data) for _ in range(rounds)]


def small_round(work: str, count: int, batches: int, data: bytes) -> dict[str, dict[str, float]]:
    """One round of :func:`small_files`, in a fresh folder that both write to.

    Both go to the same folder: on ext4 the cost of creating a file depends a lot on where its
    folder's inodes live (two sibling folders differ by 5% to 4x here), so separate folders would
    measure the disk layout, not the code.
    """
    fs_root = os.path.join(work, "fs")
    os.makedirs(fs_root)
    app = Flask("bench", instance_path=os.path.join(work, "instance"))
    app.config.update(FILES_FS_ROOT=fs_root)
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    names = [f"file-{i:05d}.bin" for i in range(count)]
    raw_paths = [os.path.join(fs_root, f"raw-{i:05d}.bin") for i in range(count)]

    def raw_save(i: int) -> None:
        with open(raw_paths[i], "wb") as f:
            f.write(data)

    def fs_save(i: int) -> None:
        files.save(io.BytesIO(data), names[i])

    def raw_read(i: int) -> None:
        with open(raw_paths[i], "rb") as f:
            assert len(f.read()) == len(data)

    def fs_read(i: int) -> None:
        assert len(files.read(names[i])) == len(data)

    result = {}
    with app.test_request_context():  # as in a view: the app context is already there
        result["save"] = interleave({"raw": raw_save, "flask_fs": fs_save}, batches, count // batches)
        result["read"] = interleave({"raw": raw_read, "flask_fs": fs_read}, batches, count // batches)
        assert sorted(files.list_files()) == sorted(names + [os.path.basename(path) for path in raw_paths])
    shutil.rmtree(fs_root)
    return result


def large_file(work: str, size: int, rounds: int, block: bytes) -> dict[str, dict[str, dict[str, Any]]]:
    """Write then stream back one ``size``-byte file per round, raw and flask_fs, alternating who goes first."""
    fs_root = os.path.join(work, "fs")
    app = Flask("bench", instance_path=os.path.join(work, "instance"))
    app.config.update(FILES_FS_ROOT=fs_root)
    files = fs.Storage("files", fs.ALL)
    fs.init_app(app, files)
    os.makedirs(fs_root)
    raw_path = os.path.join(fs_root, "big-raw.bin")  # same folder: see small_round
    results: dict[str, dict[str, dict[str, Any]]] = {
        op: {who: {"seconds": [], "peak_mib": 0.0} for who in ("raw", "flask_fs")} for op in ("save", "read")
    }

    def raw_save() -> None:
        source = Producer(size, block)
        with open(raw_path, "wb") as f:
            while chunk := source.read(CHUNK):
                f.write(chunk)

    def fs_save() -> None:
        files.save(Producer(size, block), "big.bin")

    def raw_read() -> int:
        total = 0
        with open(raw_path, "rb") as f:
            while chunk := f.read(CHUNK):
                total += len(chunk)
        return total

    def fs_read() -> int:
        return sum(len(chunk) for chunk in files.read_chunks("big.bin"))

    saves, reads = {"raw": raw_save, "flask_fs": fs_save}, {"raw": raw_read, "flask_fs": fs_read}

    with app.app_context():
        for round_ in range(rounds):
            order = ["raw", "flask_fs"] if round_ % 2 == 0 else ["flask_fs", "raw"]
            for who in order:  # each one alone on the disk: write, read back, delete
                for op, func in (("save", saves[who]), ("read", reads[who])):
                    os.sync()  # start with no dirty pages left by the previous step
                    with peak_memory() as peak:
                        start = time.perf_counter()
                        result = func()
                        elapsed = time.perf_counter() - start
                    if op == "read":
                        assert result == size, (who, result)
                    results[op][who]["seconds"].append(elapsed)
                    results[op][who]["peak_mib"] = max(results[op][who]["peak_mib"], peak["extra_mib"])
                if who == "raw":
                    os.unlink(raw_path)
                else:
                    files.delete("big.bin")
    os.sync()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dir", default=tempfile.gettempdir(), help="folder on the disk to test (default: %(default)s)"
    )
    add_size_arguments(parser, rounds=10, large_rounds=6)
    args = parser.parse_args()

    kind = filesystem_of(args.dir)
    if kind in ("tmpfs", "ramfs") and not os.environ.get("BENCH_ALLOW_RAM"):
        parser.error(f"{args.dir} is on {kind}: pick a folder on a real disk with --dir")
    work = tempfile.mkdtemp(prefix="flask-fs-bench-", dir=args.dir)
    try:
        data = os.urandom(args.size_kib * 1024)
        small = small_files(work, args.count, args.rounds, args.batches, data)
        large = large_file(work, args.large_mib * MIB, args.large_rounds, os.urandom(CHUNK))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows, report = [], {"filesystem": kind, "python": platform.python_version(), "args": vars(args)}
    mb = args.size_kib * 1024 / 1e6
    for op in ("save", "read"):
        raw_s = sum(r[op]["raw"] for r in small)
        fs_s = sum(r[op]["flask_fs"] for r in small)
        raw_ops, fs_ops = args.count * len(small) / raw_s, args.count * len(small) / fs_s
        per_round = [r[op]["raw"] / r[op]["flask_fs"] for r in small]
        label = f"{op} {args.size_kib} KiB x {args.count} x {args.rounds}"
        rows.append([label, f"{raw_ops:,.0f}", f"{fs_ops:,.0f}", fs_ops / raw_ops, statistics.median(per_round),
                     f"{raw_ops * mb:.1f}", f"{fs_ops * mb:.1f}", "", ""])  # fmt: skip
        report[f"small_{op}"] = {"raw_ops_s": raw_ops, "flask_fs_ops_s": fs_ops, "ratio": fs_ops / raw_ops,
                                 "round_ratios": per_round}  # fmt: skip
    for op in ("save", "read"):
        raw, ours = large[op]["raw"], large[op]["flask_fs"]
        total_mb = args.large_mib * MIB * args.large_rounds / 1e6
        raw_mbs, fs_mbs = total_mb / sum(raw["seconds"]), total_mb / sum(ours["seconds"])
        per_round = [r / f for r, f in zip(raw["seconds"], ours["seconds"], strict=True)]
        rows.append([f"{op} {args.large_mib} MiB x {args.large_rounds}", "", "", fs_mbs / raw_mbs,
                     statistics.median(per_round), f"{raw_mbs:.0f}", f"{fs_mbs:.0f}", f"{raw['peak_mib']:.1f}",
                     f"{ours['peak_mib']:.1f}"])  # fmt: skip
        report[f"large_{op}"] = {"raw_mb_s": raw_mbs, "flask_fs_mb_s": fs_mbs, "ratio": fs_mbs / raw_mbs,
                                 "round_ratios": per_round, "raw_peak_mib": raw["peak_mib"],
                                 "flask_fs_peak_mib": ours["peak_mib"]}  # fmt: skip
    targets = [
        ("save ratio >= 0.95", report["small_save"]["ratio"] >= 0.95),
        ("read ratio >= 0.90", report["small_read"]["ratio"] >= 0.90),
        ("large save peak < 32 MiB", report["large_save"]["flask_fs_peak_mib"] < 32),
        ("large read peak < 32 MiB", report["large_read"]["flask_fs_peak_mib"] < 32),
    ]
    report["targets"] = dict(targets)
    header = [
        "operation",
        "raw ops/s",
        "flask_fs ops/s",
        "ratio",
        "median round ratio",
        "raw MB/s",
        "flask_fs MB/s",
        "raw peak MiB",
        "flask_fs peak MiB",
    ]
    print(f"local backend vs plain file I/O on {kind} ({args.dir}), Python {platform.python_version()}")
    print(table(rows, header))
    print("targets:", ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in targets))
    print("results:", save_results("local", report))


if __name__ == "__main__":
    main()
