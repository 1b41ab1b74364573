"""A small Flask site with static files in the app and in a blueprint, for the static publishing tests."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
from flask import Blueprint, Flask, render_template

import flask_fs as fs
from tests.backends.conftest import unique

#: Local static files: path under the site folder -> content.
FILES = {
    "static/css/app.css": b"body { color: #333 }\n" * 200,
    "static/js/app.js": b"console.log('hello');\n" * 100,
    "static/img/logo.png": b"\x89PNG\r\n\x1a\n" + os.urandom(3000),
    "static/fonts/icons.woff2": os.urandom(500),
    "static/data/deep/er/list.json": b'{"a": 1}',
    "static/name with space.txt": b"spaced out",
    "static/.hidden.txt": b"not published unless asked",
    "static/.cache/ignored.js": b"not published unless asked",
    "admin_static/admin.css": b".admin { margin: 0 }\n" * 50,
}
#: Names they get in the target storage (URL paths), without the hidden ones.
PUBLISHED = {
    "static/css/app.css", "static/js/app.js", "static/img/logo.png", "static/fonts/icons.woff2",
    "static/data/deep/er/list.json", "static/name with space.txt", "admin/admin_static/admin.css",
}  # fmt: skip
MANIFEST = ".flask-fs-static.json"

TEMPLATE = """<link rel=stylesheet href="{{ url_for('static', filename='css/app.css') }}">
<link rel=stylesheet href="{{ url_for('admin.static', filename='admin.css') }}">
<a href="{{ url_for('page') }}">home</a>
"""


def build_site(root: Path) -> Path:
    """Write the site's static files and template below ``root``."""
    for name, data in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "templates").mkdir(exist_ok=True)
    (root / "templates" / "page.html").write_text(TEMPLATE)
    return root


def site_app(root: Path, **config) -> Flask:
    """A Flask app over the site below ``root``, with flask_fs set up (no static publishing yet)."""
    app = Flask(
        "site", static_folder=str(root / "static"), template_folder=str(root / "templates"),
        instance_path=str(root / "instance"),
    )  # fmt: skip
    app.config.update(TESTING=True, SERVER_NAME="localhost", FS_SERVE=True, **config)
    app.register_blueprint(Blueprint("admin", "site", static_folder=str(root / "admin_static"), url_prefix="/admin"))
    app.add_url_rule("/", "page", lambda: render_template("page.html"))
    fs.init_app(app)
    return app


def s3_config(endpoint: str, access_key: str, secret_key: str, **extra) -> dict:
    """Settings putting the ``assets`` storage in a fresh bucket of the S3 server at ``endpoint``."""
    return {
        "ASSETS_FS_BACKEND": "s3",
        "ASSETS_FS_ENDPOINT": endpoint,
        "ASSETS_FS_REGION": "us-east-1",
        "ASSETS_FS_ACCESS_KEY": access_key,
        "ASSETS_FS_SECRET_KEY": secret_key,
        "ASSETS_FS_ADDRESSING_STYLE": "path",
        "ASSETS_FS_CREATE_BUCKET": True,
        "ASSETS_FS_BUCKET": unique("static"),
        **extra,
    }


def s3_client(config: dict):
    """A plain boto3 client on the bucket's server, to look at what was published."""
    return boto3.client(
        "s3", endpoint_url=config["ASSETS_FS_ENDPOINT"], region_name="us-east-1",
        aws_access_key_id=config["ASSETS_FS_ACCESS_KEY"], aws_secret_access_key=config["ASSETS_FS_SECRET_KEY"],
    )  # fmt: skip


def bucket_keys(client, bucket: str) -> set[str]:
    keys = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", ()))
    return keys


def versioned_bucket(client, bucket: str) -> str:
    """Create ``bucket`` with versioning on, so that every PUT of a key leaves one more version."""
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def put_counts(client, bucket: str) -> dict[str, int]:
    """How many times each key of a versioned bucket was written (its number of versions)."""
    counts: dict[str, int] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", ()):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts
