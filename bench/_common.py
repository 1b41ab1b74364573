"""Shared measuring tools for the benchmarks: interleaved timing and peak memory.

The disk and the loopback network here drift a lot between runs, so every benchmark runs the raw
client and flask_fs alternately, batch after batch, in one process and one run, and compares sums.
"""

from __future__ import annotations

import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


@contextmanager
def peak_memory() -> Iterator[dict[str, float]]:
    """Measure the peak resident memory the block adds, in MiB (Linux: resets VmHWM first)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    result: dict[str, float] = {}
    yield result
    result["extra_mib"] = (_status_kib("VmHWM") - base) / 1024


def interleave(runs: dict[str, Callable[[int], Any]], batches: int, per_batch: int) -> dict[str, float]:
    """Call each ``runs[name](i)`` for ``per_batch`` items per batch, alternating names batch by
    batch (rotating who goes first); return total seconds per name."""
    totals = dict.fromkeys(runs, 0.0)
    names = list(runs)
    for batch in range(batches):
        order = names[batch % len(names) :] + names[: batch % len(names)]
        for name in order:
            run = runs[name]
            start = time.perf_counter()
            for i in range(batch * per_batch, (batch + 1) * per_batch):
                run(i)
            totals[name] += time.perf_counter() - start
    return totals


def timed(func: Callable[[], Any], repeat: int = 3) -> float:
    """Median wall time of ``func`` over ``repeat`` calls, in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def save_results(name: str, data: dict[str, Any]) -> str:
    """Write ``bench/results/<name>.json`` and return its path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)
    return path


def table(rows: list[list[Any]], header: list[str]) -> str:
    """A plain-text table for the console."""
    cells = [header] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)


class Producer(io.RawIOBase):
    """A one-way upload of ``size`` bytes made of ``block`` repeated, produced as it is read.

    Nothing but ``block`` is held, so the peak memory a benchmark measures is the library's own.
    Wrap it in ``io.BufferedReader`` where a client expects full reads (s3transfer treats a short
    read as the end of the stream).
    """

    def __init__(self, size: int, block: bytes) -> None:
        self.left, self.block = size, block

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(self.left, len(buffer), len(self.block))
        buffer[:n] = self.block[:n]
        self.left -= n
        return n

    def read(self, size: int | None = -1) -> bytes:
        n = min(self.left, len(self.block) if size is None or size < 0 else min(size, len(self.block)))
        self.left -= n
        return self.block if n == len(self.block) else self.block[:n]


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto's S3 server in its own process (its memory and CPU are not the benchmark's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            return proc, endpoint
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto did not start") from None
            time.sleep(0.1)


def add_size_arguments(parser: Any, rounds: int, large_rounds: int) -> None:
    """The options every storage benchmark takes: how many small files, how big, how many rounds."""
    parser.add_argument("--count", type=int, default=1000, help="small files per round (default: %(default)s)")
    parser.add_argument("--size-kib", type=int, default=4, help="size of a small file (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=rounds, help="rounds of small files (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=20, help="interleaved batches per round (default: %(default)s)")
    parser.add_argument("--large-mib", type=int, default=256, help="size of the large file (default: %(default)s)")
    parser.add_argument(
        "--large-rounds", type=int, default=large_rounds, help="rounds of the large file (default: %(default)s)"
    )
