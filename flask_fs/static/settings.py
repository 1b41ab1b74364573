"""The publisher's settings: ``FS_STATIC_*`` keys, and the Flask-S3 names they replace.

Every ``FS_STATIC_*`` key has a default in :data:`DEFAULTS`. Flask-S3's settings (``FLASKS3_*``, and
the older ``S3_*`` / ``USE_S3*`` names) are translated by :func:`translate_flask_s3` into these keys
and into the settings of the target storage, so an app keeps its Flask-S3 configuration as it is.
The translation is a layer read on top of ``app.config``: the app's config itself is never changed.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError

#: Extensions compressed by default when ``FS_STATIC_GZIP`` is on: text formats that shrink well.
TEXT_EXTENSIONS = (
    "css", "js", "mjs", "json", "map", "svg", "html", "htm", "txt", "xml", "csv", "ico", "wasm",
    "webmanifest", "ttf", "otf", "eot",
)  # fmt: skip

DEFAULTS: dict[str, Any] = {
    "FS_STATIC_STORAGE": "assets",  # name of the target storage (its backend defaults to s3)
    "FS_STATIC_PREFIX": "",  # folder of the target storage the URL paths go under
    "FS_STATIC_INCLUDE_HIDDEN": False,  # publish files and folders whose name starts with a dot
    "FS_STATIC_FILTER": None,  # regex: only publish files whose path in their static folder matches
    "FS_STATIC_GZIP": False,  # store compressed copies with Content-Encoding: gzip
    "FS_STATIC_GZIP_EXTENSIONS": TEXT_EXTENSIONS,  # what to compress ('*': everything)
    "FS_STATIC_HEADERS": {},  # headers stored with every file
    "FS_STATIC_PATH_HEADERS": {},  # {regex searched in the URL path, e.g. "static/css/a.css": {header: value}}
    "FS_STATIC_CACHE_CONTROL": None,  # Cache-Control of every file (a header in HEADERS wins)
    "FS_STATIC_ACL": None,  # S3 canned ACL of every file, e.g. 'public-read'; none by default
    "FS_STATIC_CACHE_BUST": None,  # None, 'query' (?v=<hash>) or 'name' (app.<hash>.css)
    "FS_STATIC_URL": None,  # base URL of the published files (a CDN); default: from the storage
    "FS_STATIC_URL_STYLE": None,  # 'host' or 'path' bucket URLs; default: the storage's addressing style
    "FS_STATIC_BUCKET_DOMAIN": None,  # domain of bucket URLs; default: the endpoint's, else s3.amazonaws.com
    "FS_STATIC_HTTPS": True,  # scheme of bucket URLs built from FS_STATIC_BUCKET_DOMAIN
    "FS_STATIC_ACTIVE": True,  # rewrite static URLs in templates at all
    "FS_STATIC_DEBUG": False,  # ... also when app.debug is on
    "FS_STATIC_TESTING": True,  # ... also when app.testing is on (False: tests see local URLs)
    "FS_STATIC_WORKERS": 32,  # parallel transfers (a distant server: many requests in flight)
    "FS_STATIC_ONLY_MODIFIED": True,  # skip files whose content and headers did not change
    "FS_STATIC_MANIFEST": ".flask-fs-static.json",  # name, under the prefix, of the hashes manifest
}

# Flask-S3 0.3 setting -> our setting (the URL and storage settings are derived in translate_flask_s3).
_FLASK_S3 = {
    "FLASKS3_PREFIX": "FS_STATIC_PREFIX",
    "FLASKS3_HEADERS": "FS_STATIC_HEADERS",
    "FLASKS3_FILEPATH_HEADERS": "FS_STATIC_PATH_HEADERS",
    "FLASKS3_GZIP": "FS_STATIC_GZIP",
    "FLASKS3_GZIP_ONLY_EXTS": "FS_STATIC_GZIP_EXTENSIONS",
    "FLASKS3_ACTIVE": "FS_STATIC_ACTIVE",
    "FLASKS3_DEBUG": "FS_STATIC_DEBUG",
    "FLASKS3_OVERRIDE_TESTING": "FS_STATIC_TESTING",
    "FLASKS3_ONLY_MODIFIED": "FS_STATIC_ONLY_MODIFIED",
}
# Flask-S3 before 0.3 -> Flask-S3 0.3.
_OLD_NAMES = {
    "USE_S3": "FLASKS3_ACTIVE",
    "USE_S3_DEBUG": "FLASKS3_DEBUG",
    **{
        f"S3_{key}": f"FLASKS3_{key}"
        for key in (
            "BUCKET_NAME", "REGION", "USE_HTTPS", "BUCKET_DOMAIN", "CDN_DOMAIN", "USE_CACHE_CONTROL",
            "CACHE_CONTROL", "HEADERS", "FILEPATH_HEADERS", "ONLY_MODIFIED", "URL_STYLE", "GZIP",
            "GZIP_ONLY_EXTS", "FORCE_MIMETYPE", "PREFIX", "OVERRIDE_TESTING",
        )
    },
}  # fmt: skip


def uses_flask_s3(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` holds any Flask-S3 setting (``FLASKS3_*``, or an older ``S3_*`` / ``USE_S3*`` name)."""
    return any(key.startswith("FLASKS3_") or key in _OLD_NAMES for key in config)


