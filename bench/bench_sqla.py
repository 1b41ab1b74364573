"""flask_fs.sqla against the same work done by hand and against sqlalchemy-file, on SQLite files.

Run from the project virtualenv: ``python bench/bench_sqla.py`` (``--help`` for options). Two
workloads, each row inserted and committed on its own (one upload per request):

- ``files``: 1,000 rows each with a 4 KiB file (a FileField);
- ``images``: 200 rows each with a 2-megapixel JPEG and two thumbnails (200 and 64 px).

"By hand" is what an app writes without a column type: ``storage.save`` of the upload (and, for
images, of the two thumbnails rendered by ``flask_fs.images.render_all``), then an INSERT of the names.
sqlalchemy-file 0.7.0 runs in its own virtualenv (bench/.venvs, built by peers/make_venvs.py) on
libcloud's local storage driver, behind a subprocess (peers/sqla_file_runner.py) that times its own
inserts. The three run alternately, batch after batch, so they share the machine's conditions.
Results: a table on stdout and bench/results/sqla.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask
from PIL import Image
from sqlalchemy import JSON, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from werkzeug.datastructures import FileStorage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "peers"))

import make_venvs  # noqa: E402
from _common import save_results, table  # noqa: E402

import flask_fs as fs  # noqa: E402
from flask_fs import images as pipeline  # noqa: E402
from flask_fs.sqla import FileField, ImageField  # noqa: E402

PEER = "sqlalchemy-file-0.7.0"
THUMBNAILS = [200, 64]

files = fs.Storage("files", fs.ALL)
pictures = fs.Storage("pictures", fs.IMAGES)
hand_files = fs.Storage("handfiles", fs.ALL)
hand_pictures = fs.Storage("handpictures", fs.IMAGES)


class Base(DeclarativeBase):
    pass


class Document(Base):
    __tablename__ = "document"
    id: Mapped[int] = mapped_column(primary_key=True)
    attachment = mapped_column(FileField(files), nullable=True)


class Picture(Base):
    __tablename__ = "picture"
    id: Mapped[int] = mapped_column(primary_key=True)
    image = mapped_column(ImageField(pictures, thumbnails=THUMBNAILS), nullable=True)


class HandDocument(Base):
    __tablename__ = "hand_document"
    id: Mapped[int] = mapped_column(primary_key=True)
    attachment: Mapped[str | None] = mapped_column(String(255))


class HandPicture(Base):
    __tablename__ = "hand_picture"
    id: Mapped[int] = mapped_column(primary_key=True)
    image: Mapped[dict | None] = mapped_column(JSON)


def make_jpeg(path: Path, width: int, height: int) -> None:
    """A photo-like JPEG (quality 90): a colour gradient under sensor noise."""
    gradient = Image.linear_gradient("L").resize((width, height))
    photo = Image.merge("RGB", (gradient, gradient.rotate(90).resize((width, height)), gradient.transpose(0)))
    Image.blend(photo, Image.effect_noise((width, height), 40).convert("RGB"), 0.3).save(path, "JPEG", quality=90)


class Ours:
    def __init__(self, engine) -> None:
        self.engine = engine

    def files(self, start: int, payloads: list[bytes]) -> None:
        for i, data in enumerate(payloads, start):
            with Session(self.engine) as session:
                session.add(Document(attachment=FileStorage(io.BytesIO(data), f"doc{i}.txt")))
                session.commit()

    def images(self, start: int, count: int, data: bytes) -> None:
        for i in range(start, start + count):
            with Session(self.engine) as session:
                session.add(Picture(image=FileStorage(io.BytesIO(data), f"photo{i}.jpg")))
                session.commit()


class ByHand:
    def __init__(self, engine) -> None:
        self.engine = engine

    def files(self, start: int, payloads: list[bytes]) -> None:
        for i, data in enumerate(payloads, start):
            name = hand_files.save(FileStorage(io.BytesIO(data), f"doc{i}.txt"))
            with Session(self.engine) as session:
                session.add(HandDocument(attachment=name))
                session.commit()

    def images(self, start: int, count: int, data: bytes) -> None:
        for i in range(start, start + count):
            upload = io.BytesIO(data)
            rendered = pipeline.render_all(upload, THUMBNAILS)
            upload.seek(0)
            stored = {"filename": hand_pictures.save(upload, f"photo{i}.jpg"), "thumbnails": {}}
            for size, thumb in rendered.thumbnails.items():
                stored["thumbnails"][str(size)] = hand_pictures.save(thumb, f"photo{i}-{size}.jpg")
            with Session(self.engine) as session:
                session.add(HandPicture(image=stored))
                session.commit()


class Peer:
    """sqlalchemy-file in its own virtualenv; returns the seconds it measured itself."""

    def __init__(self, folder: Path) -> None:
        python = make_venvs.ensure(PEER)
        self.proc = subprocess.Popen(
            [python, str(HERE / "peers" / "sqla_file_runner.py"), str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = json.loads(self.proc.stdout.readline())

    def ask(self, **request) -> float:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["ms"] / 1000

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run(args: argparse.Namespace, folder: Path) -> dict:
    app = Flask("bench", instance_path=str(folder / "instance"))
    app.config["FS_ROOT"] = str(folder / "fs")
    fs.init_app(app, files, pictures, hand_files, hand_pictures)
    ours_engine = create_engine(f"sqlite:///{folder / 'ours.db'}")
    hand_engine = create_engine(f"sqlite:///{folder / 'hand.db'}")
    for engine in (ours_engine, hand_engine):
        Base.metadata.create_all(engine)
    ours, hand, peer = Ours(ours_engine), ByHand(hand_engine), Peer(folder / "peer")
    jpeg = folder / "photo.jpg"
    width, height = args.image_size
    make_jpeg(jpeg, width, height)
    data = jpeg.read_bytes()
    totals = {"files": dict.fromkeys(("flask_fs.sqla", "by hand", PEER), 0.0)}
    totals["images"] = dict(totals["files"])
    with app.app_context():
        for workload, rows in (("files", args.rows), ("images", args.images)):
            per_batch = rows // args.batches
            for batch in range(args.batches):
                start = batch * per_batch
                payloads = [os.urandom(args.size_kib * 1024) for _ in range(per_batch)]
                runners = {"flask_fs.sqla": ours, "by hand": hand}
                order = [*runners, PEER]
                order = order[batch % 3 :] + order[: batch % 3]
                for name in order:
                    if name == PEER:
                        request = {"op": workload, "start": start, "count": per_batch}
                        request.update({"size": args.size_kib * 1024} if workload == "files" else {"path": str(jpeg)})
                        totals[workload][name] += peer.ask(**request)
                    else:
                        began = time.perf_counter()
                        if workload == "files":
                            runners[name].files(start, payloads)
                        else:
                            runners[name].images(start, per_batch, data)
                        totals[workload][name] += time.perf_counter() - began
    peer.close()
    return {"totals": totals, "peer": peer.info}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows with a small file (default: %(default)s)")
    parser.add_argument("--size-kib", type=int, default=4, help="size of each small file (default: %(default)s)")
    parser.add_argument("--images", type=int, default=200, help="rows with an image (default: %(default)s)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(1632, 1224), help="JPEG width height (2 MP)")
    parser.add_argument("--batches", type=int, default=10, help="interleaved batches (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sqla-") as folder:
        result = run(args, Path(folder))
    rows = []
    for workload, count in (("files", args.rows), ("images", args.images)):
        times = result["totals"][workload]
        ours = times["flask_fs.sqla"]
        for name, seconds in times.items():
            rows.append([workload, name, seconds, count / seconds, seconds / ours])
    print(table(rows, ["workload", "who", "seconds", "rows/s", "flask_fs.sqla's speed relative to it"]))
    save_results(
        "sqla",
        {
            "args": vars(args),
            "python": platform.python_version(),
            "peer": result["peer"],
            "seconds": result["totals"],
        },
    )


if __name__ == "__main__":
    main()
