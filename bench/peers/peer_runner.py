"""Time a peer's ``flask_fs.images`` inside that peer's own virtualenv (run by bench_thumbnails.py).

Protocol: one JSON request per stdin line, one JSON answer per stdout line. Requests:
``{"op": "thumbnail", "path": ..., "size": 100, "out": optional path}`` times ``make_thumbnail``;
``{"op": "all", "path": ..., "sizes": [...], "max_size": 1024}`` times one ``make_thumbnail`` per size
plus ``resize`` (how the peers' ImageField renders an upload). Answers carry ``ms``.
"""

import contextlib
import json
import sys
import time

real_stdout = sys.stdout
with contextlib.redirect_stdout(sys.stderr):  # Flask-FS 0.6.1 prints its optional import errors
    import PIL
    from PIL import features

    from flask_fs import images


def answer(payload):
    real_stdout.write(json.dumps(payload) + "\n")
    real_stdout.flush()


def main():
    answer(
        {
            "ready": True,
            "pillow": PIL.__version__,
            "module": images.__file__,
            "libjpeg_turbo": features.version("libjpeg_turbo"),
        }
    )
    for line in sys.stdin:
        request = json.loads(line)
        start = time.perf_counter()
        if request["op"] == "thumbnail":
            output = images.make_thumbnail(request["path"], request["size"])
        else:
            for size in request["sizes"]:
                output = images.make_thumbnail(request["path"], size)
            output = images.resize(request["path"], request["max_size"])
        elapsed = (time.perf_counter() - start) * 1000
        if request.get("out"):
            with open(request["out"], "wb") as handle:
                handle.write(output.getvalue())
        answer({"ms": elapsed})


if __name__ == "__main__":
    main()
