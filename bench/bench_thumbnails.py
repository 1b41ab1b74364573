"""Thumbnail speed and quality on a 12-megapixel JPEG: flask_fs.images against Flask-FS and flask-fs2.

Run from the project virtualenv: ``python bench/bench_thumbnails.py`` (``--help`` for options).
The peers run in their own virtualenvs under bench/.venvs/ (built on first run by peers/make_venvs.py),
each behind a subprocess (peers/peer_runner.py); every round times each task once, in a shuffled order,
so all of them share the same machine conditions. Results: a table on stdout and
bench/results/thumbnails.json.

Quality is the PSNR (and mean absolute difference) of each decoded output against a reference made
from the full-resolution decode with a plain LANCZOS resize of the same region to the same size. The
peers letterbox the whole picture into a transparent square PNG, so they are compared on their picture
area against a reference of that geometry; ours and "naive" centre-crop and write JPEG at quality 85.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageStat, features

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "peers"))

import make_venvs  # noqa: E402

from flask_fs import images  # noqa: E402

RESULTS = HERE / "results"
WIDTH, HEIGHT = 4000, 3000
SIZES = [100, 400]
ALL_SIZES, MAX_SIZE = [32, 100, 400], 1024
LANCZOS = Image.Resampling.LANCZOS


def make_source(path: Path, noise: float, seed: int = 2024) -> None:
    """A deterministic photo-like 4000x3000 JPEG (quality 90): smooth colour fields, edges, sensor noise."""
    rng = random.Random(seed)
    photo = Image.frombytes("RGB", (16, 12), rng.randbytes(16 * 12 * 3)).resize((WIDTH, HEIGHT), Image.BICUBIC)
    draw = ImageDraw.Draw(photo)
    for _ in range(400):
        x, y, r = rng.randrange(WIDTH), rng.randrange(HEIGHT), rng.randrange(5, 200)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=rng.randrange(1, 6))
        else:
            end = (x + rng.randrange(-400, 400), y + rng.randrange(-400, 400))
            draw.line((x, y, *end), fill=colour, width=rng.randrange(1, 4))
    grain = Image.frombytes("RGB", (WIDTH, HEIGHT), rng.randbytes(WIDTH * HEIGHT * 3))
    Image.blend(photo, grain, noise).save(path, "JPEG", quality=90)


def naive_thumbnail(path: Path, size: int) -> io.BytesIO:
    """Same output as ours (centre crop, JPEG q85) from a full decode and one LANCZOS resize."""
    image = Image.open(path)
    image.load()
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    thumb = image.resize((size, size), LANCZOS, box=(left, top, left + side, top + side))
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=images.JPEG_QUALITY)
    return out


def decode_floor(path: Path, size: int) -> None:
    """The JPEG decode alone, at the smallest scale that still gives ``size`` pixels (what any
    thumbnailer must do at least): libjpeg-turbo skips most of the inverse DCT at 1/8 scale, but must
    still entropy-decode every coefficient of a baseline JPEG, so this bounds every renderer."""
    with Image.open(path) as image:
        image.draft(None, (size, size))
        image.load()


def ours_png(path: Path, size: int) -> io.BytesIO:
    """Our pipeline written losslessly: its resampling error alone, without JPEG's."""
    return images.render_all(path, [size], output_format="PNG").thumbnails[size]


def ours_all(path: Path) -> io.BytesIO:
    result = images.render_all(path, ALL_SIZES, max_size=MAX_SIZE)
    assert result.main is not None
    return result.main


