"""Remote mode for the model registry.

Packaging and loading happen here, in the user's process, exactly as in local mode: the
client packages the model with ``registry.flavors.package`` and uploads it as a tar (each
file read once, hashed as it is archived); ``load_model`` streams a version's tar into the
per-digest cache, checks it against the tree digest the server recorded (again on every
later load), and loads it with the caller's own trust settings.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from shipyard.artifacts import BlobInfo, safe_extract
from shipyard.artifacts.paths import is_digest
from shipyard.artifacts.trees import digest_directory
from shipyard.client.problems import raise_for_problem
from shipyard.errors import DataCorruption, FailedPrecondition, InvalidArgument, Unavailable
from shipyard.registry.models import AliasChange, ModelVersion, PromotionDecision, RegisteredModel
from shipyard.registry.refs import parse_ref
from shipyard.tracking.destination import resolve_dest, writing
from shipyard.validation import check_name

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.registry.flavors import FileEntry, Package
    from shipyard.registry.loading import LoadedModel


_CHUNK = 1 << 20


class HttpRegistry:
    # Provided by HttpBackend, which mixes this class in.
    settings: Settings
    _http: httpx.Client
    request: Callable[..., httpx.Response]
    _json: Callable[..., Any]
    _p: Callable[[str], str]

    def _m(self, name: str, rest: str = "") -> str:
        return self._p(f"/models/{quote(check_name(name, 'name'), safe='')}{rest}")

    def register_model(self, name: str, model_or_path: Any, *, input_example: Any = None,
                       signature: Any = None, metadata: dict[str, Any] | None = None,
                       trusted_digest: str | None = None, **options: Any) -> ModelVersion:
        from shipyard.registry import flavors

        check_name(name, "name")
        meta = {k: v for k, v in options.items() if v is not None}
        if trusted_digest is not None:
            meta["trusted_digest"] = trusted_digest
        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as scratch:
            model_dir = Path(scratch, "model")
            model_dir.mkdir()
            package = flavors.package(model_or_path, model_dir, signature=signature,
                                      input_example=input_example, metadata=metadata,
                                      trusted_digest=trusted_digest)
            archive = Path(scratch, "model.tar")
            _write_package_tar(package, archive)
            with open(archive, "rb") as f:
                response = self.request(
                    "POST", self._m(name, "/versions"),
                    files={"model": ("model.tar", f, "application/x-tar")},
                    data={"metadata": json.dumps(meta, default=str)},
                    timeout=httpx.Timeout(None, connect=5.0))
        return ModelVersion.model_validate(response.json())

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate(self._json("GET", self._m(name)))

    def get_model_version(self, name: str, version: int | None = None,
                          alias: str | None = None) -> ModelVersion:
        if version is not None:
            path = self._m(name, f"/versions/{int(version)}")
        else:
            path = self._m(name, f"/aliases/{quote(check_name(alias or 'latest', 'alias'))}")
        return ModelVersion.model_validate(self._json("GET", path))

    def resolve_model(self, ref: str) -> ModelVersion:
        parsed = parse_ref(ref)
        return self.get_model_version(parsed.name, parsed.version, parsed.alias)

    def list_models(self, filter: str | None = None) -> list[RegisteredModel]:
        params = {"filter": filter} if filter else None
        return TypeAdapter(list[RegisteredModel]).validate_python(
            self._json("GET", self._p("/models"), params=params))

    def list_model_versions(self, name: str, filter: str | None = None) -> list[ModelVersion]:
        params = {"filter": filter} if filter else None
        return TypeAdapter(list[ModelVersion]).validate_python(
            self._json("GET", self._m(name, "/versions"), params=params))

    def set_alias(self, name: str, alias: str, version: int, reason: str = "") -> ModelVersion:
        return ModelVersion.model_validate(self._json(
            "PUT", self._m(name, f"/aliases/{quote(check_name(alias, 'alias'))}"),
            json={"version": version, "reason": reason}))

    def delete_alias(self, name: str, alias: str, reason: str = "") -> None:
        self.request("DELETE", self._m(name, f"/aliases/{quote(check_name(alias, 'alias'))}"),
                     params={"reason": reason})

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        params = {"alias": alias} if alias else None
        return TypeAdapter(list[AliasChange]).validate_python(
            self._json("GET", self._m(name, "/history"), params=params))

    def rollback_alias(self, name: str, alias: str, reason: str = "") -> ModelVersion:
        return ModelVersion.model_validate(self._json(
            "POST", self._m(name, f"/aliases/{quote(check_name(alias, 'alias'))}/rollback"),
            json={"reason": reason}))

    def set_model_status(self, name: str, version: int, status: str,
                         reason: str = "") -> ModelVersion:
        return ModelVersion.model_validate(self._json(
            "POST", self._m(name, f"/versions/{int(version)}/status"),
            json={"status": status, "reason": reason}))

    def promote_if_better(self, name: str, version: int, **options: Any) -> PromotionDecision:
        return PromotionDecision.model_validate(self._json(
            "POST", self._m(name, f"/versions/{int(version)}/promote"), json=options))

    def promote_if_better_on_data(self, name: str, version: int, X: Any, y: Any,
                                  **options: Any) -> PromotionDecision:
        raise FailedPrecondition(
            "promotion on an evaluation dataset loads both models, so it runs in local mode "
            "only: evaluate here and log the metric at registration, then promote on it")

    def download_model(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        version = _checked(self.resolve_model(ref))
        # dest as run artifacts read it: a new or empty directory, errors naming it.
        target = resolve_dest(dest, version.name, "tree")
        with writing(target), tempfile.TemporaryDirectory(
                prefix="shipyard-dl-", dir=target.absolute().parent) as scratch:
            fetched, _ = self._fetch_tree(version, Path(scratch), durable=True)
            os.replace(fetched, target)
        return target

    def load_model(self, ref: str, *, trusted_digests: Iterable[str] | None = None
                   ) -> LoadedModel:
        from shipyard.registry import flavors
        from shipyard.registry.flavors.pickle import trust_list
        from shipyard.registry.loading import load_directory

        # The trust list is this process's own; nothing the server sends adds to it.
        trusted = trust_list(self.settings.trusted_digests, trusted_digests)
        version = _checked(self.resolve_model(ref))
        cache_root = self.settings.home / "cache" / "models"
        cache_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = cache_root / version.tree_digest
        files = _cached_tree(path, version.tree_digest)
        if files is None:
            files = self._cache_tree(version, cache_root, path)
        options = flavors.LoadOptions(trusted_types=tuple(self.settings.trusted_types),
                                      allow_pickle=True, trusted_digests=trusted)
        # Every file was just hashed against the tree digest the server recorded; the
        # manifest is compared with those digests rather than hashing them all again.
        stored = {name: flavors.FileEntry(blob.digest, blob.size)
                  for name, blob in files.items() if name != flavors.MANIFEST_NAME}
        return load_directory(version, path, options, stored)

    def _cache_tree(self, version: ModelVersion, cache_root: Path,
                    path: Path) -> Mapping[str, BlobInfo]:
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache_root) as scratch:
            # Not fsynced: a cache entry is checked against the tree digest on every load.
            fetched, files = self._fetch_tree(version, Path(scratch), durable=False)
            try:
                os.replace(fetched, path)
            except OSError:
                if not path.is_dir():  # else another process cached it first
                    raise
                cached = _cached_tree(path, version.tree_digest)
                if cached is None:
                    raise
                return cached
        return files

    def _fetch_tree(self, version: ModelVersion, scratch: Path,
                    *, durable: bool) -> tuple[Path, Mapping[str, BlobInfo]]:
        """Download a version's files into ``scratch/tree`` and prove they are the tree the
        server recorded (the same canonical manifest hashes to the same digest)."""
        archive = scratch / "model.tar"
        url = self._m(version.name, f"/versions/{version.version}/download")
        try:
            with open(archive, "wb") as out, self._http.stream(
                    "GET", url, timeout=httpx.Timeout(None, connect=5.0)) as response:
                if not response.is_success:
                    response.read()
                    raise_for_problem(response)
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
        except httpx.TransportError as exc:
            raise Unavailable(f"download of {version.uri} failed: "
                              f"{exc.__class__.__name__}", retry_after=1) from None
        target = scratch / "tree"
        safe_extract(archive, target, durable=durable)
        archive.unlink()
        digest, files = digest_directory(target)
        if digest != version.tree_digest:
            raise DataCorruption(f"the files of {version.uri} arrived damaged: they do not "
                                 "match the digest the registry recorded")
        return target, files


def _checked(version: ModelVersion) -> ModelVersion:
    """The server's answer names a directory of the cache: it must be a digest, nothing
    a path could be made of."""
    if not is_digest(version.tree_digest):
        raise DataCorruption(f"the server sent {version.uri} with an invalid tree digest")
    return version


def _cached_tree(path: Path, tree_digest: str) -> Mapping[str, BlobInfo] | None:
    """The files of a cached version if they still hash to its tree digest; a damaged or
    edited entry is removed (and fetched again by the caller)."""
    if not path.is_dir():
        return None
    try:
        digest, files = digest_directory(path)
    except (OSError, InvalidArgument):
        digest, files = "", {}
    if digest == tree_digest:
        return files
    shutil.rmtree(path, ignore_errors=True)
    return None


def _write_package_tar(package: Package, archive: Path) -> None:
    """Write a packaged model as a tar, reading each file once: its digest for the
    manifest is taken as it goes into the archive, and the manifest goes in last."""
    from shipyard.registry import flavors

    entries: dict[str, FileEntry] = {}
    with tarfile.TarFile(archive, "w", copybufsize=_CHUNK) as tar:
        for name, path in sorted(package.files.items()):
            with open(path, "rb") as source:
                info = tar.gettarinfo(arcname=name, fileobj=source)
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
                reader = _HashingReader(source)
                try:
                    tar.addfile(info, reader)
                except OSError:  # tarfile's "unexpected end of data": the file shrank
                    raise DataCorruption(f"{name} changed while it was being packaged",
                                         file=name) from None
                entries[name] = flavors.FileEntry(reader.hexdigest(), reader.size)
        _, data = package.manifest(entries)
        info = tarfile.TarInfo(flavors.MANIFEST_NAME)
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))


class _HashingReader:
    """A file wrapper that hashes what is read through it."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hasher = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        self._hasher.update(chunk)
        self.size += len(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()
