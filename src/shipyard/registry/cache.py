"""The one model cache: ``$SHIPYARD_HOME/cache/models/<tree digest>``, one directory per
stored tree, shared by local mode, remote mode and (later) serving replicas.

Only the fetch differs (the artifact store, or a download from a server). Whatever wrote an
entry, it is trusted only if its files hash to the version's tree digest, checked on every
load: a damaged or edited entry is removed and fetched again, and a fresh copy that does not
match is ``DataCorruption``. The digests computed by that check are handed to the loader, so
each file is hashed once per load.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.artifacts.info import BlobInfo
from shipyard.artifacts.paths import is_digest
from shipyard.artifacts.trees import digest_directory
from shipyard.errors import DataCorruption, InvalidArgument
from shipyard.registry.models import ModelVersion

if TYPE_CHECKING:
    from shipyard.registry import flavors
    from shipyard.registry.loaded import LoadedModel

# Writes the files of a version's tree into a new directory ``target`` (which must not
# exist yet). Need not fsync: an entry is checked against the tree digest on every load.
Fetch = Callable[[ModelVersion, Path], None]


def cache_root(home: Path) -> Path:
    return Path(home) / "cache" / "models"


def load_cached(version: ModelVersion, root: Path, fetch: Fetch,
                options: flavors.LoadOptions) -> LoadedModel:
    """Load ``version`` from the cache under ``root``, fetching it first if need be."""
    from shipyard.registry.flavors._manifest import MANIFEST_NAME, FileEntry
    from shipyard.registry.loaded import load_directory

    path, files = cached_tree(version, root, fetch)
    stored = {name: FileEntry(blob.digest, blob.size)
              for name, blob in files.items() if name != MANIFEST_NAME}
    return load_directory(version, path, options, stored)


def cached_tree(version: ModelVersion, root: Path,
                fetch: Fetch) -> tuple[Path, Mapping[str, BlobInfo]]:
    """The checked cache directory of ``version`` and its files' digests."""
    digest = version.tree_digest
    if not is_digest(digest):  # it names a directory: nothing a path could be made of
        raise DataCorruption(f"{version.uri} has an invalid tree digest")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = root / digest
    files = _checked(path, digest)
    if files is not None:
        return path, files
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as scratch:
        fresh = Path(scratch, "tree")
        fetch(version, fresh)
        fresh_digest, files = digest_directory(fresh)
        if fresh_digest != digest:
            raise DataCorruption(f"the files of {version.uri} arrived damaged: they do not "
                                 "match the digest the registry recorded")
        try:
            os.replace(fresh, path)
        except OSError:
            # Another process cached the same tree first; its copy must pass the check too.
            cached = _checked(path, digest)
            if cached is None:
                raise
            return path, cached
    return path, files


def _checked(path: Path, digest: str) -> Mapping[str, BlobInfo] | None:
    """The files of a cache entry if they still hash to ``digest``; a damaged or edited
    entry is removed (and fetched again by the caller)."""
    if not path.is_dir():
        return None
    try:
        found, files = digest_directory(path)
    except (OSError, InvalidArgument):
        found, files = "", {}
    if found == digest:
        return files
    shutil.rmtree(path, ignore_errors=True)
    return None
