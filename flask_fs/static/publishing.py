"""Publishing: copy the app's static files into a storage, uploading only what changed.

The target storage keeps a manifest (``FS_STATIC_MANIFEST``, a JSON file under the prefix) with,
for every published file, the SHA-256 of its source, the headers it was stored with, and the
size and digests of the stored bytes. A publish compares the local files with it (a file whose
inode, size, mtime and ctime are those recorded is not read again) and uploads the differences in
parallel, each file streamed from disk (gzip copies are spooled: in memory up to a few MiB, then
on disk). ``verify`` also compares the manifest with the storage's listing (sizes and checksums),
for files changed or deleted there behind its back.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import mimetypes
import os
import posixpath
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import IO, Any

from flask import Flask

from .. import names
from ..backends import CHUNK_SIZE, SPOOL_SIZE, copy_stream
from ..errors import FileNotFound, FSError
from ..storage import Storage
from .settings import Settings

logger = logging.getLogger("flask_fs.static")

MANIFEST_VERSION = 1
#: Length of the content hash in cache-busting names and query strings (hex digits).
HASH_LENGTH = 12

# Web types whose Content-Type must not depend on the host's /etc/mime.types.
_WEB_TYPES = {
    "css": "text/css", "js": "text/javascript", "mjs": "text/javascript", "json": "application/json",
    "map": "application/json", "svg": "image/svg+xml", "woff": "font/woff", "woff2": "font/woff2",
    "wasm": "application/wasm", "webmanifest": "application/manifest+json", "html": "text/html",
    "txt": "text/plain", "ico": "image/vnd.microsoft.icon", "webp": "image/webp", "avif": "image/avif",
}  # fmt: skip

Progress = Callable[[str, str], None]
_MD5 = re.compile(r"[0-9a-f]{32}")


class PublishError(FSError):
    """Some files could not be published; ``result`` tells which (with their errors) and what was done."""

    def __init__(self, message: str, result: PublishResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Asset:
    """A local static file: its ``path`` on disk and the ``name`` it is published under."""

    path: str
    name: str
    endpoint: str  # 'static' or '<blueprint>.static'
    filename: str  # its path in the static folder, as given to url_for


@dataclass(frozen=True)
class StaticRoot:
    """A static folder and the URL path it is served under (``'static/'``, ``'admin/static/'``)."""

    endpoint: str
    folder: str
    url_path: str


@dataclass
class Upload:
    """One file to store: which asset, under which name, with which headers, and why."""

    asset: Asset
    name: str
    sha256: str
    headers: dict[str, str]
    fingerprint: str
    gzip: bool
    reason: str
    source: list[int]  # stat of the local file when it was hashed (see _source_stat)


class Target:
    """The storage a publish writes to, on one app, usable from any thread.

    A :class:`~flask_fs.storage.Storage` finds its settings and backend through the current Flask
    app, which worker threads do not have: each call here runs inside an app context of ``app``.
    This is the one place publishing deals with Flask's contexts.
    """

    def __init__(self, app: Flask, storage: Storage) -> None:
        self.app, self.storage, self.name = app, storage, storage.name

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``storage.<method>(*args, **kwargs)``, in an app context (results are taken inside it)."""
        with self.app.app_context():
            result = getattr(self.storage, method)(*args, **kwargs)
            return list(result) if isinstance(result, Iterator) else result

    @property
    def backend(self) -> Any:
        """The storage's backend on the app."""
        with self.app.app_context():
            return self.storage.backend


