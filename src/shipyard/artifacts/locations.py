"""Opening an ``ArtifactStore`` from its configured location (``SHIPYARD_ARTIFACTS``).

A location is a local directory (a path or ``file://``), or an object-store URL: ``s3://``
(the ``s3`` extra), ``gs://`` / ``gcs://`` (the ``gcs`` extra), or ``memory://`` (fsspec's
in-process store, for tests). The location comes from configuration, never from a client.
Credentials and endpoints come from the client library's own configuration (for an
S3-compatible server such as MinIO, ``AWS_ENDPOINT_URL``). Optional dependencies are
imported here, when a store is opened, not when Shipyard is.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from shipyard.artifacts.local import LocalBackend
from shipyard.artifacts.paths import resolve_inside
from shipyard.artifacts.remote import FsspecBackend
from shipyard.artifacts.store import ArtifactStore
from shipyard.errors import InvalidArgument, MissingDependency

# protocol -> (module, pip package, shipyard extra)
_OBJECT_STORES: dict[str, tuple[str, str, str]] = {
    "s3": ("s3fs", "s3fs", "s3"),
    "gs": ("gcsfs", "gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcsfs", "gcs"),
}
_CHOICES = "a local directory, file://PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or memory://NAME"

_opened: dict[str, ArtifactStore] = {}
_opened_lock = threading.Lock()


def open_artifact_store(location: str, *, cached: bool = True) -> ArtifactStore:
    """Open the artifact store at ``location``; one store per location per process.

    A local root is created with mode 0700 if missing. Raises ``MissingDependency`` naming
    the extra to install for an object store whose client library is absent, and
    ``InvalidArgument(field="location")`` for a location of an unsupported kind.
    """
    key = _cache_key(location)
    with _opened_lock:
        if cached and key in _opened:
            return _opened[key]
        store = ArtifactStore(_backend(location))
        if cached:
            _opened[key] = store
        return store


def open_backend(location: str) -> LocalBackend | FsspecBackend:
    """The backend of the artifact store at ``location`` (its folder or bucket), for files
    kept beside the blobs under keys of their own (the serving request log). The same
    errors as ``open_artifact_store``."""
    return _backend(location)


def _cache_key(location: str) -> str:
    if "://" in location and not location.startswith("file://"):
        return location.rstrip("/")
    # A relative path means different directories as the working directory changes.
    return str(_local_path(location))


def _local_path(location: str) -> Path:
    path = location.removeprefix("file://") if location.startswith("file://") else location
    if not path:
        raise InvalidArgument(f"the artifact location is empty: use {_CHOICES}", field="location")
    return Path(path).expanduser().absolute()


def _backend(location: str) -> LocalBackend | FsspecBackend:
    if "://" not in location or location.startswith("file://"):
        return LocalBackend(_local_path(location))
    protocol, _, rest = location.partition("://")
    if protocol == "memory":
        return _fsspec_backend(_memory_fs(), f"/{_checked_root(rest, location)}", location)
    if protocol not in _OBJECT_STORES:
        raise InvalidArgument(
            f"unsupported artifact location {protocol + '://'!r}: use {_CHOICES}",
            field="location",
        )
    module, package, extra = _OBJECT_STORES[protocol]
    try:
        __import__(module)
    except ImportError:
        raise MissingDependency(package, extra) from None
    import fsspec

    # Listings are not cached: other servers and workers write to the same bucket, and a
    # stale listing would answer "not stored" for a blob that is.
    fs = fsspec.filesystem(protocol, use_listings_cache=False)
    return _fsspec_backend(fs, _checked_root(rest, location), location)


def _memory_fs() -> Any:
    import fsspec

    return fsspec.filesystem("memory")


def _fsspec_backend(fs: Any, root: str, location: str) -> FsspecBackend:
    return FsspecBackend(fs, root, location.rstrip("/"))


def _checked_root(rest: str, location: str) -> str:
    """``bucket/prefix`` from a URL, held to the same rules as every key below it."""
    root = rest.strip("/")
    if not root:
        raise InvalidArgument(
            f"artifact location {location!r} names no bucket: use {_CHOICES}", field="location"
        )
    # An empty base: the whole "bucket/prefix" is checked as one relative path, so a root
    # such as "bucket/../other" or "bucket/*" is refused here rather than every key later.
    resolve_inside("", root, field="location")
    return root
