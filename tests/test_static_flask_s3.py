"""The Flask-S3 API of flask_fs.static (``FlaskS3``, ``create_all``, ``url_for``), as a Flask-S3 app meets it.

Expected URLs are written from Flask-S3 0.3's ``url_for``: ``<scheme>://`` + (``FLASKS3_CDN_DOMAIN``, or
``<bucket>.<FLASKS3_BUCKET_DOMAIN>`` in host style, ``<FLASKS3_BUCKET_DOMAIN>/<bucket>`` in path style)
+ ``/<FLASKS3_PREFIX>`` + the path Flask's URL map gives the static endpoint; the scheme is https unless
``FLASKS3_USE_HTTPS`` is false. Uploads go to moto (through ``FLASKS3_ENDPOINT_URL``, ``FS_S3_ENDPOINT``
or boto3's ``AWS_ENDPOINT_URL``) while the page URLs stay the AWS / CDN ones.
"""

from __future__ import annotations

import copy
import gzip
import re

import pytest
from flask import Blueprint, Flask, render_template, render_template_string

import flask_fs as fs
from flask_fs.static import FlaskS3, StaticFiles, create_all, publish
from flask_fs.static import url_for as static_url_for
from tests.backends.conftest import unique
from tests.static_site import (
    FILES,
    MANIFEST,
    PUBLISHED,
    bucket_keys,
    build_site,
    put_counts,
    s3_client,
    s3_config,
    site_app,
    versioned_bucket,
)


@pytest.fixture
def site(tmp_path):
    return build_site(tmp_path / "site")


@pytest.fixture
def moto(moto_endpoint):  # noqa: F811
    return s3_config(moto_endpoint, "testing", "testing")


@pytest.fixture
def client(moto):
    return s3_client(moto)


def flask_s3_config(bucket: str, **extra) -> dict:
    """A Flask-S3 configuration (credentials of the moto server); ``extra`` may rename or drop the bucket."""
    return {
        "FLASKS3_BUCKET_NAME": bucket, "FLASKS3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", **extra,
    }  # fmt: skip


def send_uploads_to(moto_endpoint: str, how: str, config: dict, monkeypatch) -> dict:
    """``config`` with uploads going to moto by one of the three ways an app can say so."""
    if how == "AWS_ENDPOINT_URL":  # boto3's own environment variable, as Flask-S3 users set it
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
        return config
    return {**config, how: moto_endpoint}


def render(app, template: str = "{{ url_for('static', filename='css/app.css') }}") -> str:
    with app.test_request_context():
        return render_template_string(template)


# (Flask-S3 settings, where uploads go, the URL Flask-S3 gives to css/app.css, where that file is stored)
URL_CASES = [
    ({}, "FLASKS3_ENDPOINT_URL",
     "https://{bucket}.s3.amazonaws.com/static/css/app.css", "static/css/app.css"),
    ({"FLASKS3_URL_STYLE": "path"}, "FS_S3_ENDPOINT",
     "https://s3.amazonaws.com/{bucket}/static/css/app.css", "static/css/app.css"),
    ({"FLASKS3_USE_HTTPS": False}, "AWS_ENDPOINT_URL",
     "http://{bucket}.s3.amazonaws.com/static/css/app.css", "static/css/app.css"),
    ({"FLASKS3_BUCKET_DOMAIN": "s3.eu-west-1.amazonaws.com"}, "FLASKS3_ENDPOINT_URL",
     "https://{bucket}.s3.eu-west-1.amazonaws.com/static/css/app.css", "static/css/app.css"),
    ({"FLASKS3_BUCKET_DOMAIN": "minio.example.org:9000", "FLASKS3_URL_STYLE": "path", "FLASKS3_USE_HTTPS": False},
     "FS_S3_ENDPOINT", "http://minio.example.org:9000/{bucket}/static/css/app.css", "static/css/app.css"),
    ({"FLASKS3_CDN_DOMAIN": "cdn.example.com"}, "AWS_ENDPOINT_URL",
     "https://cdn.example.com/static/css/app.css", "static/css/app.css"),
    ({"FLASKS3_CDN_DOMAIN": "cdn.example.com", "FLASKS3_URL_STYLE": "path", "FLASKS3_USE_HTTPS": False},
     "FLASKS3_ENDPOINT_URL", "http://cdn.example.com/static/css/app.css", "static/css/app.css"),
    ({"FLASKS3_PREFIX": "/v3/"}, "FS_S3_ENDPOINT",
     "https://{bucket}.s3.amazonaws.com/v3/static/css/app.css", "v3/static/css/app.css"),
    ({"FLASKS3_PREFIX": "site/2024", "FLASKS3_CDN_DOMAIN": "cdn.example.com"}, "AWS_ENDPOINT_URL",
     "https://cdn.example.com/site/2024/static/css/app.css", "site/2024/static/css/app.css"),
    ({"FLASKS3_PREFIX": "v1", "FLASKS3_URL_STYLE": "path"}, "FLASKS3_ENDPOINT_URL",
     "https://s3.amazonaws.com/{bucket}/v1/static/css/app.css", "v1/static/css/app.css"),
    ({"FLASKS3_BUCKET_NAME": None, "S3_BUCKET_NAME": "{bucket}", "S3_CDN_DOMAIN": "old.example.com",
      "S3_USE_HTTPS": False}, "FS_S3_ENDPOINT", "http://old.example.com/static/css/app.css", "static/css/app.css"),
    ({"FLASKS3_BUCKET_NAME": None, "S3_BUCKET_NAME": "{bucket}", "S3_URL_STYLE": "path", "S3_PREFIX": "legacy"},
     "AWS_ENDPOINT_URL", "https://s3.amazonaws.com/{bucket}/legacy/static/css/app.css", "legacy/static/css/app.css"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "uploads", "url", "key"), URL_CASES)
