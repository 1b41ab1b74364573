"""The publisher's settings: ``FS_STATIC_*`` keys, and the Flask-S3 names they replace.

Every ``FS_STATIC_*`` key has a default in :data:`DEFAULTS`. Flask-S3's settings (``FLASKS3_*``, and
the older ``S3_*`` / ``USE_S3*`` names) are translated by :func:`translate_flask_s3` into these keys
and into the settings of the target storage, so an app keeps its Flask-S3 configuration as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
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
    "FS_STATIC_WORKERS": 8,  # parallel transfers
    "FS_STATIC_ONLY_MODIFIED": True,  # skip files whose content and headers did not change
    "FS_STATIC_MANIFEST": ".flask-fs-static.json",  # name, under the prefix, of the hashes manifest
}

# Flask-S3 0.3 setting -> our setting (values are converted by _flask_s3_value where needed).
_FLASK_S3 = {
    "FLASKS3_PREFIX": "FS_STATIC_PREFIX",
    "FLASKS3_HEADERS": "FS_STATIC_HEADERS",
    "FLASKS3_FILEPATH_HEADERS": "FS_STATIC_PATH_HEADERS",
    "FLASKS3_GZIP": "FS_STATIC_GZIP",
    "FLASKS3_GZIP_ONLY_EXTS": "FS_STATIC_GZIP_EXTENSIONS",
    "FLASKS3_URL_STYLE": "FS_STATIC_URL_STYLE",
    "FLASKS3_BUCKET_DOMAIN": "FS_STATIC_BUCKET_DOMAIN",
    "FLASKS3_USE_HTTPS": "FS_STATIC_HTTPS",
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


def translate_flask_s3(config: MutableMapping[str, Any]) -> None:
    """Fill unset ``FS_STATIC_*`` and target-storage keys of ``config`` from Flask-S3 settings.

    Settings already given in our own names win. Differences from Flask-S3: files get no ACL unless
    ``FS_STATIC_ACL`` says so, and ``FLASKS3_FORCE_MIMETYPE`` is moot (Content-Type is always set).
    """
    for old, new in _OLD_NAMES.items():
        if old in config and new not in config:
            config[new] = config[old]
    for theirs, ours in _FLASK_S3.items():
        if theirs in config and ours not in config:
            value = config[theirs]
            if theirs == "FLASKS3_GZIP_ONLY_EXTS":
                value = list(value) or "*"  # Flask-S3 compresses every file when the list is empty
            config[ours] = value
    if config.get("FLASKS3_CDN_DOMAIN") and "FS_STATIC_URL" not in config:
        scheme = "https" if config.get("FLASKS3_USE_HTTPS", True) else "http"
        config["FS_STATIC_URL"] = f"{scheme}://{config['FLASKS3_CDN_DOMAIN'].strip('/')}/"
    if config.get("FLASKS3_USE_CACHE_CONTROL") and config.get("FLASKS3_CACHE_CONTROL"):
        config.setdefault("FS_STATIC_CACHE_CONTROL", config["FLASKS3_CACHE_CONTROL"])
    storage = str(config.get("FS_STATIC_STORAGE") or DEFAULTS["FS_STATIC_STORAGE"]).upper()
    for theirs, key in (
        ("FLASKS3_BUCKET_NAME", "BUCKET"),
        ("FLASKS3_REGION", "REGION"),
        ("AWS_ACCESS_KEY_ID", "ACCESS_KEY"),
        ("AWS_SECRET_ACCESS_KEY", "SECRET_KEY"),
    ):
        if config.get(theirs) and f"{storage}_FS_{key}" not in config:
            config[f"{storage}_FS_{key}"] = config[theirs]


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
    workers: int = 8
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
