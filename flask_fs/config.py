"""Layered settings: each storage reads its keys from the Flask config, most specific first.

For a storage named ``avatars`` on the ``s3`` backend, the value of a key ``KEY`` is the first set of

1. ``AVATARS_FS_KEY``  (this storage),
2. ``FS_S3_KEY``       (every storage on this backend),
3. ``FS_KEY``          (every storage),
4. the backend's default, then the storage default.

``ROOT`` and ``URL`` are bases shared by many storages when they come from levels 2 or 3, so the
storage name is appended to them (``FS_URL = 'https://cdn/'`` serves ``avatars`` at
``https://cdn/avatars/``, keeping every segment of the base, with or without its trailing slash);
set at level 1 they are used as given. ``FS_ROOT`` (default ``<instance_path>/fs``) is the root of
*local* storages only: ``files`` lives in ``<FS_ROOT>/files`` unless ``FILES_FS_ROOT`` says
otherwise, and storages on other backends never see it. ``FS_SERVE``, ``FS_PREFIX``, ``FS_BACKEND``
and ``FS_IMAGES_OPTIMIZE`` configure the extension itself and are not layered.

Every setting is declared once, as a :class:`Setting` (name, type, default, secret, required, doc):
the storage-level ones in :data:`STORAGE_SETTINGS`, the global ones in :data:`GLOBAL_SETTINGS`, each
backend's in its ``settings`` class attribute. :func:`resolve` fills in defaults and converts values
(strings from environment variables included); :func:`unknown_keys` reports misspelt keys; the
documentation's table and ``flask fs storages`` are generated from the same declarations. This module
needs no Flask: ``app_config`` is any mapping.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError
from .files import All, AllExcept

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4

#: Keys that name a shared base below which each storage gets its own folder.
PER_STORAGE_BASES = ("root", "url")
#: Prefixes of global keys that configure other parts of flask_fs (static publishing, jobs), not storages.
_GLOBAL_PREFIXES = ("FS_STATIC_", "FS_JOBS_")
#: Prefixes of keys read by other parts of flask_fs under their own names: never reported as unknown.
RESERVED_PREFIXES = ("FS_STATIC_", "FS_IMAGES_", "FS_JOBS_")


class Size(int):
    """A number of bytes: an int, digits, or a number with a binary unit (``'16MiB'``, ``'1.5 GiB'``)."""


class URL(str):
    """An absolute URL with its scheme (``http://minio:9000``); a missing scheme gets a hint."""


class BaseURL(str):
    """A public base URL: with its scheme (``https://cdn.example.com/media``), a path (``/media``), or
    a host without scheme (``cdn.example.com/media``: links get the request's scheme)."""


class Extensions(list):  # type: ignore[type-arg]
    """Extensions: a list, ``ALL``/``AllExcept(...)``, or a string such as ``'pdf, epub'``."""


class _StorageName:
    """The default of settings that default to the storage's own name (``bucket``, ``container``)."""

    def __repr__(self) -> str:
        return "the storage name"


#: Use as a :class:`Setting` default to mean "the storage's name".
STORAGE_NAME: Any = _StorageName()


@dataclass(frozen=True)
class Setting:
    """One setting, declared once: its lower-case ``name``, ``type``, ``default`` and documentation.

    ``type`` is ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``, :class:`Size`,
    :class:`URL`, :class:`BaseURL`, :class:`Extensions`, or ``None`` (any value, kept as given).
    Values from environment variables arrive as strings and are converted (``'true'``, ``'8'``,
    ``'a, b'``). ``secret`` values are never printed; ``required`` ones must be set (a ``None`` default
    then only means "no default"). ``shown_default`` is how the documentation shows a default that
    the value does not tell (``"the storage name"``).
    """

    name: str
    type: Any = str
    default: Any = None
    secret: bool = False
    required: bool = False
    doc: str = ""
    choices: tuple[Any, ...] = ()
    shown_default: str = ""

    def default_for(self, storage: str) -> Any:
        """The default value for a storage named ``storage`` (a fresh copy of mutable defaults)."""
        if self.default is STORAGE_NAME:
            return storage
        return type(self.default)(self.default) if isinstance(self.default, (dict, list)) else self.default

    def coerce(self, value: Any, written: str) -> Any:
        """``value`` converted to this setting's type; ConfigurationError naming it as ``written``."""
        try:
            converted = value if self.type is None else _PARSERS[self.type](value)
        except (TypeError, ValueError) as exc:
            shown = "'****'" if self.secret else repr(value)
            raise ConfigurationError(f"{written} = {shown}: {exc}") from None
        if self.choices and converted not in self.choices:
            allowed = ", ".join(repr(choice) for choice in self.choices)
            raise ConfigurationError(f"{written} = {converted!r}: must be one of {allowed}")
        return converted


def _parse_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError("not a string")


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("not an integer (a boolean)")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d[\d_]*\s*", value):
        return int(value)
    raise ValueError("not an integer")


def _parse_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError("not a number")


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean: use True/False (or 'true', 'false', 'yes', 'no', '1', '0')")


def _parse_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    raise TypeError("not a list: give a list or a comma-separated string such as 'a, b'")


def _parse_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    raise TypeError("not a mapping: give a dict, or a JSON object string")


_UNITS = {"": 1, "b": 1, "kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB}


def _parse_size(value: Any) -> int:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", value, re.IGNORECASE)
        if match:
            number, unit = match.group(1), match.group(2).lower()
            if unit in _UNITS and (unit not in ("", "b") or "." not in number):
                return int(float(number) * _UNITS[unit])
            if unit in ("k", "kb", "m", "mb", "g", "gb", "t", "tb"):
                binary = f"{number}{unit[0].upper()}iB"
                raise ValueError(f"{unit.upper()} is ambiguous (1000 or 1024?): write {binary!r} or a number of bytes")
        raise ValueError("not a size: give a number of bytes, or one with KiB, MiB or GiB (e.g. '16MiB')")
    size = _parse_int(value)
    if size < 0:
        raise ValueError("a size cannot be negative")
    return size


def _parse_url(value: Any) -> str:
    url = _parse_str(value)
    if not re.match(r"[a-z][a-z0-9+.-]*://[^/]", url, re.IGNORECASE):
        raise ValueError(f"not a URL with its scheme: write 'http://{url}' (or https://)")
    return url


def _parse_base_url(value: Any) -> str:
    url = _parse_str(value).strip()
    if not url or any(char.isspace() for char in url):
        raise ValueError("not a URL: give one with its scheme (https://cdn.example.com/media) or a path (/media)")
    return url  # without a scheme (Flask-FS's 'cdn.example.com/media'), links get the request's


def _parse_extensions(value: Any) -> Any:
    if isinstance(value, (All, AllExcept)):
        return value
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise TypeError("not a list of extensions: give a list, or a string such as 'pdf, epub'")


_PARSERS: dict[Any, Callable[[Any], Any]] = {
    str: _parse_str,
    int: _parse_int,
    float: _parse_float,
    bool: _parse_bool,
    list: _parse_list,
    dict: _parse_dict,
    Size: _parse_size,
    URL: _parse_url,
    BaseURL: _parse_base_url,
    Extensions: _parse_extensions,
}


def format_size(size: int) -> str:
    """A byte count for people: ``8 MiB``, ``1 GiB``, ``500000 bytes (0.48 MiB)``."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes ({size / MiB:.2f} MiB)" if size >= KiB else f"{size} bytes"


#: The settings of every storage, whatever its backend (read by :class:`~flask_fs.Storage` and fields).
STORAGE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "backend",
        str,
        shown_default="``FS_BACKEND``",
        doc="This storage's backend: ``local``, ``s3``, ``swift``, ``gridfs`` or an installed third-party one. "
        "Only this form and ``FS_BACKEND`` are read.",
    ),
    Setting(
        "url",
        BaseURL,
        shown_default="the ``fs`` view",
        doc="Public base URL of the storage (a CDN, a bucket website, a front server), with its scheme, or an "
        "absolute path. From ``FS_URL`` or ``FS_<BACKEND>_URL`` the storage name is appended.",
    ),
    Setting(
        "allow",
        Extensions,
        shown_default="``[]``",
        doc="Extensions accepted on top of the storage's declared ones: a list, or a string such as "
        '``"pdf, epub"`` (handy in environment variables); case and dots do not matter.',
    ),
    Setting(
        "deny",
        Extensions,
        shown_default="``[]``",
        doc="Extensions refused whatever the declaration and ``ALLOW`` say (same forms as ``ALLOW``).",
    ),
    Setting(
        "max_size",
        Size,
        shown_default="no limit",
        doc='Largest accepted upload, in bytes or with a binary unit (``"16MiB"``). A bigger one raises '
        ":class:`~flask_fs.errors.FileTooLarge` as soon as the limit is passed, and nothing is stored.",
    ),
    Setting(
        "serve",
        bool,
        shown_default="``FS_SERVE``",
        doc="Serve this storage's files through the ``fs`` blueprint (overrides ``FS_SERVE`` for it).",
    ),
    Setting(
        "check_content",
        bool,
        shown_default="on when the storage accepts only images",
        doc="Refuse uploads whose bytes contradict their extension (a GIF or an HTML page named ``x.jpg``), "
        "read from their signature: :class:`~flask_fs.errors.ContentMismatch`, and nothing is stored.",
    ),
    Setting(
        "signed_url_expires",
        int,
        3600,
        doc="Default lifetime of :meth:`~flask_fs.Storage.signed_url` URLs, in seconds.",
    ),
    Setting(
        "batch_concurrency",
        int,
        16,
        doc="Most operations a batch (:meth:`~flask_fs.Storage.save_many`, :meth:`~flask_fs.Storage.read_many`) "
        "runs at once, on threads the storage keeps: over a distant link, this many requests are in flight.",
    ),
    Setting(
        "images_max_pixels",
        int,
        shown_default=":data:`~flask_fs.images.DEFAULT_MAX_PIXELS`",
        doc="Most pixels an image field accepts (a field's ``max_pixels=`` wins); larger images raise "
        ":class:`~flask_fs.errors.ImageTooLarge`.",
    ),
    Setting(
        "upload_expires",
        int,
        shown_default="``3600``",
        doc="Lifetime of a direct-upload token (:meth:`~flask_fs.Storage.presign_upload`), in seconds: the "
        "upload and its ``finalize`` must happen within it.",
    ),
    Setting(
        "upload_prefix",
        str,
        shown_default='``".uploads"``',
        doc="Folder of the storage where direct uploads wait until ``finalize`` moves them to their name "
        "(``flask fs clean`` sweeps what is left there).",
    ),
    Setting(
        "upload_secret",
        str,
        secret=True,
        shown_default="the app's ``SECRET_KEY``",
        doc="Key signing direct-upload tokens.",
    ),
)

#: Global settings read by ``init_app`` under these names only (``FS_URL`` is also the last layer of ``url``).
GLOBAL_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "FS_SERVE",
        bool,
        shown_default="``True`` in debug, else ``None``",
        doc="Serve stored files through the ``fs`` blueprint. ``None``: serve the storages without a ``URL`` "
        "of their own, so the URLs :meth:`~flask_fs.Storage.url` gives them work; ``True``: serve every storage; "
        "``False``: serve none (the view answers 404, and ``url()`` still builds its URLs, for a front server). "
        "``<NAME>_FS_SERVE`` decides for one storage.",
    ),
    Setting(
        "FS_PREFIX",
        str,
        doc='URL prefix of the ``fs`` blueprint: with ``"/fs"`` files are at ``/fs/<storage>/<name>``, '
        "without it at ``/<storage>/<name>``. (The S3 ``PREFIX`` setting is another thing.)",
    ),
    Setting(
        "FS_ROOT",
        str,
        shown_default="``<instance_path>/fs``",
        doc="Parent folder of the local storages; storage ``files`` lives in ``<FS_ROOT>/files``.",
    ),
    Setting("FS_URL", BaseURL, doc="Base URL of every storage without its own; the storage name is appended."),
    Setting("FS_BACKEND", str, "local", doc="Backend of every storage that has no ``<NAME>_FS_BACKEND``."),
    Setting(
        "FS_IMAGES_OPTIMIZE",
        bool,
        False,
        doc="Optimise every rendition written by :class:`~flask_fs.mongo.ImageField` (a field's ``optimize=`` wins).",
    ),
    Setting(
        "FS_IMAGES_ENGINE",
        str,
        "auto",
        choices=("auto", "pillow", "vips"),
        doc="Who renders JPEG photos: libvips when ``pyvips`` is installed (``auto``, the ``vips`` extra), "
        "always Pillow, or always libvips. Pillow renders every other image and makes every check.",
    ),
)

#: Global keys that are not layered into storages (they configure the extension itself).
_GLOBAL_ONLY = frozenset(setting.name for setting in GLOBAL_SETTINGS) - {"FS_URL"}


def resolve_globals(app_config: MutableMapping[str, Any]) -> None:
    """Fill in the global settings' defaults and convert the values given (``FS_SERVE = 'false'``)."""
    for setting in GLOBAL_SETTINGS:
        app_config[setting.name] = global_setting(app_config, setting.name)


def global_setting(settings: Mapping[str, Any], name: str) -> Any:
    """The value of global setting ``name`` in ``settings``, converted, or its default."""
    setting = next(setting for setting in GLOBAL_SETTINGS if setting.name == name)
    value = settings.get(name)
    return setting.default if value is None else setting.coerce(value, name)


class Config(dict):
    """One storage's resolved settings: a dict with lower-case keys, also readable as attributes.

    A Config built from an app's settings remembers where each value came from, so errors can name
    a setting as the user wrote it (:meth:`name_of`).
    """

    _origins: dict[str, str] = {}
    _prefixes: tuple[str, ...] = ()

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def name_of(self, key: str) -> str:
        """The setting ``key`` as the user writes it: ``IMAGES_FS_SECRET_KEY`` (or where its value came
        from, e.g. ``FS_S3_SECRET_KEY``); just ``secret_key`` for a backend built from a plain dict."""
        if key in self._origins:
            return self._origins[key]
        return f"{self._prefixes[0]}{key.upper()}" if self._prefixes else key

    def given(self, key: str) -> bool:
        """Whether the user set ``key`` (under any of its names), as opposed to a default filling it."""
        return key in self._origins

    def names_to_set(self, key: str) -> str:
        """Where an unset ``key`` can be given: ``FILES_FS_ROOT or FS_LOCAL_ROOT``, or just ``root``."""
        return " or ".join(prefix + key.upper() for prefix in self._prefixes) or key

    def masked(self, secrets: Collection[str] = ()) -> dict[str, Any]:
        """A copy fit for logs and listings: secret values and the passwords in URLs are hidden.

        ``secrets`` names the declared secret settings; keys that merely look secret are masked too.
        """
        return {k: "****" if v and (k in secrets or is_secret(k)) else _mask_url(v) for k, v in self.items()}

    def _with_sources(self, origins: dict[str, str], prefixes: tuple[str, ...]) -> Config:
        object.__setattr__(self, "_origins", origins)
        object.__setattr__(self, "_prefixes", prefixes)
        return self


def _mask_url(value: Any) -> Any:
    """Hide the password of a URL with credentials (``mongodb://user:****@host/db``)."""
    if isinstance(value, str):
        return re.sub(r"^([a-z][a-z0-9+.-]*://[^/:@]*:)[^/@]*@", r"\1****@", value, flags=re.IGNORECASE)
    return value


def resolve(settings: Iterable[Setting], storage: str, config: Mapping[str, Any], label: str) -> Config:
    """``config`` with the declared ``settings`` converted and their defaults filled in.

    Undeclared keys are kept as they are. ConfigurationError names a bad value or a missing required
    setting as the user wrote it (when ``config`` came from :func:`storage_settings`).
    """
    source = config if isinstance(config, Config) else Config()
    resolved = Config(config)._with_sources(dict(source._origins), source._prefixes)
    missing = []
    for setting in settings:
        value = resolved.get(setting.name)
        if value is None or (value == "" and setting.type not in (str, None)):
            default = setting.default_for(storage)
            if default is not None:
                resolved[setting.name] = default
            else:
                resolved.pop(setting.name, None)
                if setting.required:
                    missing.append(setting.name)
        else:
            value = setting.coerce(value, f"storage {storage!r}: {resolved.name_of(setting.name)}")
            if setting.required and value == "":
                missing.append(setting.name)
            resolved[setting.name] = value
    if missing:
        keys = ", ".join(resolved.names_to_set(key) for key in missing)
        raise ConfigurationError(f"storage {storage!r} ({label}) needs {keys}")
    return resolved


def unknown_keys(
    app_config: Mapping[str, Any],
    name: str,
    backend: str,
    backends: Iterable[str],
    known: Collection[str],
    known_anywhere: Callable[[], Collection[str] | None],
) -> None:
    """Raise ConfigurationError for a key of storage ``name`` that no setting reads, with a "did you mean".

    Checked: ``<NAME>_FS_*`` keys and ``FS_<BACKEND>_*`` keys of its backend against ``known`` (this
    storage's settings), and plain ``FS_*`` keys. A key that another installed backend reads is not
    unknown: ``known_anywhere()`` lists every setting of every installed backend (called only when
    needed), or is None when some backend does not declare its settings, which disables the check.
    """
    own, mine = f"{name.upper()}_FS_", f"FS_{backend.upper()}_"
    others = tuple(f"FS_{other.upper()}_" for other in backends)
    everything: Collection[str] | None = None
    for key, value in app_config.items():
        if not isinstance(key, str) or value is None:  # None is unset, at any level
            continue
        if key.startswith(own):
            prefix = own
        elif key.startswith(mine):
            prefix = mine
        elif key.startswith("FS_") and key not in _GLOBAL_ONLY and not key.startswith(RESERVED_PREFIXES + others):
            prefix = "FS_"
        else:
            continue
        setting = key[len(prefix) :].lower()
        if setting in known:
            continue
        if prefix != mine:  # a key of another backend, for the day this storage moves there
            everything = known_anywhere() if everything is None else everything
            if everything is None or setting in everything:
                continue
        candidates = {prefix + known_key.upper(): known_key for known_key in known}
        if prefix == "FS_":
            candidates.update({name: name[3:].lower() for name in _GLOBAL_ONLY})
        by_setting = {setting_name: key_name for key_name, setting_name in sorted(candidates.items())}
        close = difflib.get_close_matches(setting, by_setting, n=1, cutoff=0.75)
        hint = f"; did you mean {by_setting[close[0]]}?" if close else ""
        raise ConfigurationError(f"storage {name!r} ({backend} backend): unknown setting {key}{hint}")


def is_secret(key: str) -> bool:
    """Whether a setting holds a credential (its value must never be printed)."""
    return any(word in key.lower() for word in ("secret", "key", "password", "token"))


def join_url(base: str, *parts: str) -> str:
    """Append path parts to a base URL, keeping its last segment (unlike ``urljoin``)."""
    url = base.rstrip("/")
    for part in parts:
        url += "/" + part.strip("/")
    return url + "/"


def storage_settings(
    app_config: Mapping[str, Any],
    name: str,
    backend: str,
    backends: Iterable[str],
    defaults: Mapping[str, Any] = (),  # type: ignore[assignment]
) -> Config:
    """Resolve the settings of storage ``name`` on ``backend`` from a Flask config mapping.

    The result remembers the key each value came from (see :meth:`Config.name_of`).
    """
    own = f"{name.upper()}_FS_"
    per_backend = f"FS_{backend.upper()}_"
    other_backends = tuple(f"FS_{b.upper()}_" for b in backends)
    config = Config(defaults)
    origins: dict[str, str] = {}
    for key, value in app_config.items():
        if (
            key.startswith("FS_")
            and key not in _GLOBAL_ONLY
            and not key.startswith(_GLOBAL_PREFIXES)
            and not key.startswith(other_backends)
            and value is not None
        ):
            config[key[3:].lower()], origins[key[3:].lower()] = value, key
    for key, value in app_config.items():
        if key.startswith(per_backend) and value is not None:
            setting = key[len(per_backend) :].lower()
            config[setting], origins[setting] = value, key
    for key in PER_STORAGE_BASES:
        if key in origins and config[key]:
            base = config[key]
            config[key] = join_url(base, name) if key == "url" else os.path.join(base, name)
    for key, value in app_config.items():
        if key.startswith(own) and value is not None:
            setting = key[len(own) :].lower()
            config[setting], origins[setting] = value, key
    config["backend"] = backend
    origins["backend"] = own + "BACKEND" if app_config.get(own + "BACKEND") else "FS_BACKEND"
    return config._with_sources(origins, (own, per_backend))