def test_urls_are_flask_s3_s_while_uploads_go_elsewhere(
    site, moto_endpoint, client, monkeypatch, settings, uploads, url, key
):
    bucket = unique("urls")
    extra = {name: value.format(bucket=bucket) if isinstance(value, str) else value for name, value in settings.items()}
    config = {k: v for k, v in flask_s3_config(bucket, **extra).items() if v is not None}
    app = site_app(site, **send_uploads_to(moto_endpoint, uploads, config, monkeypatch))
    FlaskS3(app)
    create_all(app)
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == FILES["static/css/app.css"]
    expected = url.format(bucket=bucket)
    with app.test_request_context():
        html = render_template("page.html")
    admin = expected.replace("static/css/app.css", "admin/admin_static/admin.css")
    assert re.findall(r'href="([^"]+)"', html) == [expected, admin, "/"]
    assert client.get_object(Bucket=bucket, Key=key.replace("static/css/app.css", "admin/admin_static/admin.css"))


def test_url_paths_come_from_flask_s_url_map(site, moto_endpoint, client):
    """Flask-S3 builds the path with Flask's URL map: static_url_path, blueprint prefixes, query arguments."""
    bucket = unique("paths")
    app = Flask("shop", static_folder=str(site / "static"), static_url_path="/assets-v2", root_path=str(site))
    app.register_blueprint(
        Blueprint(
            "admin",
            "shop",
            static_folder=str(site / "admin_static"),
            static_url_path="/s",
            url_prefix="/admin",
            root_path=str(site),
        )
    )
    app.add_url_rule("/", "page", lambda: "")
    app.config.update(flask_s3_config(bucket, FLASKS3_ENDPOINT_URL=moto_endpoint))
    FlaskS3(app)
    create_all(app)
    assert {"assets-v2/css/app.css", "admin/s/admin.css"} <= bucket_keys(client, bucket)
    base = f"https://{bucket}.s3.amazonaws.com"
    cases = {
        "{{ url_for('static', filename='css/app.css') }}": f"{base}/assets-v2/css/app.css",
        "{{ url_for('admin.static', filename='admin.css') }}": f"{base}/admin/s/admin.css",
        "{{ url_for('static', filename='css/app.css', v=3, _external=True) }}": f"{base}/assets-v2/css/app.css?v=3",
        "{{ url_for('static', filename='css/app.css', _scheme='http') }}": f"http://{bucket}.s3.amazonaws.com"
        "/assets-v2/css/app.css",
        "{{ url_for('static', filename='a b (1).txt') }}": f"{base}/assets-v2/a%20b%20(1).txt",
        # the one deliberate difference: S3 reads a bare + in a path as a space, Flask-S3's URL would miss the file
        "{{ url_for('static', filename='img/a+b.png') }}": f"{base}/assets-v2/img/a%2Bb.png",
        "{{ url_for('page') }}": "/",
    }
    for template, expected in cases.items():
        assert render(app, template) == expected, template
    with app.test_request_context("/admin/s/admin.css"):
        assert render_template_string("{{ url_for('.static', filename='admin.css') }}") == f"{base}/admin/s/admin.css"
        assert static_url_for("admin.static", filename="admin.css") == f"{base}/admin/s/admin.css"


