"""``flask fs ...`` through Flask's real command line (the ``flask.commands`` entry point), with
``app.test_cli_runner()``."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time

import pytest
from flask import Flask
from flask.cli import cli as flask_cli

import flask_fs as fs
from flask_fs.static import StaticFiles
from tests.servers import free_port
from tests.static_site import MANIFEST, PUBLISHED, bucket_keys, build_site, s3_client, s3_config, site_app

SECRET = "s3cr3t-do-not-print"


@pytest.fixture
def site(tmp_path):
    return build_site(tmp_path / "site")


@pytest.fixture
def moto(moto_endpoint):  # noqa: F811
    return s3_config(moto_endpoint, "testing", SECRET)


def run(app: Flask, *args: str):
    """Run ``flask <args>`` on ``app``, as the ``flask`` command would."""
    return app.test_cli_runner().invoke(flask_cli, list(args))


def test_fs_group_is_registered_on_the_flask_command(site):
    result = run(site_app(site), "fs", "--help")
    assert result.exit_code == 0
    for command in ("storages", "ls", "check", "clean", "publish"):
        assert command in result.output


def test_storages_shows_backends_and_masks_secrets(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    fs.init_app(app, fs.Storage("files"))
    result = run(app, "fs", "storages")
    assert result.exit_code == 0, result.output
    assert "assets  (s3)" in result.output and "files  (local)" in result.output
    assert f"bucket = '{moto['ASSETS_FS_BUCKET']}'" in result.output
    assert "secret_key = '****'" in result.output and "access_key = '****'" in result.output
    assert SECRET not in result.output
    assert "multipart_threshold = 8 MiB" in result.output and "multipart_chunksize = 5 MiB" in result.output
    assert "url: none set, files are served by the fs view at http://localhost/files/" in result.output


def test_storages_shows_bucket_url_and_sizes_and_masks_passwords_in_urls(site):
    app = site_app(
        site,
        MEDIA_FS_BACKEND="s3",
        MEDIA_FS_URL="https://cdn.example.com/media",
        MEDIA_FS_MAX_SIZE="16MiB",
        DB_FS_BACKEND="gridfs",
        DB_FS_MONGO_URL="mongodb://site:hunter2@127.0.0.1:1/site",
        DB_FS_MAX_SIZE=500_000,
    )
    fs.init_app(app, fs.Storage("media"), fs.Storage("db"))
    app.config["FS_SERVE"] = False
    lines = run(app, "fs", "storages").output.splitlines()
    media = lines[lines.index("media  (s3)") + 1 :]
    assert "    bucket = 'media'" in media and "    max_size = 16 MiB" in media
    assert "    url = 'https://cdn.example.com/media'" in media
    db = lines[lines.index("db  (gridfs)") + 1 : lines.index("media  (s3)")]
    assert "    mongo_url = 'mongodb://site:****@127.0.0.1:1/site'" in db
    assert "    max_size = 500000 bytes (0.48 MiB)" in db
    assert "    url: none set, and FS_SERVE is off: files have no public URL" in db
    assert "hunter2" not in "\n".join(lines)


def test_storages_without_any(site):
    result = run(site_app(site), "fs", "storages")
    assert result.exit_code == 0 and "no storage" in result.output


def test_publish_dry_run_then_publish_then_nothing(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    client, bucket = s3_client(moto), moto["ASSETS_FS_BUCKET"]
    dry = run(app, "fs", "publish", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "upload  static/css/app.css  (new)" in dry.output
    assert f"would upload {len(PUBLISHED)}, unchanged 0, would delete 0" in dry.output
    assert bucket_keys(client, bucket) == set()
    first = run(app, "fs", "publish")
    assert first.exit_code == 0, first.output
    assert "publishing" in first.output  # the progress bar's label
    assert f"uploaded {len(PUBLISHED)}, unchanged 0, deleted 0" in first.output
    assert bucket_keys(client, bucket) == PUBLISHED | {MANIFEST}
    second = run(app, "fs", "publish", "--quiet")
    assert second.exit_code == 0 and f"uploaded 0, unchanged {len(PUBLISHED)}, deleted 0" in second.output


def test_publish_delete_and_verify(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    assert run(app, "fs", "publish").exit_code == 0
    client, bucket = s3_client(moto), moto["ASSETS_FS_BUCKET"]
    (site / "static/js/app.js").unlink()
    client.delete_object(Bucket=bucket, Key="static/img/logo.png")
    dry = run(app, "fs", "publish", "--dry-run", "--delete", "--verify")
    assert "delete  static/js/app.js" in dry.output
    assert "upload  static/img/logo.png  (missing from the storage)" in dry.output
    result = run(app, "fs", "publish", "--delete", "--verify")
    assert result.exit_code == 0, result.output
    assert "uploaded 1," in result.output and "deleted 1" in result.output
    assert bucket_keys(client, bucket) == (PUBLISHED - {"static/js/app.js"}) | {MANIFEST}


def test_publish_force(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    run(app, "fs", "publish")
    result = run(app, "fs", "publish", "--force", "-q")
    assert f"uploaded {len(PUBLISHED)}, unchanged 0" in result.output


def test_publish_to_an_unreachable_server_fails_cleanly(site):
    app = site_app(site, **s3_config(f"http://127.0.0.1:{free_port()}", "a", "b", ASSETS_FS_MAX_ATTEMPTS=1))
    StaticFiles(app)
    result = run(app, "fs", "publish")
    assert result.exit_code == 1
    assert result.output.startswith("Error: S3 at http://127.0.0.1:")
    assert "Traceback" not in result.output


def test_publish_reports_failed_files(site, moto):
    assets = fs.Storage("assets", fs.AllExcept(["png"]))
    app = site_app(site, **moto)
    fs.init_app(app, assets)
    StaticFiles(app, storage=assets)
    result = run(app, "fs", "publish", "-q")
    assert result.exit_code == 1
    assert "failed  static/img/logo.png:" in result.output
    assert f"uploaded {len(PUBLISHED) - 1}, unchanged 0, deleted 0, FAILED 1" in result.output


def test_publish_sets_up_static_files_when_the_app_did_not(site):
    app = site_app(site, ASSETS_FS_BACKEND="local")
    result = run(app, "fs", "publish", "-q")
    assert result.exit_code == 0, result.output
    assert f"uploaded {len(PUBLISHED)}" in result.output
    assert (site / "instance/fs/assets/static/css/app.css").exists()


@pytest.mark.parametrize("with_flask_fs", [True, False])
def test_publish_without_static_publishing_says_so(site, with_flask_fs):
    app = site_app(site) if with_flask_fs else Flask("bare", instance_path=str(site / "instance"))
    result = run(app, "fs", "publish")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: static publishing is not configured on app {app.name!r}: use StaticFiles(app) or FlaskS3(app), "
        "or set FS_STATIC_* or FLASKS3_* settings"
    ]


def test_publish_with_flask_s3_settings_alone(site, moto):
    bucket = moto["ASSETS_FS_BUCKET"]
    app = site_app(
        site, FLASKS3_BUCKET_NAME=bucket, FLASKS3_REGION="us-east-1", FLASKS3_ENDPOINT_URL=moto["ASSETS_FS_ENDPOINT"],
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY=SECRET,
    )  # fmt: skip
    before = dict(app.config)
    result = run(app, "fs", "publish", "-q")
    assert result.exit_code == 0, result.output
    assert f"uploaded {len(PUBLISHED)}, unchanged 0, deleted 0" in result.output
    assert bucket_keys(s3_client(moto), bucket) == PUBLISHED | {MANIFEST}
    assert dict(app.config) == before


def test_publish_with_a_bad_flask_s3_setting(site):
    result = run(site_app(site, FLASKS3_BUCKET_NAME="b", FLASKS3_URL_STYLE="virtual"), "fs", "publish")
    assert result.exit_code == 1
    assert result.output == "Error: FLASKS3_URL_STYLE must be 'host' or 'path', not 'virtual'\n"


def test_ls_lists_files_with_sizes(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    run(app, "fs", "publish")
    short = run(app, "fs", "ls", "assets")
    assert short.exit_code == 0 and set(short.output.splitlines()) == PUBLISHED | {MANIFEST}
    long = run(app, "fs", "ls", "--long", "assets")
    line = next(line for line in long.output.splitlines() if line.endswith(" static/css/app.css"))
    assert line.split()[0] == str((site / "static/css/app.css").stat().st_size)


def test_ls_unknown_storage(site):
    result = run(site_app(site), "fs", "ls", "nope")
    assert result.exit_code == 1 and "Error: no storage named 'nope'" in result.output


def test_check_reports_each_storage_and_fails_on_any(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    fs.init_app(app, fs.Storage("files"))
    ok = run(app, "fs", "check")
    assert ok.exit_code == 0, ok.output
    assert ok.output.splitlines() == ["assets (s3): ok", "files (local): ok"]
    app.config.update(DOWN_FS_BACKEND="s3", DOWN_FS_ENDPOINT=f"http://127.0.0.1:{free_port()}", DOWN_FS_MAX_ATTEMPTS=1)
    fs.init_app(app, fs.Storage("down"))
    bad = run(app, "fs", "check")
    assert bad.exit_code == 1
    assert "down (s3): FAILED: S3 at http://127.0.0.1:" in bad.output and "assets (s3): ok" in bad.output
    only = run(app, "fs", "check", "files")
    assert only.exit_code == 0 and only.output == "files (local): ok\n"


def test_clean_removes_old_leftovers_of_interrupted_uploads(site, swift_server):
    # Swift's S3 API, not moto: moto dates every multipart upload 2010-11-10.
    s3 = s3_config(swift_server.endpoint, swift_server.user, swift_server.key)
    app = site_app(site, **s3, FILES_FS_ROOT=str(site / "files"))
    assets, files = fs.Storage("assets"), fs.Storage("files")
    fs.init_app(app, assets, files)
    with app.app_context():
        files.write("kept.txt", "x")
        assets.write("kept.txt", "x")  # creates the bucket
        s3, bucket = assets.backend.client, assets.backend.bucket
        s3.create_multipart_upload(Bucket=bucket, Key="big.bin")  # a process died mid-upload
    stale = site / "files" / ".~fs-crashed.part"
    stale.write_bytes(b"half")
    day_ago = time.time() - 25 * 3600
    os.utime(stale, (day_ago, day_ago))
    (site / "files" / ".~fs-recent.part").write_bytes(b"half")
    result = run(app, "fs", "clean")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "assets (s3): 0 removed",  # the upload started less than 24 hours ago
        "files: removed .~fs-crashed.part",
        "files (local): 1 removed",
    ]
    assert sorted(os.listdir(site / "files")) == [".~fs-recent.part", "kept.txt"]
    time.sleep(1.1)  # the server dates uploads to the second
    result = run(app, "fs", "clean", "--older-than", "0", "assets")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("assets: removed multipart upload of big.bin started ")
    assert result.output.endswith("assets (s3): 1 removed\n")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert run(app, "fs", "clean", "nope").exit_code == 1


def test_commands_on_an_app_without_flask_fs(site):
    app = Flask("bare", instance_path=str(site / "instance"))
    result = run(app, "fs", "ls", "files")
    assert result.exit_code == 1 and "flask_fs is not initialised" in result.output


def test_ls_on_an_unreachable_server_is_one_line(site):
    app = site_app(site, **s3_config(f"http://127.0.0.1:{free_port()}", "a", "b", ASSETS_FS_MAX_ATTEMPTS=1))
    fs.init_app(app, fs.Storage("assets"))
    result = run(app, "fs", "ls", "assets")
    assert result.exit_code == 1
    assert result.output.startswith("Error: S3 at http://127.0.0.1:") and result.output.count("\n") == 1


@pytest.fixture
def web_server(tmp_path):
    """A plain HTTP file server on a free loopback port: an endpoint that is not S3."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # the runner captures stderr with the command's output
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_endpoint_that_is_not_s3_is_reported_as_such(site, web_server):
    app = site_app(
        site, MEDIA_FS_BACKEND="s3", MEDIA_FS_ENDPOINT=web_server, MEDIA_FS_ACCESS_KEY="a", MEDIA_FS_SECRET_KEY="b"
    )
    fs.init_app(app, fs.Storage("media"))
    check = run(app, "fs", "check", "media")
    assert check.exit_code == 1
    assert check.output == (
        f"media (s3): FAILED: the server at {web_server} does not answer like an S3 server "
        "(HTTP 404 without any S3 header): check MEDIA_FS_ENDPOINT\n"
    )
    listing = run(app, "fs", "ls", "media")
    assert listing.exit_code == 1 and "does not answer like an S3 server" in listing.output
    assert "does not exist" not in check.output + listing.output


