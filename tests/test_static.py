"""Static publishing (flask_fs.static): to S3 (moto's server and Swift's S3 API) and to a local
storage, URLs in rendered templates. The Flask-S3 compatible API is tested in test_static_flask_s3.py."""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
import urllib.request

import pytest
from flask import render_template_string

import flask_fs as fs
from flask_fs.static import PublishError, StaticFiles, publish
from flask_fs.static import url_for as static_url_for
from tests.backends.conftest import unique
from tests.servers import free_port
from tests.static_site import FILES, MANIFEST, PUBLISHED, bucket_keys, build_site, s3_client, s3_config, site_app


@pytest.fixture
def site(tmp_path):
    return build_site(tmp_path / "site")


@pytest.fixture(params=["moto", "swift-s3"])
def s3(request):
    """Settings for an ``assets`` storage in a new bucket: on moto, then on Swift's S3 API."""
    if request.param == "moto":
        return s3_config(request.getfixturevalue("moto_endpoint"), "testing", "testing")
    server = request.getfixturevalue("swift_server")
    return s3_config(server.endpoint, server.user, server.key)


@pytest.fixture
def moto(moto_endpoint):  # noqa: F811
    return s3_config(moto_endpoint, "testing", "testing")


@pytest.fixture
def public(moto):
    """Moto settings with published files readable by anyone (moto refuses anonymous GETs otherwise)."""
    return {**moto, "FS_STATIC_ACL": "public-read"}


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` as a browser would (no credentials): status, headers (lower-case names), body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def urls_in(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


# -- publishing to S3 -------------------------------------------------------------------------------


def test_publish_mirrors_url_paths_with_content_and_type(site, s3):
    app = site_app(site, **s3)
    StaticFiles(app)
    result = publish(app)
    assert sorted(result.uploaded) == sorted(PUBLISHED)
    client, bucket = s3_client(s3), s3["ASSETS_FS_BUCKET"]
    assert bucket_keys(client, bucket) == PUBLISHED | {MANIFEST}
    for name, data in FILES.items():
        key = name.replace("admin_static/", "admin/admin_static/")
        if key in PUBLISHED:
            assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    types = {key: client.head_object(Bucket=bucket, Key=key)["ContentType"] for key in PUBLISHED}
    assert types["static/css/app.css"] == "text/css"
    assert types["static/js/app.js"] == "text/javascript"
    assert types["static/img/logo.png"] == "image/png"
    assert types["static/fonts/icons.woff2"] == "font/woff2"
    assert types["static/data/deep/er/list.json"] == "application/json"


def test_headers_for_all_files_and_per_path(site, s3):
    app = site_app(
        site, FS_STATIC_HEADERS={"Cache-Control": "max-age=3600", "X-Team": "web"},
        FS_STATIC_PATH_HEADERS={r"\.css$": {"cache-control": "max-age=60", "Content-Disposition": "inline"}}, **s3,
    )  # fmt: skip
    StaticFiles(app)
    publish(app)
    client, bucket = s3_client(s3), s3["ASSETS_FS_BUCKET"]
    css = client.head_object(Bucket=bucket, Key="static/css/app.css")
    js = client.head_object(Bucket=bucket, Key="static/js/app.js")
    assert css["CacheControl"] == "max-age=60" and css["ContentDisposition"] == "inline"
    assert js["CacheControl"] == "max-age=3600" and "ContentDisposition" not in js
    assert js["Metadata"]["x-team"] == "web"


def test_gzip_compresses_listed_extensions_only(site, s3):
    app = site_app(site, FS_STATIC_GZIP=True, **s3)
    StaticFiles(app)
    publish(app)
    client, bucket = s3_client(s3), s3["ASSETS_FS_BUCKET"]
    css = client.get_object(Bucket=bucket, Key="static/css/app.css")
    assert css["ContentEncoding"] == "gzip" and css["ContentType"] == "text/css"
    stored = css["Body"].read()
    assert len(stored) < len(FILES["static/css/app.css"]) / 10
    assert gzip.decompress(stored) == FILES["static/css/app.css"]
    png = client.get_object(Bucket=bucket, Key="static/img/logo.png")
    assert "ContentEncoding" not in png and png["Body"].read() == FILES["static/img/logo.png"]


def test_gzip_extension_list_and_browser_view(site, public):
    app = site_app(site, FS_STATIC_GZIP=True, FS_STATIC_GZIP_EXTENSIONS=["js"], **public)
    StaticFiles(app)
    publish(app)
    with app.test_request_context():
        js_url = static_url_for("static", filename="js/app.js")
        css_url = static_url_for("static", filename="css/app.css")
    status, headers, body = fetch(js_url)  # urllib does not decode: we see the stored bytes
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == FILES["static/js/app.js"]
    status, headers, body = fetch(css_url)
    assert "content-encoding" not in headers and body == FILES["static/css/app.css"]


def test_unchanged_second_run_uploads_nothing_then_only_changes(site, s3):
    app = site_app(site, **s3)
    StaticFiles(app)
    assert len(publish(app).uploaded) == len(PUBLISHED)
    client, bucket = s3_client(s3), s3["ASSETS_FS_BUCKET"]
    before = client.head_object(Bucket=bucket, Key="static/js/app.js")["LastModified"]
    again = publish(app)
    assert again.uploaded == [] and sorted(again.unchanged) == sorted(PUBLISHED)
    (site / "static/css/app.css").write_bytes(b"body { color: blue }")
    (site / "static/new.txt").write_bytes(b"new")
    third = publish(app)
    assert third.uploaded == ["static/css/app.css", "static/new.txt"]
    assert third.reasons == {"static/css/app.css": "changed", "static/new.txt": "new"}
    assert client.get_object(Bucket=bucket, Key="static/css/app.css")["Body"].read() == b"body { color: blue }"
    assert client.head_object(Bucket=bucket, Key="static/js/app.js")["LastModified"] == before


def test_app_config_is_left_as_written(site, moto):
    app = site_app(site, FS_STATIC_GZIP=True, FS_STATIC_HEADERS={"X-Team": "web"}, **moto)
    before = copy.deepcopy(dict(app.config))
    StaticFiles(app)
    publish(app)
    render(app)
    StaticFiles(app)
    publish(app, verify=True, delete=True)
    assert sorted(app.config) == sorted(before)
    for key, value in before.items():
        assert app.config[key] == value, key
    head = s3_client(moto).head_object(Bucket=moto["ASSETS_FS_BUCKET"], Key="static/css/app.css")
    assert head["ContentEncoding"] == "gzip" and head["Metadata"]["x-team"] == "web"


def test_changed_headers_upload_again(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    publish(app)
    app.config["FS_STATIC_CACHE_CONTROL"] = "max-age=31536000, immutable"
    StaticFiles(app)  # settings are read by init_app
    result = publish(app)
    assert sorted(result.uploaded) == sorted(PUBLISHED)
    assert set(result.reasons.values()) == {"headers changed"}
    head = s3_client(moto).head_object(Bucket=moto["ASSETS_FS_BUCKET"], Key="static/js/app.js")
    assert head["CacheControl"] == "max-age=31536000, immutable"


def test_delete_removes_only_what_is_gone_locally(site, s3):
    app = site_app(site, **s3)
    StaticFiles(app)
    publish(app)
    client, bucket = s3_client(s3), s3["ASSETS_FS_BUCKET"]
    client.put_object(Bucket=bucket, Key="uploads/user.jpg", Body=b"not a static file")
    (site / "static/js/app.js").unlink()
    kept = publish(app)
    assert kept.deleted == [] and "static/js/app.js" in bucket_keys(client, bucket)
    dry = publish(app, delete=True, dry_run=True)
    assert dry.deleted == ["static/js/app.js"] and "static/js/app.js" in bucket_keys(client, bucket)
    result = publish(app, delete=True)
    assert result.deleted == ["static/js/app.js"]
    assert bucket_keys(client, bucket) == (PUBLISHED - {"static/js/app.js"}) | {MANIFEST, "uploads/user.jpg"}
    manifest = json.loads(client.get_object(Bucket=bucket, Key=MANIFEST)["Body"].read())
    assert "static/js/app.js" not in manifest["files"]


def test_verify_notices_files_changed_or_deleted_in_the_bucket(site, s3):
    app = site_app(site, **s3)
    StaticFiles(app)
    publish(app)
    client, bucket = s3_client(s3), s3["ASSETS_FS_BUCKET"]
    client.delete_object(Bucket=bucket, Key="static/js/app.js")
    client.put_object(Bucket=bucket, Key="static/css/app.css", Body=b"tampered")
    assert publish(app).uploaded == []  # the manifest alone trusts the bucket
    result = publish(app, verify=True)
    assert result.reasons == {
        "static/js/app.js": "missing from the storage",
        "static/css/app.css": "changed in the storage",
    }
    assert client.get_object(Bucket=bucket, Key="static/css/app.css")["Body"].read() == FILES["static/css/app.css"]
    assert "static/js/app.js" in bucket_keys(client, bucket)
    assert publish(app, verify=True).uploaded == []


def test_verify_with_gzip_copies(site, moto):
    app = site_app(site, FS_STATIC_GZIP=True, **moto)
    StaticFiles(app)
    publish(app)
    assert publish(app, verify=True).uploaded == []


def test_hidden_files_and_filter(site, moto):
    app = site_app(site, FS_STATIC_INCLUDE_HIDDEN=True, FS_STATIC_FILTER=r"^(css|\.)", **moto)
    StaticFiles(app)
    result = publish(app)
    assert sorted(result.uploaded) == ["static/.cache/ignored.js", "static/.hidden.txt", "static/css/app.css"]


def test_prefix_and_acl(site, moto):
    app = site_app(site, FS_STATIC_PREFIX="/v2/", FS_STATIC_ACL="public-read", **moto)
    StaticFiles(app)
    publish(app)
    client, bucket = s3_client(moto), moto["ASSETS_FS_BUCKET"]
    assert bucket_keys(client, bucket) == {f"v2/{name}" for name in PUBLISHED | {MANIFEST}}
    grants = client.get_object_acl(Bucket=bucket, Key="v2/static/css/app.css")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ" for g in grants)


def test_no_acl_by_default(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    publish(app)
    grants = s3_client(moto).get_object_acl(Bucket=moto["ASSETS_FS_BUCKET"], Key="static/css/app.css")["Grants"]
    assert not any("AllUsers" in g["Grantee"].get("URI", "") for g in grants)


def test_progress_is_reported_per_file(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    events = []
    publish(app, progress=lambda action, name: events.append((action, name)))
    assert sorted(events) == sorted(("upload", name) for name in PUBLISHED)


def test_dry_run_changes_nothing(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    result = publish(app, dry_run=True)
    assert result.dry_run and sorted(result.uploaded) == sorted(PUBLISHED)
    assert set(result.reasons.values()) == {"new"}
    assert bucket_keys(s3_client(moto), moto["ASSETS_FS_BUCKET"]) == set()


def test_server_down_is_a_typed_error(site):
    config = s3_config(f"http://127.0.0.1:{free_port()}", "testing", "testing", ASSETS_FS_MAX_ATTEMPTS=1)
    app = site_app(site, **config)
    StaticFiles(app)
    with pytest.raises(fs.BackendError) as info:
        publish(app)
    assert info.value.__cause__ is not None


def test_failed_files_are_reported_and_the_rest_recorded(site, moto):
    assets = fs.Storage("assets", fs.AllExcept(["png"]))
    app = site_app(site, **moto)
    fs.init_app(app, assets)
    StaticFiles(app, storage=assets)
    with pytest.raises(PublishError) as info:
        publish(app)
    result = info.value.result
    assert list(result.failed) == ["static/img/logo.png"]
    assert isinstance(result.failed["static/img/logo.png"], fs.UnauthorizedFileType)
    assert sorted(result.uploaded) == sorted(PUBLISHED - {"static/img/logo.png"})
    with pytest.raises(PublishError) as again:
        publish(app)
    assert again.value.result.uploaded == [] and list(again.value.result.failed) == ["static/img/logo.png"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("FS_STATIC_CACHE_BUST", "hash"), ("FS_STATIC_FILTER", "(unclosed"), ("FS_STATIC_URL_STYLE", "virtual")],
)
def test_bad_settings_are_configuration_errors(site, key, value):
    app = site_app(site, ASSETS_FS_BACKEND="local", **{key: value})
    with pytest.raises(fs.ConfigurationError, match=key):
        StaticFiles(app)


# -- URLs in templates ------------------------------------------------------------------------------


def render(app, template: str = "{{ url_for('static', filename='css/app.css') }}") -> str:
    with app.test_request_context():
        return render_template_string(template)


def test_template_urls_point_at_the_bucket(site, public):
    moto = public
    app = site_app(site, **moto)
    StaticFiles(app)
    publish(app)
    bucket = moto["ASSETS_FS_BUCKET"]
    with app.test_request_context():
        from flask import render_template

        html = render_template("page.html")
    base = f"{moto['ASSETS_FS_ENDPOINT']}/{bucket}/"
    assert urls_in(html) == [base + "static/css/app.css", base + "admin/admin_static/admin.css", "/"]
    for url in urls_in(html)[:2]:
        status, headers, body = fetch(url)
        assert status == 200 and headers["content-type"] == "text/css"
    assert fetch(urls_in(html)[1])[2] == FILES["admin_static/admin.css"]
    assert (
        render(app, "{{ url_for('static', filename='name with space.txt') }}")
        == base + "static/name%20with%20space.txt"
    )
    assert fetch(base + "static/name%20with%20space.txt")[2] == b"spaced out"


def test_url_settings(site, moto):
    cases = [
        ({}, "http://127.0.0.1:{port}/{bucket}/static/css/app.css"),
        ({"FS_STATIC_URL": "https://cdn.example.com/assets"}, "https://cdn.example.com/assets/static/css/app.css"),
        ({"FS_STATIC_BUCKET_DOMAIN": "s3.eu-west-1.amazonaws.com"}, "https://{bucket}.s3.eu-west-1.amazonaws.com/static/css/app.css"),
        ({"FS_STATIC_BUCKET_DOMAIN": "s3.example.org", "FS_STATIC_URL_STYLE": "path", "FS_STATIC_HTTPS": False},
         "http://s3.example.org/{bucket}/static/css/app.css"),
        ({"FS_STATIC_PREFIX": "v1", "FS_STATIC_URL": "https://cdn.example.com"}, "https://cdn.example.com/v1/static/css/app.css"),
        ({"ASSETS_FS_URL": "https://static.example.com/"}, "https://static.example.com/static/css/app.css"),
        ({"ASSETS_FS_PREFIX": "shared/site"}, "http://127.0.0.1:{port}/{bucket}/shared/site/static/css/app.css"),
    ]  # fmt: skip
    port = moto["ASSETS_FS_ENDPOINT"].rsplit(":", 1)[1]
    for extra, expected in cases:
        app = site_app(site, **{**moto, **extra})
        StaticFiles(app)
        assert render(app) == expected.format(port=port, bucket=moto["ASSETS_FS_BUCKET"]), extra
    app = site_app(site, FS_STATIC_URL="http://cdn.example.com/", **moto)
    StaticFiles(app)
    template = "{{ url_for('static', filename='a.css', _scheme='https', _anchor='x', theme='dark') }}"
    assert render(app, template) == "https://cdn.example.com/static/a.css?theme=dark#x"


def test_switches_keep_local_urls(site, moto):
    local = "/static/css/app.css"
    app = site_app(site, **moto)
    StaticFiles(app)
    app.debug = True
    assert render(app) == local  # off in debug mode...
    app.config["FS_STATIC_DEBUG"] = True
    StaticFiles(app)
    assert render(app).endswith("/static/css/app.css") and render(app) != local  # ...unless enabled
    for switch in ({"FS_STATIC_ACTIVE": False}, {"FS_STATIC_TESTING": False}):
        app = site_app(site, **{**moto, **switch})
        StaticFiles(app)
        assert render(app) == local, switch
        assert render(app, "{{ url_for('page') }}") == "/"


def test_cache_busting_by_query_and_by_name(site, public):
    moto = public
    app = site_app(site, FS_STATIC_CACHE_BUST="query", **moto)
    StaticFiles(app)
    publish(app)
    first = render(app)
    assert re.search(r"/static/css/app\.css\?v=[0-9a-f]{12}$", first)
    assert fetch(first)[2] == FILES["static/css/app.css"]
    (site / "static/css/app.css").write_bytes(b"body{}")
    assert render(app) != first
    app = site_app(site, FS_STATIC_CACHE_BUST="name", **moto)
    StaticFiles(app)
    result = publish(app)
    url = render(app)
    hashed = re.search(r"/static/css/app\.([0-9a-f]{12})\.css$", url)
    assert hashed, url
    assert f"static/css/app.{hashed.group(1)}.css" in result.uploaded
    assert fetch(url)[2] == b"body{}"
    plain = url.replace(f".{hashed.group(1)}", "")
    assert fetch(plain)[2] == b"body{}"  # the plain name too, for relative references in CSS


def test_blueprint_relative_endpoint_in_its_templates(site, moto):
    app = site_app(site, **moto)
    StaticFiles(app)
    with app.test_request_context("/admin/admin_static/admin.css"):
        html = render_template_string("{{ url_for('.static', filename='admin.css') }}")
    assert html.endswith(f"/{moto['ASSETS_FS_BUCKET']}/admin/admin_static/admin.css")


# -- publishing to a local storage --------------------------------------------------------------------


def test_publish_to_local_storage_and_serve(site):
    app = site_app(site, ASSETS_FS_BACKEND="local", FS_STATIC_GZIP=True)
    StaticFiles(app)
    result = publish(app)
    assert sorted(result.uploaded) == sorted(PUBLISHED)
    root = site / "instance" / "fs" / "assets"
    assert (root / "static/css/app.css").read_bytes() == FILES["static/css/app.css"]  # no gzip: no header
    assert publish(app).uploaded == []
    (site / "admin_static/admin.css").unlink()
    assert publish(app, delete=True).deleted == ["admin/admin_static/admin.css"]
    assert not (root / "admin/admin_static/admin.css").exists()
    html = render(app)
    assert html == "/assets/static/css/app.css"  # the fs view of the local storage
    response = app.test_client().get(html)
    assert response.status_code == 200 and response.data == FILES["static/css/app.css"]
    with app.app_context():
        manifest = json.loads(app.extensions["fs"].storages["assets"].read(MANIFEST))
    assert set(manifest["files"]) == PUBLISHED - {"admin/admin_static/admin.css"}


def test_local_verify_notices_changes(site):
    app = site_app(site, ASSETS_FS_BACKEND="local")
    StaticFiles(app)
    publish(app)
    root = site / "instance" / "fs" / "assets"
    (root / "static/js/app.js").write_bytes(b"changed on the server")
    (root / "static/img/logo.png").unlink()
    assert publish(app).uploaded == []
    assert sorted(publish(app, verify=True).uploaded) == ["static/img/logo.png", "static/js/app.js"]


# -- publishing to Swift (its own API) ----------------------------------------------------------------


def test_publish_to_swift_keeps_headers(site, swift_server):  # noqa: F811
    container = unique("static")
    app = site_app(
        site, ASSETS_FS_BACKEND="swift", ASSETS_FS_AUTHURL=swift_server.auth_url, ASSETS_FS_USER=swift_server.user,
        ASSETS_FS_KEY=swift_server.key, ASSETS_FS_CONTAINER=container, FS_STATIC_GZIP=True,
        FS_STATIC_CACHE_CONTROL="max-age=86400", FS_STATIC_URL=f"{swift_server.storage_url}/{container}",
    )  # fmt: skip
    StaticFiles(app)
    assert sorted(publish(app).uploaded) == sorted(PUBLISHED)
    assert publish(app, verify=True).uploaded == []
    url = render(app)
    request = urllib.request.Request(url, headers={"X-Auth-Token": swift_server.token()})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == "text/css"
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Cache-Control"] == "max-age=86400"
        assert gzip.decompress(response.read()) == FILES["static/css/app.css"]


def test_edit_keeping_size_and_mtime_is_still_noticed(site):
    app = site_app(site, ASSETS_FS_BACKEND="local")
    StaticFiles(app)
    publish(app)
    path = site / "static/css/app.css"
    info = path.stat()
    path.write_bytes(FILES["static/css/app.css"].replace(b"#333", b"#444"))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # as cp -p or a reproducible build would
    assert path.stat().st_size == info.st_size and path.stat().st_mtime_ns == info.st_mtime_ns
    assert publish(app).uploaded == ["static/css/app.css"]


def test_unreadable_manifest_means_upload_everything(site):
    app = site_app(site, ASSETS_FS_BACKEND="local")
    StaticFiles(app)
    publish(app)
    (site / "instance/fs/assets" / MANIFEST).write_text("{not json")
    assert sorted(publish(app).uploaded) == sorted(PUBLISHED)
    assert publish(app).uploaded == []
