"""The model registry over the REST API (the remote ``RegistryPort``).

Packaging and loading happen here, in the user's process, exactly as in local mode: the
client packages the model with ``registry.flavors.package`` and uploads it as a tar (each
file read once, hashed as it is archived); ``load_model`` streams a version's tar into the
shared model cache (``registry.cache``), which checks it against the tree digest the server
recorded (again on every later load), and loads it with the caller's own trust settings.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from pydantic import TypeAdapter

from shipyard.artifacts.archives import safe_extract
from shipyard.client.http import CHUNK, HttpClient
from shipyard.errors import DataCorruption, FailedPrecondition
from shipyard.registry.cache import cache_root, cached_tree, load_cached
from shipyard.registry.models import AliasChange, ModelVersion, PromotionDecision, RegisteredModel
from shipyard.registry.port import Bump, Mode
from shipyard.registry.refs import parse_ref
from shipyard.tracking.destination import resolve_dest, writing
from shipyard.validation import check_name

if TYPE_CHECKING:  # loading and packaging need pandas: imported when used
    from shipyard.registry.flavors import FileEntry, Package
    from shipyard.registry.loaded import LoadedModel


class HttpRegistry:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def _m(self, name: str, rest: str = "") -> str:
        return self._c.project_path(f"/models/{quote(check_name(name, 'name'), safe='')}{rest}")

    def _alias(self, name: str, alias: str, rest: str = "") -> str:
        return self._m(name, f"/aliases/{quote(check_name(alias, 'alias'))}{rest}")

    def register_model(
        self, name: str, model_or_path: Any, *, input_example: Any = None,
        signature: Any = None, semver: str | None = None, description: str = "",
        labels: Mapping[str, str] | None = None, metadata: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None, aliases: Sequence[str] | None = None,
        run_id: str | None = None, trusted_digest: str | None = None,
        execution_id: str | None = None,
    ) -> ModelVersion:
        from shipyard.registry import flavors

        check_name(name, "name")
        fields: dict[str, Any] = {
            "semver": semver, "description": description,
            "labels": dict(labels) if labels else None,
            "metrics": dict(metrics) if metrics else None,
            "aliases": list(aliases) if aliases else None, "run_id": run_id,
            "execution_id": execution_id, "trusted_digest": trusted_digest}
        meta = {k: v for k, v in fields.items() if v is not None}
        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as scratch:
            model_dir = Path(scratch, "model")
            model_dir.mkdir()
            package = flavors.package(model_or_path, model_dir, signature=signature,
                                      input_example=input_example,
                                      metadata=dict(metadata) if metadata else None,
                                      trusted_digest=trusted_digest)
            archive = Path(scratch, "model.tar")
            _write_package_tar(package, archive)
            with open(archive, "rb") as f:
                response = self._c.request(
                    "POST", self._m(name, "/versions"),
                    files={"model": ("model.tar", f, "application/x-tar")},
                    data={"metadata": json.dumps(meta, default=str)})
        return ModelVersion.model_validate(response.json())

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate(self._c.json("GET", self._m(name)))

    def get_model_version(self, name: str, version: int | None = None,
                          alias: str | None = None) -> ModelVersion:
        if version is not None:
            path = self._m(name, f"/versions/{int(version)}")
        else:
            path = self._alias(name, alias or "latest")
        return ModelVersion.model_validate(self._c.json("GET", path))

    def resolve_model(self, ref: str) -> ModelVersion:
        parsed = parse_ref(ref)
        return self.get_model_version(parsed.name, parsed.version, parsed.alias)

    def list_models(self, filter: str | None = None) -> list[RegisteredModel]:
        params = {"filter": filter} if filter else None
        return TypeAdapter(list[RegisteredModel]).validate_python(
            self._c.json("GET", self._c.project_path("/models"), params=params))

    def list_model_versions(self, name: str, filter: str | None = None) -> list[ModelVersion]:
        params = {"filter": filter} if filter else None
        return TypeAdapter(list[ModelVersion]).validate_python(
            self._c.json("GET", self._m(name, "/versions"), params=params))

    def set_alias(self, name: str, alias: str, version: int, reason: str = "") -> ModelVersion:
        return ModelVersion.model_validate(self._c.json(
            "PUT", self._alias(name, alias), json={"version": version, "reason": reason}))

    def delete_alias(self, name: str, alias: str, reason: str = "") -> None:
        self._c.request("DELETE", self._alias(name, alias), params={"reason": reason})

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        params = {"alias": alias} if alias else None
        return TypeAdapter(list[AliasChange]).validate_python(
            self._c.json("GET", self._m(name, "/history"), params=params))

    def rollback_alias(self, name: str, alias: str, reason: str = "") -> ModelVersion:
        return ModelVersion.model_validate(self._c.json(
            "POST", self._alias(name, alias, "/rollback"), json={"reason": reason}))

    def set_model_status(self, name: str, version: int, status: str,
                         reason: str = "") -> ModelVersion:
        return ModelVersion.model_validate(self._c.json(
            "POST", self._m(name, f"/versions/{int(version)}/status"),
            json={"status": status, "reason": reason}))

    def promote_if_better(self, name: str, version: int, *, metric: str = "rmse",
                          mode: Mode = "min", alias: str = "production",
                          min_delta: float = 0.0, bump: Bump = "patch") -> PromotionDecision:
        options = {"metric": metric, "mode": mode, "alias": alias, "min_delta": min_delta,
                   "bump": bump}
        return PromotionDecision.model_validate(self._c.json(
            "POST", self._m(name, f"/versions/{int(version)}/promote"), json=options))

    def promote_if_better_on_data(self, name: str, version: int, data: Any, target: Any, *,
                                  metric: str = "rmse", mode: Mode = "min",
                                  alias: str = "production", min_delta: float = 0.0,
                                  bump: Bump = "patch") -> PromotionDecision:
        raise FailedPrecondition(
            "promotion on an evaluation dataset loads both models, so it runs in local mode "
            "only: evaluate here and log the metric at registration, then promote on it")

    def download_model(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        version = self.resolve_model(ref)
        # dest as run artifacts read it: a new or empty directory, errors naming it.
        target = resolve_dest(dest, version.name, "tree")
        with writing(target), tempfile.TemporaryDirectory(
                prefix="shipyard-dl-", dir=target.absolute().parent) as scratch:
            # Fetched through a private cache next to dest: the same digest check as loads.
            fetched, _ = cached_tree(version, Path(scratch), self._fetch)
            os.replace(fetched, target)
        return target

    def load_model(self, ref: str, *, trusted_digests: Iterable[str] | None = None
                   ) -> LoadedModel:
        from shipyard.registry import flavors
        from shipyard.registry.flavors.pickle import trust_list

        settings = self._c.settings
        # The trust list is this process's own; nothing the server sends adds to it.
        trusted = trust_list(settings.trusted_digests, trusted_digests)
        options = flavors.LoadOptions(trusted_types=tuple(settings.trusted_types),
                                      allow_pickle=True, trusted_digests=trusted)
        return load_cached(self.resolve_model(ref), cache_root(settings.home), self._fetch,
                           options)

    def _fetch(self, version: ModelVersion, target: Path) -> None:
        """Stream a version's tar from the server and unpack it into ``target`` (safely: no
        member may leave it); the cache checks the result against the tree digest."""
        url = self._m(version.name, f"/versions/{version.version}/download")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=".download-", dir=target.parent) as archive:
            with self._c.stream("GET", url, version.uri) as response:
                for chunk in response.iter_bytes(CHUNK):
                    archive.write(chunk)
            archive.flush()
            safe_extract(archive.name, target, durable=False)


def _write_package_tar(package: Package, archive: Path) -> None:
    """Write a packaged model as a tar, reading each file once: its digest for the
    manifest is taken as it goes into the archive, and the manifest goes in last."""
    from shipyard.registry import flavors

    entries: dict[str, FileEntry] = {}
    with tarfile.TarFile(archive, "w", copybufsize=CHUNK) as tar:
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