def test_switches_keep_flask_s_local_urls(site, moto_endpoint):
    bucket, local = unique("switch"), "/static/css/app.css"
    for switches in ({"FLASKS3_ACTIVE": False}, {"USE_S3": False}, {"FLASKS3_OVERRIDE_TESTING": False}):
        app = site_app(site, **flask_s3_config(bucket, **switches))
        FlaskS3(app)
        assert render(app) == local, switches
    app = site_app(site, DEBUG=True, **flask_s3_config(bucket))
    FlaskS3().init_app(app)
    assert render(app) == local  # off in debug mode...
    app = site_app(site, DEBUG=True, FLASKS3_DEBUG=True, FS_S3_ENDPOINT=moto_endpoint, **flask_s3_config(bucket))
    FlaskS3(app)
    assert render(app) == f"https://{bucket}.s3.amazonaws.com/static/css/app.css"  # ...unless FLASKS3_DEBUG


@pytest.mark.parametrize("name", ["FLASKS3_URL_STYLE", "S3_URL_STYLE"])
def test_a_bad_url_style_is_named_as_written(site, name):
    app = site_app(site, **flask_s3_config("b", **{name: "virtual"}))
    with pytest.raises(fs.ConfigurationError, match=f"^{name} must be 'host' or 'path', not 'virtual'$"):
        FlaskS3(app)


# -- create_all ----------------------------------------------------------------------------------------


def test_create_all_honours_settings(site, moto, client):
    bucket = moto["ASSETS_FS_BUCKET"]
    app = site_app(
        site, FS_S3_ENDPOINT=moto["ASSETS_FS_ENDPOINT"], **flask_s3_config(
            bucket, FLASKS3_GZIP=True, FLASKS3_GZIP_ONLY_EXTS=[".js"], FLASKS3_HEADERS={"Cache-Control": "max-age=600"},
            FLASKS3_FILEPATH_HEADERS={r"css$": {"Cache-Control": "no-cache"}}, FLASKS3_PREFIX="site",
        ),
    )  # fmt: skip
    FlaskS3(app)
    create_all(app)
    assert bucket_keys(client, bucket) == {f"site/{name}" for name in PUBLISHED | {MANIFEST}}
    js = client.get_object(Bucket=bucket, Key="site/static/js/app.js")
    assert js["ContentEncoding"] == "gzip" and js["CacheControl"] == "max-age=600"
    assert gzip.decompress(js["Body"].read()) == FILES["static/js/app.js"]
    css = client.head_object(Bucket=bucket, Key="site/static/css/app.css")
    assert css["CacheControl"] == "no-cache" and "ContentEncoding" not in css and css["ContentType"] == "text/css"


def test_create_all_arguments_are_for_that_call_only(site, moto, client):
    app = site_app(site, FS_S3_ENDPOINT=moto["ASSETS_FS_ENDPOINT"], AWS_ACCESS_KEY_ID="testing")
    before = dict(app.config)
    bucket = unique("created")
    result = create_all(
        app, password="testing", bucket_name=bucket, location="EU", include_hidden=True,
        filepath_filter_regex=r"^(img|\.)", put_bucket_acl=True,
    )  # fmt: skip
    assert sorted(result.uploaded) == ["static/.cache/ignored.js", "static/.hidden.txt", "static/img/logo.png"]
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    grants = client.get_bucket_acl(Bucket=bucket)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ" for g in grants)
    assert dict(app.config) == before


def test_create_all_arguments_on_the_app_s_own_storage(site, moto, client):
    assets = fs.Storage("assets", fs.ALL)
    app = site_app(site, **moto)
    fs.init_app(app, assets)
    StaticFiles(app, storage=assets)
    other = unique("other")
    create_all(app, bucket_name=other)
    assert bucket_keys(client, other) == PUBLISHED | {MANIFEST}
    assert sorted(publish(app).uploaded) == sorted(PUBLISHED)  # back in the app's bucket
    assert bucket_keys(client, moto["ASSETS_FS_BUCKET"]) == PUBLISHED | {MANIFEST}


def test_create_all_without_a_bucket_says_which_setting_to_give(site, moto):
    app = site_app(site, FS_S3_ENDPOINT=moto["ASSETS_FS_ENDPOINT"], AWS_ACCESS_KEY_ID="testing")
    message = r"^no bucket to publish to: set FLASKS3_BUCKET_NAME \(or ASSETS_FS_BUCKET\) or pass bucket_name$"
    with pytest.raises(fs.ConfigurationError, match=message):
        create_all(app, password="testing")


def test_create_all_with_old_setting_names(site, moto, client):
    app = site_app(
        site, S3_BUCKET_NAME=moto["ASSETS_FS_BUCKET"], S3_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing", FS_S3_ENDPOINT=moto["ASSETS_FS_ENDPOINT"],
        S3_HEADERS={"Expires": "Thu, 15 Apr 2010 20:00:00 GMT"},
    )  # fmt: skip
    create_all(app)
    assert client.head_object(Bucket=moto["ASSETS_FS_BUCKET"], Key="static/css/app.css")["Expires"].year == 2010


