"""The Flask-Store drop-in (flask_fs.store), used the way a Flask-Store 0.0.2 application uses it:
local files on disk served through the app, S3 on moto's server."""

from __future__ import annotations

import io
import os
import re
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import boto3
import pytest
from flask import Flask, request
from werkzeug.datastructures import FileStorage

from flask_fs import store as flask_store
from flask_fs.errors import ConfigurationError, InvalidFileName
from tests.backends.conftest import unique

SUFFIXED = re.compile(r"photo_[2-9A-HJ-NP-Za-km-z]{22}\.jpg")


def upload(data: bytes, filename: str) -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=filename)


def quick_start_app(tmp_path, **config) -> Flask:
    """The Quick Start application of Flask-Store's manual: an upload route returning the file's URL."""
    app = Flask("quickstart", instance_path=str(tmp_path / "instance"))
    app.config["STORE_DOMAIN"] = "http://127.0.0.1:5000"
    app.config["STORE_PATH"] = str(tmp_path / "uploads")
    app.config.update(config)
    store = flask_store.Store(app)

    @app.route("/upload", methods=["POST"])
    def upload():
        file = request.files.get("afile")
        provider = store.Provider()
        f = provider.save(file)
        return f.absolute_url()

    app.store = store
    return app


def post(app: Flask, data: bytes, filename: str):
    return app.test_client().post("/upload", data={"afile": (io.BytesIO(data), filename)})


# -- local store ------------------------------------------------------------------------------------


def test_quick_start_saves_on_disk_and_serves_the_url(tmp_path):
    app = quick_start_app(tmp_path)
    response = post(app, b"\xff\xd8jpeg bytes", "localfile.jpg")
    assert response.status_code == 200
    assert response.text == "http://127.0.0.1:5000/flaskstore/localfile.jpg"
    assert (tmp_path / "uploads" / "localfile.jpg").read_bytes() == b"\xff\xd8jpeg bytes"
    served = app.test_client().get("/flaskstore/localfile.jpg")
    assert served.status_code == 200
    assert served.data == b"\xff\xd8jpeg bytes"
    assert served.mimetype == "image/jpeg"
    assert app.test_client().get("/flaskstore/missing.jpg").status_code == 404


def test_application_factory_and_provider_class(tmp_path):
    store = flask_store.Store()

    def create_app(name):
        app = Flask(name, instance_path=str(tmp_path / name))
        app.config["STORE_PATH"] = str(tmp_path / name / "files")
        store.init_app(app)
        return app

    first, second = create_app("first"), create_app("second")
    with first.app_context():
        assert store.Provider is flask_store.LocalStore
        assert flask_store.store_provider() is flask_store.LocalStore
        f = flask_store.Provider().save(upload(b"one", "a.txt"))  # the module-level proxy
    with second.app_context():
        assert not store.Provider().exists("a.txt")  # each app has its own folder
    assert (tmp_path / "first" / "files" / "a.txt").read_bytes() == b"one"
    assert f.filename == "a.txt"


def test_store_file_paths_and_urls_with_a_destination(tmp_path):
    app = quick_start_app(tmp_path)
    with app.test_request_context():
        provider = app.store.Provider(destination="avatars")
        f = provider.save(upload(b"png", "me.png"))
        assert isinstance(f, flask_store.StoreFile)
        assert f.filename == "me.png"
        assert f.relative_path() == "avatars/me.png"
        assert f.absolute_path() == str(tmp_path / "uploads" / "avatars" / "me.png")
        assert f.relative_url() == "/flaskstore/avatars/me.png"
        assert f.absolute_url() == "http://127.0.0.1:5000/flaskstore/avatars/me.png"
        assert provider.exists("me.png") and not provider.exists("avatars/me.png")
        assert provider.store_path == str(tmp_path / "uploads" / "avatars")
        assert Path(f.absolute_path()).read_bytes() == b"png"
    assert app.test_client().get("/flaskstore/avatars/me.png").data == b"png"