@dataclass
class Plan:
    """What a publish would do: compute it with :func:`plan`, carry it out with :func:`apply`."""

    target: Target
    settings: Settings
    manifest_name: str
    manifest: dict[str, dict[str, Any]]
    uploads: list[Upload] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: name -> manifest entry of every file the storage should hold after the publish.
    wanted: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class PublishResult:
    """What a publish did (or, with ``dry_run``, would do)."""

    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, FSError] = field(default_factory=dict)
    bytes_uploaded: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    reasons: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for people: counts, size and time."""
        verb = "would upload" if self.dry_run else "uploaded"
        text = f"{verb} {len(self.uploaded)}, unchanged {len(self.unchanged)}, "
        text += f"{'would delete' if self.dry_run else 'deleted'} {len(self.deleted)}"
        if self.failed:
            text += f", FAILED {len(self.failed)}"
        if not self.dry_run:
            text += f" ({_human(self.bytes_uploaded)} in {self.seconds:.2f}s)"
        return text


# -- what to publish --------------------------------------------------------------------------------


def static_roots(app: Flask) -> list[StaticRoot]:
    """The app's static folder and every registered blueprint's, with their URL paths, app first.

    URL paths come from the app's URL map, so blueprint ``url_prefix`` and nesting are honoured.
    """
    roots = []
    for rule in app.url_map.iter_rules():
        endpoint = rule.endpoint
        if endpoint != "static" and not endpoint.endswith(".static"):
            continue
        folder = app.static_folder if endpoint == "static" else _blueprint_folder(app, endpoint[: -len(".static")])
        head, _, tail = rule.rule.rpartition("<path:filename>")
        if not folder or tail or "<" in head or not os.path.isdir(folder):
            continue
        roots.append(StaticRoot(endpoint, folder, head.lstrip("/")))
    roots.sort(key=lambda root: root.endpoint != "static")
    return roots


def _blueprint_folder(app: Flask, name: str) -> str | None:
    blueprint = app.blueprints.get(name)
    return blueprint.static_folder if blueprint is not None else None


def collect(app: Flask, settings: Settings) -> list[Asset]:
    """Every file to publish, in a stable order; the first of two files with one URL wins (as in Flask)."""
    assets: dict[str, Asset] = {}
    for root in static_roots(app):
        for path, relative in _walk(root.folder, settings.include_hidden):
            if settings.filter is not None and not settings.filter.search(relative):
                continue
            name = f"{settings.prefix}/{root.url_path}{relative}" if settings.prefix else root.url_path + relative
            if name in assets:
                logger.warning("%s is hidden by %s (same URL), not published", path, assets[name].path)
                continue
            assets[name] = Asset(path, name, root.endpoint, relative)
    return list(assets.values())


def _walk(folder: str, include_hidden: bool) -> Iterator[tuple[str, str]]:
    """Yield (path, '/'-separated relative path) of the files below ``folder``, following links once."""
    seen: set[str] = set()
    for current, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:  # a link loop
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if include_hidden or not d.startswith("."))
        relative = os.path.relpath(current, folder)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        for name in sorted(files):
            path = os.path.join(current, name)
            if (include_hidden or not name.startswith(".")) and os.path.isfile(path):
                yield path, prefix + name


def content_type(name: str) -> str:
    """The Content-Type of a published file, the same on every host."""
    ext = name.rpartition(".")[2].lower() if "." in posixpath.basename(name) else ""
    return _WEB_TYPES.get(ext) or mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def hashed_name(name: str, digest: str) -> str:
    """``css/app.css`` -> ``css/app.<hash>.css``: a name that changes with the content."""
    folder, base = posixpath.split(name)
    stem, dot, ext = base.rpartition(".")
    short = digest[:HASH_LENGTH]
    base = f"{stem}.{short}.{ext}" if dot and stem else f"{base}.{short}"
    return posixpath.join(folder, base) if folder else base


def file_sha256(path: str) -> str:
    """The SHA-256 of a local file, hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def headers_for(asset: Asset, settings: Settings, compress: bool) -> dict[str, str]:
    """The headers stored with a file: Content-Type, then FS_STATIC_HEADERS, matching PATH_HEADERS,
    Content-Encoding for gzip copies and the ACL (later ones win, names compared without case)."""
    merged: dict[str, tuple[str, str]] = {"content-type": ("Content-Type", content_type(asset.name))}
    url_path = asset.name[len(settings.prefix) + 1 :] if settings.prefix else asset.name
    layers: list[Any] = [settings.headers]
    layers += [headers for pattern, headers in settings.path_headers if pattern.search(url_path)]
    if compress:
        layers.append({"Content-Encoding": "gzip"})
    if settings.acl:
        layers.append({"x-amz-acl": settings.acl})
    for layer in layers:
        for key, value in layer.items():
            merged[key.lower()] = (key, str(value))
    return dict(merged.values())


