"""URLs for pages that list many files: 1,000 ``signed_url()`` and ``url()`` against botocore, same run.

* ``signed_url()`` of an S3 storage (a presigned GET, no request sent) against botocore's
  ``generate_presigned_url`` on a client configured the same way;
* ``url()`` of a storage with a public ``URL`` (a CDN base), against the same string built by hand
  (``base + quote(name)``), the least any library can do.

Both through ``Storage`` in an app context, as a template calls them, for ASCII names and for
names with accents (which flask_fs normalises and quotes).

Rounds alternate who goes first; the figures are medians of the rounds, in milliseconds per 1,000
URLs. Then every kind of URL is checked against a server that verifies signatures (Swift's S3 API,
started here): the fast URLs must be accepted, and refused once tampered with.

Run: ``.venv/bin/python bench/bench_urls.py [--rounds N] [--count N] [--no-check]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import botocore  # noqa: E402
from flask import Flask  # noqa: E402

import flask_fs as fs  # noqa: E402
from bench._common import save_results, table  # noqa: E402

SETTINGS = {
    "FS_BACKEND": "s3", "FS_S3_ENDPOINT": "http://127.0.0.1:9", "FS_S3_REGION": "eu-west-1",
    "FS_S3_ACCESS_KEY": "AKIDEXAMPLE", "FS_S3_SECRET_KEY": "secret", "FS_S3_ADDRESSING_STYLE": "path",
    "MEDIA_FS_BUCKET": "media-bucket",
}  # fmt: skip


def per_thousand(func, names: list[str]) -> float:
    start = time.perf_counter()
    for name in names:
        func(name)
    return (time.perf_counter() - start) * 1000 * 1000 / len(names)


def measure(count: int, rounds: int, ascii_names: bool) -> dict[str, dict[str, float]]:
    """Through the Flask layer, as templates call them: ``Storage`` methods in an app context."""
    media, public = fs.Storage("media", fs.ALL), fs.Storage("public", fs.ALL)
    app = Flask("bench_urls", root_path=str(HERE))
    app.config.update(SETTINGS, PUBLIC_FS_URL="https://cdn.example.org/public/")
    fs.init_app(app, media, public)
    with app.app_context():
        client, bucket = media.backend.client, media.backend.bucket
        stem = "IMG_" if ascii_names else "été "
        names = [f"photos/2026/{stem}{i:05d}.jpg" for i in range(count)]
        media.signed_url(names[0])  # both sides warm: client made, presigner checked
        client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": names[0]}, ExpiresIn=3600)

        def botocore_presign(name: str) -> str:
            return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": name}, ExpiresIn=3600)

        base = "https://cdn.example.org/public/"
        runs = {
            "signed_url": {"peer": botocore_presign, "flask_fs": lambda name: media.signed_url(name, 3600)},
            "url": {"peer": lambda name: base + quote(name, safe="/"), "flask_fs": public.url},
        }
        samples: dict[str, dict[str, list[float]]] = {op: {"peer": [], "flask_fs": []} for op in runs}
        for round_ in range(rounds):
            for op, sides in runs.items():
                order = ["peer", "flask_fs"] if round_ % 2 == 0 else ["flask_fs", "peer"]
                for who in order:
                    samples[op][who].append(per_thousand(sides[who], names))
    return {op: {who: statistics.median(values) for who, values in sides.items()} for op, sides in samples.items()}


def check_against_swift() -> dict[str, bool]:
    """Fast presigned URLs are accepted by a server that checks signatures, and tampered ones refused."""
    from tests.servers import start_swift

    swift = start_swift()
    try:
        files = fs.Storage("files", fs.ALL).from_settings({
            "FS_BACKEND": "s3", "FS_S3_ENDPOINT": swift.endpoint, "FS_S3_REGION": "us-east-1",
            "FS_S3_ACCESS_KEY": swift.user, "FS_S3_SECRET_KEY": swift.key, "FS_S3_CREATE_BUCKET": True,
            "FS_S3_ADDRESSING_STYLE": "path", "FILES_FS_BUCKET": "bench-urls", "FILES_FS_PREFIX": "p/é",
        })  # fmt: skip
        checks = {}
        for name in ("plain.txt", "dir/été 2026 (1).txt", "a+b~c%d;e=f&g.txt"):
            files.write(name, name.encode(), overwrite=True)
            url = files.signed_url(name, 60)
            with urllib.request.urlopen(url, timeout=10) as response:
                accepted = response.read() == name.encode()
            try:
                urllib.request.urlopen(url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"), timeout=10)
                refused = False
            except urllib.error.HTTPError as exc:
                refused = exc.code == 403
            checks[name] = accepted and refused
        files.close()
        return checks
    finally:
        swift.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-check", action="store_true", help="skip the check against Swift's S3 API")
    args = parser.parse_args()
    rows, results = [], {}
    for kind, ascii_names in (("ASCII names", True), ("non-ASCII names", False)):
        results[kind] = measured = measure(args.count, args.rounds, ascii_names)
        for op, label in (("signed_url", "signed_url() (S3 presigned GET)"), ("url", "url() of a public storage")):
            peer, ours = measured[op]["peer"], measured[op]["flask_fs"]
            rows.append([f"{label}, {kind}", peer, ours, peer / ours])
    print(f"ms per 1,000 URLs, median of {args.rounds} rounds; peers: botocore {botocore.__version__}, quote()")
    print(table(rows, ["operation", "peer ms", "flask_fs ms", "speedup"]))
    report = {"python": platform.python_version(), "botocore": botocore.__version__, "args": vars(args), **results}
    if not args.no_check:
        report["swift_s3api_accepts"] = checks = check_against_swift()
        print("Swift's S3 API accepts the URLs and refuses tampered ones:", checks)
        assert all(checks.values()), checks
    print("results:", save_results("urls", report))


if __name__ == "__main__":
    main()