def test_url_prefix_moves_the_route(tmp_path):
    app = quick_start_app(tmp_path, STORE_URL_PREFIX="/uploads")
    assert post(app, b"data", "report.pdf").text == "http://127.0.0.1:5000/uploads/report.pdf"
    client = app.test_client()
    assert client.get("/uploads/report.pdf").data == b"data"
    assert client.get("/flaskstore/report.pdf").status_code == 404


def test_absolute_url_without_domain(tmp_path):
    app = Flask("nodomain", instance_path=str(tmp_path / "instance"))
    app.config["STORE_PATH"] = str(tmp_path / "files")
    store = flask_store.Store(app)
    with app.test_request_context(base_url="https://files.example.org"):
        f = store.Provider().save(upload(b"x", "my photo.jpg"))
        assert f.relative_url() == "/flaskstore/my%20photo.jpg"
        assert f.absolute_url() == "https://files.example.org/flaskstore/my%20photo.jpg"
    with app.app_context():  # no request and no SERVER_NAME: no host to name
        assert flask_store.StoreFile("my photo.jpg").absolute_url() == "/flaskstore/my%20photo.jpg"
    assert app.test_client().get("/flaskstore/my%20photo.jpg").data == b"x"


def test_second_save_of_a_name_gets_a_suffix_and_keeps_the_first(tmp_path):
    app = quick_start_app(tmp_path)
    first = post(app, b"first", "photo.jpg").text
    second = post(app, b"second", "photo.jpg").text
    assert first == "http://127.0.0.1:5000/flaskstore/photo.jpg"
    suffixed = second.rpartition("/")[2]
    assert SUFFIXED.fullmatch(suffixed), second
    assert (tmp_path / "uploads" / "photo.jpg").read_bytes() == b"first"
    assert (tmp_path / "uploads" / suffixed).read_bytes() == b"second"
    with app.app_context():
        provider = app.store.Provider()
        assert provider.safe_filename("other.jpg") == "other.jpg"
        assert SUFFIXED.fullmatch(provider.safe_filename("photo.jpg"))
        third = provider.save(upload(b"third", "photo.jpg")).filename
    assert len({"photo.jpg", suffixed, third}) == 3
    assert (tmp_path / "uploads" / "photo.jpg").read_bytes() == b"first"


def test_concurrent_saves_of_one_name_never_overwrite(tmp_path):
    app = quick_start_app(tmp_path)
    barrier = threading.Barrier(8)

    def save(number: int) -> tuple[str, bytes]:
        with app.app_context():
            provider = app.store.Provider()
            barrier.wait()
            return provider.save(upload(b"content %d" % number, "photo.jpg")).filename, b"content %d" % number

    with ThreadPoolExecutor(8) as pool:
        saved = dict(pool.map(save, range(8)))
    assert len(saved) == 8 and "photo.jpg" in saved
    for name, content in saved.items():
        assert (tmp_path / "uploads" / name).read_bytes() == content


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/passwd", "C:\\evil.txt", "..", ""])
def test_unsafe_upload_names_raise_and_write_nothing(tmp_path, name):
    app = quick_start_app(tmp_path)
    with app.app_context(), pytest.raises(InvalidFileName) as error:
        app.store.Provider().save(upload(b"evil", name))
    if name:
        assert repr(name) in str(error.value)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


def test_unsafe_destinations_and_urls(tmp_path):
    app = quick_start_app(tmp_path)
    (tmp_path / "secret.txt").write_bytes(b"secret")
    with app.app_context():
        for destination in ("../outside", "a/../../b"):
            with pytest.raises(InvalidFileName):
                app.store.Provider(destination=destination)
        with pytest.raises(InvalidFileName):
            app.store.Provider().exists("../secret.txt")
        with pytest.raises(InvalidFileName):
            flask_store.StoreFile("../secret.txt")
    client = app.test_client()
    for url in ("/flaskstore/../secret.txt", "/flaskstore/%2e%2e/secret.txt", "/flaskstore/..%2fsecret.txt"):
        response = client.get(url)
        assert response.status_code == 404 and b"secret" not in response.data, url


