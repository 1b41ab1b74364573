"""The swift backend against raw python-swiftclient, on a local Swift All-In-One.

Run from the repository root with the project virtualenv: ``python bench/bench_swift.py``. It
starts its own Swift (tests/servers.py), then, alternating flask_fs and raw swiftclient batch by
batch in one process:

* 1,000 x 4 KiB files: save then read back each one (target: flask_fs >= 0.9x raw ops/s);
* one 256 MiB file, from a file on disk then from a one-way stream, saved then streamed back, with
  the extra peak memory of the process (target for flask_fs: < 32 MiB).

Results: a table on stdout and bench/results/swift.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import sys
import tempfile
import uuid
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import swiftclient  # noqa: E402
from _common import interleave, peak_memory, save_results, table  # noqa: E402
from flask import Flask  # noqa: E402

import flask_fs as fs  # noqa: E402
from tests.servers import SWIFT_TEMPURL_KEY, start_swift  # noqa: E402

MIB = 1024 * 1024
#: Where the big file comes from: a file on disk (what an upload spooled by Werkzeug is), or a
#: one-way stream of unknown length (a pipe, a generator).
BIG_SOURCES = ("file", "one-way stream")


class OneWay(io.RawIOBase):
    """``size`` bytes made of ``block`` repeated, produced on the fly and never rewindable."""

    def __init__(self, block: bytes, size: int) -> None:
        self.block, self.size, self.sent = block, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        offset = self.sent % len(self.block)
        n = min(len(buffer), self.size - self.sent, len(self.block) - offset)
        buffer[:n] = self.block[offset : offset + n]
        self.sent += n
        return n


def blocks(block: bytes, size: int):
    """The same bytes as :class:`OneWay`, as a generator of blocks (what raw swiftclient streams)."""
    for _ in range(size // len(block)):
        yield block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000, help="number of small files (default 1000)")
    parser.add_argument("--small-size", type=int, default=4096, help="bytes per small file (default 4096)")
    parser.add_argument("--big-mib", type=int, default=256, help="size of the big file in MiB (default 256)")
    parser.add_argument("--big-rounds", type=int, default=2, help="big file rounds per client (default 2)")
    args = parser.parse_args()

    server = start_swift()
    try:
        results = run(server, args)
    finally:
        server.stop()
    path = save_results("swift", results)
    print(f"\nsaved {path}")


def run(server, args) -> dict:
    container = f"bench-{uuid.uuid4().hex[:8]}"
    app = Flask(__name__)
    app.config.update(
        FS_BACKEND="swift", FS_SWIFT_AUTHURL=server.auth_url, FS_SWIFT_USER=server.user,
        FS_SWIFT_KEY=server.key, FS_SWIFT_TEMPURL_KEY=SWIFT_TEMPURL_KEY, BENCH_FS_CONTAINER=container,
    )  # fmt: skip
    storage = fs.Storage("bench", fs.ALL)
    fs.init_app(app, storage)
    conn = swiftclient.Connection(server.auth_url, server.user, server.key, retries=2, starting_backoff=0.25)
    raw_container = container + "-raw"
    conn.put_container(raw_container)
    small = os.urandom(args.small_size)
    big_block, big_size = os.urandom(MIB), args.big_mib * MIB
    big_sha256 = hashlib.sha256()
    for _ in range(args.big_mib):
        big_sha256.update(big_block)

    with app.app_context():
        for i in range(20):  # warm up both: authentication, containers, connections
            storage.write(f"warm/{i}", small)
            storage.read(f"warm/{i}")
            conn.put_object(raw_container, f"warm/{i}", small)
            conn.get_object(raw_container, f"warm/{i}")

        def raw_small(i: int) -> None:
            conn.put_object(raw_container, f"small/{i}.bin", small)
            assert conn.get_object(raw_container, f"small/{i}.bin")[1] == small

        def fs_small(i: int) -> None:
            storage.save(io.BytesIO(small), f"small/{i}.bin")
            assert storage.read(f"small/{i}.bin") == small

        per_batch = 50
        totals = interleave({"raw swiftclient": raw_small, "flask_fs": fs_small}, args.small // per_batch, per_batch)
        count = args.small // per_batch * per_batch
        small_ops = {name: count / seconds for name, seconds in totals.items()}

        big_mib_s, big_memory, big_totals = {}, {}, {}
        with tempfile.NamedTemporaryFile(prefix="flask-fs-bench-") as big_file:
            for _ in range(args.big_mib):
                big_file.write(big_block)
            big_file.flush()
            for source in BIG_SOURCES:
                memory: dict[str, float] = {}

                def raw_big(i: int, source=source, memory=memory) -> None:
                    name = f"big/{i}.bin"
                    with peak_memory() as peak:
                        if source == "file":
                            with open(big_file.name, "rb") as f:
                                conn.put_object(raw_container, name, f, content_length=big_size, chunk_size=MIB)
                        else:
                            conn.put_object(raw_container, name, blocks(big_block, big_size))
                        digest, size = hashlib.sha256(), 0
                        for chunk in conn.get_object(raw_container, name, resp_chunk_size=MIB)[1]:
                            digest.update(chunk)
                            size += len(chunk)
                    assert size == big_size and digest.digest() == big_sha256.digest()
                    conn.delete_object(raw_container, name)
                    memory["raw swiftclient"] = max(memory.get("raw swiftclient", 0), peak["extra_mib"])

                def fs_big(i: int, source=source, memory=memory) -> None:
                    name = f"big/{i}.bin"
                    with peak_memory() as peak:
                        if source == "file":
                            with open(big_file.name, "rb") as f:
                                storage.save(f, name)
                        else:
                            storage.save(io.BufferedReader(OneWay(big_block, big_size), MIB), name)
                        digest, size = hashlib.sha256(), 0
                        for chunk in storage.read_chunks(name):
                            digest.update(chunk)
                            size += len(chunk)
                    assert size == big_size and digest.digest() == big_sha256.digest()
                    assert storage.metadata(name)["checksum"] == "sha256:" + big_sha256.hexdigest()
                    storage.delete(name)
                    memory["flask_fs"] = max(memory.get("flask_fs", 0), peak["extra_mib"])

                totals_ = interleave({"raw swiftclient": raw_big, "flask_fs": fs_big}, args.big_rounds, 1)
                big_totals[source], big_memory[source] = totals_, memory
                big_mib_s[source] = {name: args.big_mib * 2 * args.big_rounds / sec for name, sec in totals_.items()}

    raw_ops, ours_ops = small_ops["raw swiftclient"], small_ops["flask_fs"]
    rows = [[f"{count} x {args.small_size} B save+read", "ops/s", raw_ops, ours_ops, ours_ops / raw_ops, ">= 0.9"]]
    for source in BIG_SOURCES:
        rates, memory = big_mib_s[source], big_memory[source]
        rows += [
            [f"{args.big_mib} MiB save+read, {source}", "MiB/s", rates["raw swiftclient"], rates["flask_fs"],
             rates["flask_fs"] / rates["raw swiftclient"], ">= 0.9"],
            [f"{args.big_mib} MiB extra peak memory, {source}", "MiB", memory["raw swiftclient"],
             memory["flask_fs"], "", "< 32 (flask_fs)"],
        ]  # fmt: skip
    print(table(rows, ["benchmark", "unit", "raw swiftclient", "flask_fs", "ratio", "target"]))
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "python-swiftclient": version("python-swiftclient"),
        "swift": version("swift"),
        "small": {"files": count, "bytes": args.small_size, "ops_per_s": small_ops, "seconds": totals,
                  "ratio": ours_ops / raw_ops, "target_ratio": 0.9, "met": ours_ops / raw_ops >= 0.9},
        "big": {
            source: {"mib": args.big_mib, "rounds": args.big_rounds, "mib_per_s": big_mib_s[source],
                     "seconds": big_totals[source], "extra_peak_mib": big_memory[source],
                     "ratio": big_mib_s[source]["flask_fs"] / big_mib_s[source]["raw swiftclient"],
                     "target_extra_mib": 32, "met": big_memory[source]["flask_fs"] < 32}
            for source in BIG_SOURCES
        },
    }  # fmt: skip


if __name__ == "__main__":
    main()