def test_create_all_reads_the_settings_when_called(site, moto_endpoint, client):
    first, second = versioned_bucket(client, unique("first")), unique("second")
    app = site_app(site, FLASKS3_ENDPOINT_URL=moto_endpoint, **flask_s3_config(first, FLASKS3_ONLY_MODIFIED=False))
    FlaskS3(app)
    create_all(app)
    assert sorted(create_all(app).uploaded) == sorted(PUBLISHED)  # as documented: every file, every time
    twice = {**{name: 2 for name in PUBLISHED}, MANIFEST: 1}  # the same bytes: the manifest is not written again
    assert put_counts(client, first) == twice
    app.config["FLASKS3_ONLY_MODIFIED"] = True
    assert create_all(app).uploaded == []
    assert put_counts(client, first) == twice
    app.config["FLASKS3_BUCKET_NAME"] = second
    assert sorted(create_all(app).uploaded) == sorted(PUBLISHED)
    assert bucket_keys(client, second) == PUBLISHED | {MANIFEST}
    assert render(app) == f"https://{second}.s3.amazonaws.com/static/css/app.css"
    assert put_counts(client, first) == twice


@pytest.mark.parametrize("api", ["flask_s3", "native"])
def test_an_unchanged_republish_puts_nothing(site, moto_endpoint, client, api):
    bucket = versioned_bucket(client, unique("puts"))
    if api == "flask_s3":  # as Flask-S3 users run it: FLASKS3_ONLY_MODIFIED, one create_all per deploy
        app = site_app(site, FS_S3_ENDPOINT=moto_endpoint, **flask_s3_config(bucket, FLASKS3_ONLY_MODIFIED=True))
        FlaskS3(app)
        run = lambda: create_all(app, put_bucket_acl=False)  # noqa: E731
    else:
        app = site_app(site, **s3_config(moto_endpoint, "testing", "testing", ASSETS_FS_BUCKET=bucket))
        StaticFiles(app)
        run = lambda: publish(app)  # noqa: E731
    assert sorted(run().uploaded) == sorted(PUBLISHED)
    once = {name: 1 for name in PUBLISHED | {MANIFEST}}
    assert put_counts(client, bucket) == once
    again = run()
    assert again.uploaded == [] and sorted(again.unchanged) == sorted(PUBLISHED)
    assert put_counts(client, bucket) == once  # no PUT at all, not even the manifest
    (site / "static/js/app.js").write_bytes(b"console.log('changed');\n")
    assert run().uploaded == ["static/js/app.js"]
    assert put_counts(client, bucket) == {**once, "static/js/app.js": 2, MANIFEST: 2}


# -- the app's config is the user's --------------------------------------------------------------------


def test_app_config_is_left_as_written(site, moto_endpoint, client):
    """A plain Flask-S3 app (no flask_fs.init_app): FlaskS3, url_for and create_all write nothing into its config."""
    bucket, other = unique("mine"), unique("other")
    app = Flask("shop", static_folder=str(site / "static"), root_path=str(site), instance_path=str(site / "instance"))
    app.register_blueprint(
        Blueprint("admin", "shop", static_folder=str(site / "admin_static"), root_path=str(site), url_prefix="/admin")
    )
    app.config.update(
        flask_s3_config(
            bucket, FLASKS3_ENDPOINT_URL=moto_endpoint, FLASKS3_HEADERS={"X-Team": "web"},
            FLASKS3_USE_CACHE_CONTROL=True, FLASKS3_CACHE_CONTROL="max-age=60", FLASKS3_GZIP=True,
            FLASKS3_GZIP_ONLY_EXTS=[".css"], FLASKS3_PREFIX="v2",
        )
    )  # fmt: skip
    before = copy.deepcopy(dict(app.config))
    FlaskS3(app)
    assert render(app) == f"https://{bucket}.s3.amazonaws.com/v2/static/css/app.css"
    create_all(app)
    create_all(app, bucket_name=other, user="testing", password="testing", location="EU")
    create_all(app)
    assert sorted(app.config) == sorted(before)
    for key, value in before.items():
        assert app.config[key] == value, key
    head = client.head_object(Bucket=bucket, Key="v2/static/css/app.css")  # the settings were applied all the same
    assert head["CacheControl"] == "max-age=60" and head["ContentEncoding"] == "gzip"
    assert head["Metadata"]["x-team"] == "web"
    assert bucket_keys(client, other) == {f"v2/{name}" for name in PUBLISHED | {MANIFEST}}