def test_served_files_cannot_run_in_the_site(tmp_path):
    app = quick_start_app(tmp_path)
    post(app, b"<script>alert(1)</script>", "page.html")
    response = app.test_client().get("/flaskstore/page.html")
    assert response.data == b"<script>alert(1)</script>"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_whole_upload_is_saved_even_after_reading_it(tmp_path):
    app = quick_start_app(tmp_path)
    file = upload(b"0123456789", "digits.txt")
    assert file.read(4) == b"0123"  # e.g. a form validator sniffed the content
    with app.app_context():
        f = app.store.Provider().save(file)
    assert Path(f.absolute_path()).read_bytes() == b"0123456789"


def test_default_store_path_is_inside_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = Flask("defaults", instance_path=str(tmp_path / "instance"))
    store = flask_store.Store(app)
    assert app.config["STORE_PATH"] == str(tmp_path / "instance" / "fs" / "store")
    assert app.config["STORE_URL_PREFIX"] == "/flaskstore"
    with app.app_context():
        f = store.Provider().save(upload(b"x", "app.py"))
    assert f.absolute_path() == str(tmp_path / "instance" / "fs" / "store" / "app.py")
    assert not (tmp_path / "app.py").exists()


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("flask_store.stores.local.LocalStore", flask_store.LocalStore),
        ("flask_store.stores.s3.S3Store", flask_store.S3Store),
        ("flask_store.stores.s3.S3GeventStore", flask_store.S3GeventStore),
        ("flask_fs.store.S3Store", flask_store.S3Store),
        ("local", flask_store.LocalStore),
        ("s3", flask_store.S3Store),
        ("s3gevent", flask_store.S3GeventStore),
        (flask_store.S3Store, flask_store.S3Store),
    ],
)
def test_provider_names(tmp_path, setting, expected):
    app = Flask("names", instance_path=str(tmp_path))
    app.config["STORE_PROVIDER"] = setting
    assert flask_store.Store().provider(app) is expected


@pytest.mark.parametrize("setting", ["flask_store.stores.ftp.FTPStore", "nope", "os.path.join"])
def test_unknown_provider_names_the_setting(tmp_path, setting):
    app = Flask("unknown", instance_path=str(tmp_path))
    app.config["STORE_PROVIDER"] = setting
    with pytest.raises(flask_store.NotConfiguredError, match="STORE_PROVIDER") as error:
        flask_store.Store(app)
    assert isinstance(error.value, ConfigurationError)
    assert setting in str(error.value)


def test_provider_before_init_is_a_clear_error(tmp_path):
    app = Flask("uninitialised", instance_path=str(tmp_path))
    with app.app_context(), pytest.raises(flask_store.NotConfiguredError, match="Store\\(app\\)"):
        flask_store.Provider()
    with pytest.raises(flask_store.NotConfiguredError, match="not initialised"):
        flask_store.Store().Provider  # noqa: B018


# -- S3 store ---------------------------------------------------------------------------------------


@pytest.fixture
def bucket(moto_endpoint):
    """A new bucket in eu-west-1 on moto's server, as a Flask-Store user would have created it."""
    name = unique("store")
    client = s3_client(moto_endpoint)
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