def _fingerprint(headers: dict[str, str]) -> str:
    canonical = json.dumps(sorted((k.lower(), v) for k, v in headers.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _should_gzip(name: str, settings: Settings) -> bool:
    if not settings.gzip:
        return False
    if settings.gzip_extensions is None:
        return True
    return posixpath.basename(name).rpartition(".")[2].lower() in settings.gzip_extensions


# -- planning ---------------------------------------------------------------------------------------


def manifest_name(settings: Settings) -> str:
    """Where the manifest lives in the target storage."""
    return names.join(settings.prefix or None, settings.manifest)


def read_manifest(target: Target, name: str) -> dict[str, dict[str, Any]]:
    """The published files recorded by the last publish; empty if there is none or it is unreadable."""
    try:
        data = json.loads(target.call("read", name))
    except FileNotFound:
        return {}
    except ValueError:
        logger.warning("manifest %s is not valid JSON: every file will be uploaded again", name)
        return {}
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def plan(
    target: Target,
    settings: Settings,
    *,
    delete: bool = False,
    verify: bool = False,
    force: bool = False,
) -> Plan:
    """Work out which files to upload and delete (reads the storage, never writes to it)."""
    assets = collect(target.app, settings)
    backend = target.backend
    keeps_headers = bool(getattr(backend, "keeps_headers", False))
    if settings.gzip and not keeps_headers:
        logger.warning("storage %r cannot store Content-Encoding: files are published uncompressed", target.name)
    mname = manifest_name(settings)
    manifest = read_manifest(target, mname)
    sources, digests = _hash_sources(assets, manifest, settings.workers)
    result = Plan(target, settings, mname, manifest)
    skipped: dict[str, Upload] = {}
    for asset, source, digest in zip(assets, sources, digests, strict=True):
        compress = keeps_headers and _should_gzip(asset.name, settings)
        headers = headers_for(asset, settings, compress)
        fingerprint = _fingerprint(headers)
        targets = [asset.name]
        if settings.cache_bust == "name":
            targets.append(hashed_name(asset.name, digest))
        for name in targets:
            old = manifest.get(name) or {}
            upload = Upload(asset, name, digest, headers if keeps_headers else {}, fingerprint, compress, "", source)
            if force or not settings.only_modified:
                upload.reason = "forced"
            elif not old:
                upload.reason = "new"
            elif old.get("sha256") != digest:
                upload.reason = "changed"
            elif old.get("headers") != fingerprint:
                upload.reason = "headers changed"
            if upload.reason:
                result.uploads.append(upload)
            else:
                skipped[name] = upload
                result.wanted[name] = {**old, "source": source}
    if verify:
        remote_meta = dict(backend.list_metadata())
        for name, reason in _verify(result, remote_meta).items():
            skipped[name].reason = reason
            result.uploads.append(skipped.pop(name))
            del result.wanted[name]
        remote = set(remote_meta)
    if delete:
        result.deletes = _deletions(target.app, result, remote if verify else set(target.call("list_files")))
    result.unchanged = list(skipped)
    return result


def _source_stat(path: str) -> list[int]:
    """What tells that a local file is untouched: inode, size, mtime and ctime (which no tool can set back)."""
    info = os.stat(path)
    return [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def _hash_sources(
    assets: list[Asset], manifest: dict[str, dict[str, Any]], workers: int
) -> tuple[list[list[int]], list[str]]:
    """The stat and SHA-256 of each asset. A file whose stat matches the one the manifest recorded keeps
    its recorded hash (like git's index); the others are hashed, in a few threads."""
    sources = [_source_stat(asset.path) for asset in assets]
    digests: list[str] = [""] * len(assets)
    todo = []
    for i, (asset, source) in enumerate(zip(assets, sources, strict=True)):
        old = manifest.get(asset.name)
        if old and old.get("source") == source and old.get("sha256"):
            digests[i] = old["sha256"]
        else:
            todo.append(i)
    threads = min(workers, os.cpu_count() or 1, max(len(todo) // 16, 1))
    if threads == 1:
        for i in todo:
            digests[i] = file_sha256(assets[i].path)
        return sources, digests

    def hash_slice(part: list[int]) -> None:
        for i in part:
            digests[i] = file_sha256(assets[i].path)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(hash_slice, [todo[k::threads] for k in range(threads)]))
    return sources, digests


def _verify(result: Plan, remote: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The unchanged files that are missing or different in the storage, with the reason."""
    stale = {}
    for name, entry in result.wanted.items():
        if name not in remote:
            stale[name] = "missing from the storage"
        elif not _same_content(entry, remote[name]):
            stale[name] = "changed in the storage"
    return stale


def _same_content(entry: dict[str, Any], meta: dict[str, Any]) -> bool:
    """Whether stored metadata matches what the manifest says was uploaded (checksum when comparable)."""
    if entry.get("size") is not None and meta.get("size") is not None and int(meta["size"]) != entry["size"]:
        return False
    algo, _, value = str(meta.get("checksum") or "").partition(":")
    if algo == "etag" and _MD5.fullmatch(value):  # a plain upload's ETag is its MD5
        algo = "md5"
    expected = entry.get("stored", {}).get(algo)
    return expected is None or expected == value


def _deletions(app: Flask, result: Plan, remote: set[str]) -> list[str]:
    """Stored files under the published URL paths (or recorded in the manifest) that no longer exist locally."""
    prefix = result.settings.prefix
    roots = tuple(posixpath.join(prefix, root.url_path) if prefix else root.url_path for root in static_roots(app))
    roots = tuple(root for root in roots if root)  # a root at the top of the storage: manifest only
    keep = set(result.wanted) | {upload.name for upload in result.uploads} | {result.manifest_name}
    candidates = {name for name in remote if name.startswith(roots)} | (set(result.manifest) & remote)
    return sorted(candidates - keep)


# -- carrying it out --------------------------------------------------------------------------------


def apply(planned: Plan, progress: Progress | None = None) -> PublishResult:
    """Upload and delete what ``planned`` says, then record the manifest; PublishError if a file failed.

    ``progress(action, name)`` is called in this thread after each file (``'upload'``, ``'delete'``,
    ``'failed'``).
    """
    start = time.perf_counter()
    result = PublishResult(unchanged=list(planned.unchanged), reasons={u.name: u.reason for u in planned.uploads})
    wanted = dict(planned.wanted)
    target = planned.target
    with ThreadPoolExecutor(planned.settings.workers) as pool:
        futures: dict[Future, tuple[str, Any]] = {}
        for upload in planned.uploads:
            futures[pool.submit(_upload, target, upload)] = ("upload", upload)
        for name in planned.deletes:
            futures[pool.submit(target.call, "delete", name)] = ("delete", name)
        for future in as_completed(futures):
            action, item = futures[future]
            name = item.name if action == "upload" else item
            try:
                value = future.result()
            except Exception as exc:  # reported per file; the others go on
                if not isinstance(exc, FSError):
                    cause, exc = exc, FSError(f"{action} of {name!r} failed: {exc}")
                    exc.__cause__ = cause
                result.failed[name] = exc
                if action == "upload":
                    wanted.pop(name, None)
                _notify(progress, "failed", name)
                continue
            if action == "upload":
                wanted[name] = value
                result.uploaded.append(name)
                result.bytes_uploaded += value["size"]
            else:
                result.deleted.append(name)
            _notify(progress, action, name)
    result.uploaded.sort()
    result.deleted.sort()
    _write_manifest(planned, wanted)
    result.seconds = time.perf_counter() - start
    if result.failed:
        name, error = next(iter(result.failed.items()))
        raise PublishError(f"{len(result.failed)} file(s) could not be published; {name!r}: {error}", result)
    return result


def dry_run(planned: Plan) -> PublishResult:
    """The result a publish of ``planned`` would have, without touching anything."""
    return PublishResult(
        uploaded=sorted(u.name for u in planned.uploads),
        deleted=list(planned.deletes),
        unchanged=list(planned.unchanged),
        dry_run=True,
        reasons={u.name: u.reason for u in planned.uploads},
    )


def _notify(progress: Progress | None, action: str, name: str) -> None:
    if progress is not None:
        progress(action, name)


def _upload(target: Target, upload: Upload) -> dict[str, Any]:
    """Store one file (streamed, or gzipped into a spool) and return its manifest entry."""
    try:
        source = open(upload.asset.path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise FSError(f"cannot read {upload.asset.path}: {exc}") from exc
    with source:
        stream = _gzipped(source) if upload.gzip else source
        with stream:
            md5, sha256 = hashlib.md5(), hashlib.sha256()
            size = 0
            while chunk := stream.read(CHUNK_SIZE):
                size += len(chunk)
                md5.update(chunk)
                if upload.gzip:
                    sha256.update(chunk)
            stream.seek(0)
            extra = {"headers": upload.headers} if upload.headers else {}
            target.call("save", stream, upload.name, prefix="", overwrite=True, **extra)
    return {
        "sha256": upload.sha256,
        "source": upload.source,
        "headers": upload.fingerprint,
        "size": size,
        "stored": {"md5": md5.hexdigest(), "sha256": sha256.hexdigest() if upload.gzip else upload.sha256},
    }


def _gzipped(source: IO[bytes]) -> IO[bytes]:
    """A reproducible gzip copy of ``source`` (no name, no time stamp), in a spooled temporary file."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE)  # noqa: SIM115 - the caller closes it
    with gzip.GzipFile(filename="", mode="wb", fileobj=spool, mtime=0) as compressed:
        copy_stream(source, compressed)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _write_manifest(planned: Plan, wanted: dict[str, dict[str, Any]]) -> None:
    """Record what the storage now holds, unless nothing changed."""
    if wanted == planned.manifest:
        return
    data = json.dumps({"version": MANIFEST_VERSION, "files": wanted}, sort_keys=True, separators=(",", ":"))
    planned.target.call("write", planned.manifest_name, data, overwrite=True)


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"