def translate_flask_s3(config: Mapping[str, Any], storage: str | None = None) -> dict[str, Any]:
    """The ``FS_STATIC_*`` and target-storage keys that Flask-S3's settings in ``config`` stand for.

    Only keys not already set in ``config`` are returned (settings given in our own names win), and
    ``config`` is left as it is. URLs follow Flask-S3's rules whatever endpoint the uploads go to:
    ``FLASKS3_CDN_DOMAIN``, else the bucket on ``FLASKS3_BUCKET_DOMAIN`` (``s3.amazonaws.com``) in
    ``FLASKS3_URL_STYLE``. ``storage`` is the target storage's name (default: ``FS_STATIC_STORAGE``).
    """
    theirs: dict[str, tuple[str, Any]] = {}  # FLASKS3_ name -> (the name the user wrote, its value)
    for old, new in _OLD_NAMES.items():
        if old in config:
            theirs.setdefault(new, (old, config[old]))
    theirs.update((key, (key, value)) for key, value in config.items() if key.startswith("FLASKS3_"))

    def value(key: str, default: Any = None) -> Any:
        return theirs[key][1] if key in theirs else default

    derived: dict[str, Any] = {}

    def derive(key: str, value: Any) -> None:
        if key not in config:
            derived[key] = value

    for flask_s3, ours in _FLASK_S3.items():
        if flask_s3 in theirs:
            setting = value(flask_s3)
            if flask_s3 == "FLASKS3_GZIP_ONLY_EXTS":
                setting = list(setting) or "*"  # Flask-S3 compresses every file when the list is empty
            derive(ours, setting)
    style, https = value("FLASKS3_URL_STYLE", "host"), bool(value("FLASKS3_USE_HTTPS", True))
    if style not in ("host", "path"):
        written = theirs["FLASKS3_URL_STYLE"][0]
        raise ConfigurationError(f"{written} must be 'host' or 'path', not {style!r}")
    scheme, domain = ("https" if https else "http"), str(value("FLASKS3_BUCKET_DOMAIN", "s3.amazonaws.com")).strip("/")
    cdn, bucket = value("FLASKS3_CDN_DOMAIN"), value("FLASKS3_BUCKET_NAME")
    if cdn:
        derive("FS_STATIC_URL", f"{scheme}://{str(cdn).strip('/')}/")
    elif bucket:
        derive(
            "FS_STATIC_URL", f"{scheme}://{bucket}.{domain}/" if style == "host" else f"{scheme}://{domain}/{bucket}/"
        )
    # without FLASKS3_BUCKET_NAME, the URL is built the same way from the storage's bucket:
    derive("FS_STATIC_BUCKET_DOMAIN", domain)
    derive("FS_STATIC_URL_STYLE", style)
    derive("FS_STATIC_HTTPS", https)
    if value("FLASKS3_USE_CACHE_CONTROL") and value("FLASKS3_CACHE_CONTROL"):
        derive("FS_STATIC_CACHE_CONTROL", value("FLASKS3_CACHE_CONTROL"))
    name = str(storage or config.get("FS_STATIC_STORAGE") or DEFAULTS["FS_STATIC_STORAGE"]).upper()
    for key, setting in (
        ("BUCKET", bucket),
        ("REGION", value("FLASKS3_REGION")),
        ("ENDPOINT", value("FLASKS3_ENDPOINT_URL")),
        ("ACCESS_KEY", config.get("AWS_ACCESS_KEY_ID")),
        ("SECRET_KEY", config.get("AWS_SECRET_ACCESS_KEY")),
    ):
        if setting:
            derive(f"{name}_FS_{key}", setting)
    derive(f"{name}_FS_CREATE_BUCKET", True)  # Flask-S3 creates a missing bucket when it publishes
    return derived


