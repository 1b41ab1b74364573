"""A small app on flask_fs: upload files, list them, download them (local disk by default).

Run it with ``./scripts/demo.sh``. Every ``FS_*`` or ``<NAME>_FS_*`` environment variable is
read as a setting, so ``FS_BACKEND=s3 FS_S3_ENDPOINT=...`` moves it to another backend.
"""

from __future__ import annotations

import os

from flask import Flask, flash, redirect, render_template, request, url_for

import flask_fs as fs

files = fs.Storage("files", fs.DEFAULTS, rename=True)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=os.environ.get("SECRET_KEY", "demo-only"), FS_SERVE=True, FILES_FS_MAX_SIZE=20 << 20)
    app.config.from_prefixed_env(prefix="GALLERY")
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("FS_") or "_FS_" in k})
    app.config.update(config or {})
    fs.init_app(app, files)

    @app.get("/")
    def index():
        return render_template("index.html", names=sorted(files.list_files()), storage=files)

    @app.post("/upload")
    def upload():
        for upload in request.files.getlist("file"):
            try:
                name = files.save(upload)
                flash(f"Saved {name}", "ok")
            except fs.FSError as error:
                flash(f"{upload.filename}: {error}", "error")
        return redirect(url_for("index"))

    @app.post("/delete/<path:name>")
    def delete(name: str):
        files.delete(name)
        flash(f"Deleted {name}", "ok")
        return redirect(url_for("index"))

    return app


app = create_app()