def s3_client(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip


def s3_app(tmp_path, endpoint: str, bucket: str, provider: str = "flask_store.stores.s3.S3Store", **config) -> Flask:
    app = Flask("s3app", instance_path=str(tmp_path / "instance"))
    app.config["STORE_PROVIDER"] = provider
    app.config["STORE_S3_ACCESS_KEY"] = "testing"
    app.config["STORE_S3_SECRET_KEY"] = "testing"
    app.config["STORE_S3_BUCKET"] = bucket
    app.config["STORE_S3_REGION"] = "eu-west-1"
    app.config["STORE_S3_ENDPOINT"] = endpoint  # not in Flask-Store: moto runs on a loopback port
    app.config.update(config)
    store = flask_store.Store(app)

    @app.route("/upload", methods=["POST"])
    def upload():
        provider = store.Provider()
        return provider.save(request.files["afile"]).absolute_url()

    app.store = store
    return app


def fetch(url: str) -> tuple[int, bytes]:
    """GET ``url`` without credentials, as a browser would."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_s3_store_uploads_to_the_bucket(tmp_path, moto_endpoint, bucket):
    app = s3_app(tmp_path, moto_endpoint, bucket)
    url = post(app, b"\xff\xd8photo", "photo.jpg").text
    obj = s3_client(moto_endpoint).get_object(Bucket=bucket, Key="photo.jpg")
    assert obj["Body"].read() == b"\xff\xd8photo"
    assert obj["ContentType"] == "image/jpeg"
    assert url == f"{moto_endpoint}/{bucket}/photo.jpg"  # no STORE_DOMAIN: the object's URL on the server
    with app.app_context():
        assert flask_store.STORAGE.backend.client.meta.region_name == "eu-west-1"
        assert app.store.Provider is flask_store.S3Store
        assert app.store.Provider().exists("photo.jpg")


def test_s3_absolute_url_with_the_bucket_domain_matches_flask_store(tmp_path, moto_endpoint, bucket):
    domain = f"https://{bucket}.s3.amazonaws.com"
    app = s3_app(tmp_path, moto_endpoint, bucket, STORE_DOMAIN=domain)
    with app.test_request_context():
        f = app.store.Provider().save(upload(b"x", "photo.jpg"))
        # Flask-Store 0.0.2: urljoin(STORE_DOMAIN, url_join(STORE_URL_PREFIX = '', filename))
        assert f.absolute_url() == urljoin(domain, "photo.jpg") == f"{domain}/photo.jpg"
        assert f.relative_url() == "/photo.jpg"
        assert f.absolute_path() == "photo.jpg"
        assert f.relative_path() == "photo.jpg"


def test_s3_store_path_is_the_key_prefix_and_in_the_urls(tmp_path, moto_endpoint, bucket):
    app = s3_app(tmp_path, moto_endpoint, bucket, STORE_PATH="/uploads", STORE_FS_ACL="public-read")
    url = post(app, b"public bytes", "photo.jpg").text
    assert url == f"{moto_endpoint}/{bucket}/uploads/photo.jpg"
    assert fetch(url) == (200, b"public bytes")
    with app.app_context():
        f = app.store.Provider(destination="avatars").save(upload(b"avatar", "me.png"))
        assert f.absolute_path() == "uploads/avatars/me.png"
        assert f.relative_path() == "avatars/me.png"
        assert f.relative_url() == "/uploads/avatars/me.png"
        assert fetch(f.absolute_url()) == (200, b"avatar")
    app.config["STORE_DOMAIN"] = "https://cdn.example.com"
    with app.app_context():
        assert f.absolute_url() == "https://cdn.example.com/uploads/avatars/me.png"


def test_s3_files_are_not_public_unless_asked(tmp_path, moto_endpoint, bucket):
    app = s3_app(tmp_path, moto_endpoint, bucket)
    url = post(app, b"private", "photo.jpg").text
    assert fetch(url)[0] == 403
    grants = s3_client(moto_endpoint).get_object_acl(Bucket=bucket, Key="photo.jpg")["Grants"]
    assert not any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)


def test_s3_second_save_gets_a_suffix_and_keeps_the_first(tmp_path, moto_endpoint, bucket):
    app = s3_app(tmp_path, moto_endpoint, bucket)
    post(app, b"first", "photo.jpg")
    second = post(app, b"second", "photo.jpg").text.rpartition("/")[2]
    assert SUFFIXED.fullmatch(second)
    client = s3_client(moto_endpoint)
    assert client.get_object(Bucket=bucket, Key="photo.jpg")["Body"].read() == b"first"
    assert client.get_object(Bucket=bucket, Key=second)["Body"].read() == b"second"


def test_s3_unsafe_names_raise_and_upload_nothing(tmp_path, moto_endpoint, bucket):
    app = s3_app(tmp_path, moto_endpoint, bucket, STORE_PATH="/uploads")
    with app.app_context():
        for name in ("../outside.txt", "/abs.txt", "a\\b.txt"):
            with pytest.raises(InvalidFileName):
                app.store.Provider().save(upload(b"evil", name))
    assert s3_client(moto_endpoint).list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_s3_gevent_store_uploads_in_a_job_and_its_url_works_from_the_start(tmp_path, moto_endpoint, bucket):
    from flask_fs import jobs

    app = s3_app(tmp_path, moto_endpoint, bucket, provider="flask_store.stores.s3.S3GeventStore")
    gate = threading.Event()
    hold = lambda sender, **kwargs: gate.wait(10)  # noqa: E731
    jobs.job_started.connect(hold)
    try:
        url = post(app, b"uploaded", "doc.txt").text
        assert url == "http://localhost/flaskstore/doc.txt"  # the app serves it while the upload waits
        assert "Contents" not in s3_client(moto_endpoint).list_objects_v2(Bucket=bucket)
        response = app.test_client().get(url)
        assert (response.status_code, response.data) == (200, b"uploaded")
    finally:
        gate.set()
        jobs.job_started.disconnect(hold)
    assert jobs.jobs_of(app).wait(30)
    assert s3_client(moto_endpoint).get_object(Bucket=bucket, Key="doc.txt")["Body"].read() == b"uploaded"
    assert app.test_client().get(url).data == b"uploaded"  # the old URL keeps working
    with app.test_request_context():
        assert flask_store.StoreFile("doc.txt").absolute_url() == f"{moto_endpoint}/{bucket}/doc.txt"


def test_s3_endpoint_from_flask_fs_settings(tmp_path, moto_endpoint, bucket):
    app = s3_app(tmp_path, moto_endpoint, bucket, STORE_S3_ENDPOINT=None, FS_S3_ENDPOINT=moto_endpoint)
    post(app, b"via FS_S3_ENDPOINT", "a.txt")
    assert s3_client(moto_endpoint).get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"via FS_S3_ENDPOINT"


REQUIRED = ["STORE_S3_ACCESS_KEY", "STORE_S3_SECRET_KEY", "STORE_S3_BUCKET", "STORE_S3_REGION"]


@pytest.mark.parametrize("missing", REQUIRED)
def test_s3_missing_setting_is_named(tmp_path, missing):
    app = Flask("missing", instance_path=str(tmp_path))
    app.config.update({key: "value" for key in REQUIRED}, STORE_PROVIDER="flask_store.stores.s3.S3Store")
    del app.config[missing]
    store = flask_store.Store()
    with pytest.raises(flask_store.NotConfiguredError) as error:
        store.init_app(app)
    assert missing in str(error.value)
    assert [key for key in REQUIRED if key in str(error.value)] == [missing]
    with pytest.raises(flask_store.NotConfiguredError, match=missing):
        store.check_config(app)


def test_s3_all_missing_settings_are_named_and_flask_fs_names_count(tmp_path):
    app = Flask("missing", instance_path=str(tmp_path))
    app.config["STORE_PROVIDER"] = "s3"
    with pytest.raises(flask_store.NotConfiguredError) as error:
        flask_store.Store(app)
    assert all(key in str(error.value) for key in REQUIRED)
    app.config.update(STORE_S3_ACCESS_KEY="k", STORE_S3_SECRET_KEY="s", STORE_FS_BUCKET="b", FS_S3_REGION="eu-west-1")
    flask_store.Store().check_config(app)  # satisfied by flask_fs's names


def test_provider_and_flask_fs_backend_must_agree(tmp_path):
    app = Flask("clash", instance_path=str(tmp_path))
    app.config.update(STORE_PATH=str(tmp_path / "files"), STORE_FS_BACKEND="s3")
    with pytest.raises(flask_store.NotConfiguredError, match="STORE_FS_BACKEND"):
        flask_store.Store(app)


def test_local_store_root_from_flask_fs_name_wins(tmp_path):
    app = Flask("fsname", instance_path=str(tmp_path / "instance"))
    app.config.update(STORE_PATH=str(tmp_path / "theirs"), STORE_FS_ROOT=str(tmp_path / "ours"))
    store = flask_store.Store(app)
    with app.app_context():
        f = store.Provider().save(upload(b"x", "a.txt"))
    assert f.absolute_path() == os.path.join(tmp_path, "ours", "a.txt")
    assert (tmp_path / "ours" / "a.txt").read_bytes() == b"x"
