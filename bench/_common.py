"""Shared measuring tools for the benchmarks: interleaved timing and peak memory.

The disk and the loopback network here drift a lot between runs, so every benchmark runs the raw
client and flask_fs alternately, batch after batch, in one process and one run, and compares sums.
"""

from __future__ import annotations

import json
import os
import statistics
import time
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
        order = names[batch % len(names):] + names[: batch % len(names)]
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