APPS = {
    "broken_import": "import flask_fs_no_such_module\n",
    "broken_factory": (
        "from flask import Flask\n"
        "import flask_fs as fs\n"
        "def create_app():\n"
        "    app = Flask(__name__)\n"
        "    app.config['IMAGES_FS_BACKEND'] = 's3'\n"
        "    app.config['IMAGES_FS_ENDPOINT'] = 'minio:9000'\n"
        "    fs.init_app(app, fs.Storage('images'))\n"
        "    return app\n"
    ),
    "typo": (
        "from flask import Flask\n"
        "import flask_fs as fs\n"
        "app = Flask(__name__)\n"
        "app.config['FILES_FS_MAX_SIZ'] = '1MiB'\n"
        "fs.init_app(app, fs.Storage('files'))\n"
    ),
}


@pytest.mark.parametrize(
    ("module", "error"),
    [
        ("broken_import", "While importing 'broken_import', an ImportError was raised: ModuleNotFoundError: "
                          "No module named 'flask_fs_no_such_module'"),
        ("broken_factory", "ConfigurationError: storage 'images': IMAGES_FS_ENDPOINT = 'minio:9000': not a URL "
                           "with its scheme: write 'http://minio:9000' (or https://)"),
        ("typo", "ConfigurationError: storage 'files' (local backend): unknown setting FILES_FS_MAX_SIZ; "
                 "did you mean FILES_FS_MAX_SIZE?"),
        ("nowhere", "Could not import 'nowhere'."),
    ],
)  # fmt: skip
def test_an_app_that_fails_to_load_is_one_line(tmp_path, module, error):
    """Through the real ``flask`` command, in a new process: no traceback, one line on stderr."""
    for name, source in APPS.items():
        (tmp_path / f"{name}.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", module, "fs", "storages"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == f"Error: cannot load the app: {error}\n"
    assert result.stdout == ""
