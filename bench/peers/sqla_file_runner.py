"""The sqlalchemy-file side of bench_sqla.py, run inside its own virtualenv (libcloud's local driver).

Protocol: the first stdout line is ``{"ready": true, ...}``; then one JSON request per stdin line,
one JSON answer per stdout line with ``ms`` (the time of the inserts and commits only):
``{"op": "files", "start": i, "count": n, "size": 4096}`` inserts n rows with a file each;
``{"op": "images", "start": i, "count": n, "path": jpeg}`` inserts n rows with that image and two
JPEG thumbnails (200 and 64 px). One commit per row, as in a web request.
"""

import json
import os
import sys
import tempfile
import time

import sqlalchemy_file
from libcloud.storage.drivers.local import LocalStorageDriver
from sqlalchemy import Column, Integer, create_engine
from sqlalchemy.orm import Session, declarative_base
from sqlalchemy_file import File, FileField, ImageField
from sqlalchemy_file.processors import ThumbnailGenerator
from sqlalchemy_file.storage import StorageManager

Base = declarative_base()


class Document(Base):
    __tablename__ = "document"
    id = Column(Integer, primary_key=True)
    content = Column(FileField)


class Picture(Base):
    __tablename__ = "picture"
    id = Column(Integer, primary_key=True)
    thumbnails = [ThumbnailGenerator((200, 200), "JPEG"), ThumbnailGenerator((64, 64), "JPEG")]
    image = Column(ImageField(processors=thumbnails))


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    os.makedirs(os.path.join(folder, "files"), exist_ok=True)
    StorageManager.add_storage("default", LocalStorageDriver(folder).get_container("files"))
    engine = create_engine(f"sqlite:///{os.path.join(folder, 'peer.db')}")
    Base.metadata.create_all(engine)
    print(json.dumps({"ready": True, "version": sqlalchemy_file.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "files":
            payloads = [os.urandom(request["size"]) for _ in range(request["count"])]
            start = time.perf_counter()
            for i, data in enumerate(payloads, request["start"]):
                with Session(engine) as session:
                    session.add(Document(content=File(content=data, filename=f"doc{i}.txt")))
                    session.commit()
        else:
            with open(request["path"], "rb") as handle:
                data = handle.read()
            start = time.perf_counter()
            for i in range(request["start"], request["start"] + request["count"]):
                with Session(engine) as session:
                    session.add(Picture(image=File(content=data, filename=f"photo{i}.jpg")))
                    session.commit()
        print(json.dumps({"ms": (time.perf_counter() - start) * 1000}), flush=True)


if __name__ == "__main__":
    main()
