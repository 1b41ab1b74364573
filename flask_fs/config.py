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
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

#: Keys that name a shared base below which each storage gets its own folder.
PER_STORAGE_BASES = ("root", "url")

#: Global settings read by ``init_app`` (not per storage).
GLOBAL_DEFAULTS: dict[str, Any] = {
    "FS_SERVE": None,  # None: True in debug, else serve the storages without a URL of their own
    "FS_ROOT": None,  # None: <instance_path>/fs
    "FS_PREFIX": None,
    "FS_URL": None,
    "FS_BACKEND": "local",
    "FS_IMAGES_OPTIMIZE": False,
}


#: Global keys that are not layered into storages (they configure the extension itself).
_GLOBAL_ONLY = frozenset({"FS_SERVE", "FS_PREFIX", "FS_BACKEND", "FS_IMAGES_OPTIMIZE", "FS_ROOT"})
#: Prefixes of global keys that configure other parts of flask_fs (static publishing), not storages.
_GLOBAL_PREFIXES = ("FS_STATIC_",)


class Config(dict):
    """One storage's resolved settings: a dict with lower-case keys, also readable as attributes."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def masked(self) -> dict[str, Any]:
        """A copy fit for logs and listings: values of secret-looking keys are hidden."""
        return {k: "****" if v and is_secret(k) else v for k, v in self.items()}


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
    """Resolve the settings of storage ``name`` on ``backend`` from a Flask config mapping."""
    own = f"{name.upper()}_FS_"
    per_backend = f"FS_{backend.upper()}_"
    other_backends = tuple(f"FS_{b.upper()}_" for b in backends)
    config = Config(defaults)
    shared: dict[str, Any] = {}
    for key, value in app_config.items():
        if (
            key.startswith("FS_")
            and key not in _GLOBAL_ONLY
            and not key.startswith(_GLOBAL_PREFIXES)
            and not key.startswith(other_backends)
            and value is not None
        ):
            shared[key[3:].lower()] = value
    for key, value in app_config.items():
        if key.startswith(per_backend) and value is not None:
            shared[key[len(per_backend) :].lower()] = value
    for key in PER_STORAGE_BASES:
        if shared.get(key):
            base = shared[key]
            shared[key] = join_url(base, name) if key == "url" else os.path.join(base, name)
    config.update(shared)
    for key, value in app_config.items():
        if key.startswith(own) and value is not None:
            config[key[len(own) :].lower()] = value
    config["backend"] = backend
    return config