class Peer:
    """A peer's flask_fs.images behind a subprocess in its own virtualenv."""

    def __init__(self, name: str):
        self.name = name
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.process = subprocess.Popen(
            [str(make_venvs.ensure(name)), str(HERE / "peers" / "peer_runner.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=str(HERE / "peers"),
        )
        self.info = self._read()
        if f".venvs/{name}/" not in self.info["module"]:
            raise RuntimeError(f"{name} imported the wrong flask_fs: {self.info['module']}")

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} runner died")
        return json.loads(line)

    def call(self, **request) -> float:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()["ms"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return (time.perf_counter() - start) * 1000


def with_engine(engine: str, function: Callable) -> Callable:
    """``function`` run with flask_fs.images on ``engine`` (``pillow`` or ``vips``)."""

    def run(*args):
        images.use_engine(engine)
        try:
            return function(*args)
        finally:
            images.use_engine("pillow")

    return run


def peak_child(engine: str, source: str) -> None:
    """In a fresh process: the peak memory one 100 px thumbnail, then one render_all, add (MiB)."""
    from bench._common import peak_memory

    images.use_engine(engine)
    images.make_thumbnail(source, 32)  # libraries loaded: their code is not the render's memory
    result = {}
    with peak_memory() as peak:
        images.make_thumbnail(source, 100)
    result["thumbnail_100"] = peak["extra_mib"]
    with peak_memory() as peak:
        ours_all(Path(source))
    result["render_all"] = peak["extra_mib"]
    print(json.dumps(result))


def peak_memory_by_engine(source: Path, engines: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for engine in engines:
        done = subprocess.run([sys.executable, __file__, "--peak", engine, str(source)],
                              capture_output=True, text=True, check=True)  # fmt: skip
        out[engine] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def psnr_and_mad(output: Image.Image, reference: Image.Image) -> tuple[float, float]:
    """PSNR (dB) and mean absolute difference (0-255) of two RGB images."""
    diff = ImageChops.difference(output.convert("RGB"), reference.convert("RGB"))
    stat = ImageStat.Stat(diff)
    mse = sum(stat.sum2) / (3 * diff.width * diff.height)
    mad = sum(stat.sum) / (3 * diff.width * diff.height)
    return (99.0 if mse == 0 else 10 * math.log10(255**2 / mse)), mad


def quality(source: Path, outputs: dict[str, dict[int, Path]]) -> dict:
    """Quality of each task's saved outputs against full-decode LANCZOS references."""
    with Image.open(source) as image:
        full = image.convert("RGB")
    side = min(full.size)
    box = ((full.width - side) // 2, (full.height - side) // 2)
    box = (*box, box[0] + side, box[1] + side)
    report: dict = {}
    for task, by_size in outputs.items():
        for size, path in by_size.items():
            with Image.open(path) as out:
                out.load()
                entry = {"bytes": path.stat().st_size, "format": out.format, "size": list(out.size)}
                if task.startswith(("ours", "naive")):
                    reference = full.resize((size, size), LANCZOS, box=box)
                    picture = out
                else:  # letterboxed: the picture area of a transparent square
                    fitted = (size, int(full.height * size / full.width))
                    reference = full.resize(fitted, LANCZOS)
                    top = (size - fitted[1]) // 2
                    picture = out.convert("RGBA").crop((0, top, fitted[0], top + fitted[1]))
                entry["psnr_db"], entry["mean_abs_diff"] = (round(v, 2) for v in psnr_and_mad(picture, reference))
            report[f"{task}@{size}"] = entry
    return report


#: The peers that render thumbnails (the other peer venvs serve other benchmarks).
THUMBNAIL_PEERS = ("flask-fs-0.6.1", "flask-fs2-0.8.2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed calls of each task (default 15)")
    parser.add_argument("--noise", type=float, default=0.06, help="sensor-like grain blended into the source")
    parser.add_argument("--no-peers", action="store_true", help="time flask_fs only")
    parser.add_argument("--peak", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        return peak_child(*args.peak)
    engines = ["pillow"] + (["vips"] if images.pyvips is not None else [])
    images.use_engine("pillow")

    RESULTS.mkdir(exist_ok=True)
    source = RESULTS / f"source-{WIDTH}x{HEIGHT}-noise{args.noise}.jpg"
    if not source.exists():
        make_source(source, args.noise)
    peers = [] if args.no_peers else [Peer(name) for name in THUMBNAIL_PEERS]

    tasks: dict[str, Callable[[], float]] = {}
    saved: dict[str, dict[int, Path]] = {}
    for size in SIZES:
        tasks[f"ours make_thumbnail {size}"] = lambda s=size: timed(images.make_thumbnail, source, s)
        if "vips" in engines:
            tasks[f"ours+vips make_thumbnail {size}"] = lambda s=size: timed(
                with_engine("vips", images.make_thumbnail), source, s
            )
        tasks[f"naive full decode {size}"] = lambda s=size: timed(naive_thumbnail, source, s)
        tasks[f"decode floor {size}"] = lambda s=size: timed(decode_floor, source, s)
        for peer in peers:
            tasks[f"{peer.name} make_thumbnail {size}"] = lambda p=peer, s=size: p.call(
                op="thumbnail", path=str(source), size=s
            )
    tasks[f"ours render_all {ALL_SIZES}+{MAX_SIZE}"] = lambda: timed(ours_all, source)
    if "vips" in engines:
        tasks[f"ours+vips render_all {ALL_SIZES}+{MAX_SIZE}"] = lambda: timed(with_engine("vips", ours_all), source)
    for peer in peers:
        tasks[f"{peer.name} {len(ALL_SIZES)} thumbnails + resize"] = lambda p=peer: p.call(
            op="all", path=str(source), sizes=ALL_SIZES, max_size=MAX_SIZE
        )

    # Warm up every task once, saving the outputs for the quality check.
    for size in SIZES:
        for task, write in [
            ("ours", lambda s, p: p.write_bytes(images.make_thumbnail(source, s).getvalue())),
            *(
                [
                    (
                        "ours-vips",
                        lambda s, p: p.write_bytes(with_engine("vips", images.make_thumbnail)(source, s).getvalue()),
                    )
                ]
                if "vips" in engines
                else []
            ),
            ("naive", lambda s, p: p.write_bytes(naive_thumbnail(source, s).getvalue())),
            ("ours-png", lambda s, p: p.write_bytes(ours_png(source, s).getvalue())),
            *[
                (
                    peer.name,
                    lambda s, p, peer=peer: peer.call(op="thumbnail", path=str(source), size=s, out=str(p)),
                )
                for peer in peers
            ],
        ]:
            path = RESULTS / f"thumb-{task}-{size}.out"
            write(size, path)
            saved.setdefault(task, {})[size] = path
    for run in tasks.values():
        run()

    timings: dict[str, list[float]] = {name: [] for name in tasks}
    order = list(tasks)
    rng = random.Random(7)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            timings[name].append(tasks[name]())
    for peer in peers:
        peer.close()

    medians = {name: statistics.median(values) for name, values in timings.items()}
    ratios = {}
    for peer in peers:
        for size in SIZES:
            ratios[f"{peer.name} / ours @{size}"] = (
                medians[f"{peer.name} make_thumbnail {size}"] / medians[f"ours make_thumbnail {size}"]
            )
        ratios[f"{peer.name} / ours all sizes"] = (
            medians[f"{peer.name} {len(ALL_SIZES)} thumbnails + resize"]
            / medians[f"ours render_all {ALL_SIZES}+{MAX_SIZE}"]
        )
        if "vips" in engines:
            for size in SIZES:
                ratios[f"{peer.name} / ours+vips @{size}"] = (
                    medians[f"{peer.name} make_thumbnail {size}"] / medians[f"ours+vips make_thumbnail {size}"]
                )
            ratios[f"{peer.name} / ours+vips all sizes"] = (
                medians[f"{peer.name} {len(ALL_SIZES)} thumbnails + resize"]
                / medians[f"ours+vips render_all {ALL_SIZES}+{MAX_SIZE}"]
            )
    for size in SIZES:
        ratios[f"naive / ours @{size}"] = medians[f"naive full decode {size}"] / medians[f"ours make_thumbnail {size}"]
    for peer in peers:  # the most any thumbnailer could gain over the peer on this file
        for size in SIZES:
            ratios[f"{peer.name} / decode floor @{size}"] = (
                medians[f"{peer.name} make_thumbnail {size}"] / medians[f"decode floor {size}"]
            )
    scores = quality(source, saved)
    peaks = peak_memory_by_engine(source, engines)

    print(f"source: {source.name}, {source.stat().st_size / 1e6:.2f} MB, {args.rounds} rounds\n")
    print(f"{'task':44} {'median ms':>10} {'min':>8} {'max':>8}")
    for name, values in timings.items():
        print(f"{name:44} {medians[name]:10.1f} {min(values):8.1f} {max(values):8.1f}")
    print(f"\n{'ratio (median ms)':44} {'x':>10}")
    for name, ratio in ratios.items():
        print(f"{name:44} {ratio:10.2f}")
    print(f"\n{'output vs full-decode LANCZOS':44} {'PSNR dB':>10} {'MAD':>8} {'bytes':>8} format")
    for name, entry in scores.items():
        psnr, mad = entry["psnr_db"], entry["mean_abs_diff"]
        print(f"{name:44} {psnr:10.2f} {mad:8.2f} {entry['bytes']:8} {entry['format']}")

    print(f"\n{'peak memory added by one render (MiB)':44} {'100 px':>10} {'all':>8}")
    for engine, peak in peaks.items():
        print(f"{engine:44} {peak['thumbnail_100']:10.1f} {peak['render_all']:8.1f}")

    report = {
        "source": {
            "file": source.name,
            "bytes": source.stat().st_size,
            "size": [WIDTH, HEIGHT],
            "noise": args.noise,
        },
        "rounds": args.rounds,
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "pillow": Image.__version__,
            "libjpeg_turbo": features.version("libjpeg_turbo"),
            "libvips": images.pyvips and ".".join(str(images.pyvips.version(i)) for i in range(3)),
            "peers": {peer.name: peer.info for peer in peers},
        },
        "median_ms": {name: round(value, 2) for name, value in medians.items()},
        "samples_ms": {name: [round(v, 2) for v in values] for name, values in timings.items()},
        "ratios": {name: round(value, 2) for name, value in ratios.items()},
        "quality": scores,
        "peak_mib": peaks,
        "load": os.getloadavg(),
    }
    out = RESULTS / "thumbnails.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