def static_config(
    config: Mapping[str, Any], storage: str, *, flask_s3: bool = False, backend: bool = True
) -> Mapping[str, Any]:
    """What the publisher and its storage ``storage`` read: ``config`` with derived keys on top, unchanged.

    With ``flask_s3`` (or Flask-S3 settings in ``config``) the Flask-S3 settings are translated; with
    ``backend``, the storage's backend defaults to s3 (``<STORAGE>_FS_BACKEND`` chooses another).
    """
    derived = translate_flask_s3(config, storage) if flask_s3 or uses_flask_s3(config) else {}
    if backend and not config.get(f"{storage.upper()}_FS_BACKEND"):
        derived[f"{storage.upper()}_FS_BACKEND"] = "s3"
    return ChainMap(derived, config) if derived else config


@dataclass(frozen=True)
class Settings:
    """The ``FS_STATIC_*`` settings of one app, checked and converted."""

    storage: str = "assets"
    prefix: str = ""
    include_hidden: bool = False
    filter: re.Pattern[str] | None = None
    gzip: bool = False
    gzip_extensions: frozenset[str] | None = None  # None: every file
    headers: Mapping[str, str] = field(default_factory=dict)
    path_headers: tuple[tuple[re.Pattern[str], Mapping[str, str]], ...] = ()
    acl: str | None = None
    cache_bust: str | None = None
    url: str | None = None
    url_style: str | None = None
    bucket_domain: str | None = None
    https: bool = True
    active: bool = True
    debug: bool = False
    testing: bool = True
    workers: int = 32
    only_modified: bool = True
    manifest: str = ".flask-fs-static.json"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Read and check the settings; ConfigurationError names the faulty key."""

        def get(key: str) -> Any:
            value = config.get(f"FS_STATIC_{key}")
            return DEFAULTS[f"FS_STATIC_{key}"] if value is None else value

        headers = dict(get("HEADERS"))
        if get("CACHE_CONTROL") and not any(k.lower() == "cache-control" for k in headers):
            headers["Cache-Control"] = str(get("CACHE_CONTROL"))
        cache_bust = get("CACHE_BUST") or None
        if cache_bust not in (None, "query", "name"):
            raise ConfigurationError(f"FS_STATIC_CACHE_BUST must be None, 'query' or 'name', not {cache_bust!r}")
        url_style = get("URL_STYLE")
        if url_style not in (None, "host", "path"):
            raise ConfigurationError(f"FS_STATIC_URL_STYLE must be 'host' or 'path', not {url_style!r}")
        extensions = get("GZIP_EXTENSIONS")
        try:
            workers = int(get("WORKERS"))
        except (TypeError, ValueError):
            workers = 0
        if workers < 1:
            raise ConfigurationError(f"FS_STATIC_WORKERS must be a number of threads, not {get('WORKERS')!r}")
        return cls(
            storage=str(get("STORAGE")),
            prefix=str(get("PREFIX") or "").strip("/"),
            include_hidden=bool(get("INCLUDE_HIDDEN")),
            filter=_regex("FS_STATIC_FILTER", get("FILTER")),
            gzip=bool(get("GZIP")),
            gzip_extensions=None if extensions == "*" else _extensions(extensions),
            headers=headers,
            path_headers=tuple(
                (_regex("FS_STATIC_PATH_HEADERS", pattern), dict(values))  # type: ignore[misc]
                for pattern, values in dict(get("PATH_HEADERS")).items()
            ),
            acl=get("ACL") or None,
            cache_bust=cache_bust,
            url=get("URL") or None,
            url_style=url_style,
            bucket_domain=get("BUCKET_DOMAIN") or None,
            https=bool(get("HTTPS")),
            active=bool(get("ACTIVE")),
            debug=bool(get("DEBUG")),
            testing=bool(get("TESTING")),
            workers=workers,
            only_modified=bool(get("ONLY_MODIFIED")),
            manifest=str(get("MANIFEST")),
        )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        from dataclasses import replace

        return replace(self, **changes)


def _regex(key: str, pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"{key}: invalid regular expression {pattern!r}: {exc}") from exc


def _extensions(values: Iterable[str] | str) -> frozenset[str]:
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    return frozenset(value.lower().lstrip(".") for value in values)
