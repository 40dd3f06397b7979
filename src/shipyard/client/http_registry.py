"""Remote mode for the model registry.

Packaging and loading happen here, in the user's process, exactly as in local mode: the
client packages the model with ``registry.flavors.save`` and uploads the directory as a tar;
``load_model`` downloads a version's tar into the per-digest cache, checks it against the
tree digest the server recorded, and loads it with the caller's own trust settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from shipyard.artifacts import BlobInfo, safe_extract
from shipyard.artifacts.trees import encode_manifest
from shipyard.errors import DataCorruption, FailedPrecondition
from shipyard.registry.models import AliasChange, ModelVersion, PromotionDecision, RegisteredModel
from shipyard.registry.refs import parse_ref
from shipyard.validation import check_name

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.registry.loading import LoadedModel


class HttpRegistry:
    # Provided by HttpBackend, which mixes this class in.
    settings: Settings
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
            flavors.save(model_or_path, model_dir, signature=signature,
                         input_example=input_example, metadata=metadata,
                         trusted_digest=trusted_digest)
            archive = Path(scratch, "model.tar")
            with tarfile.open(archive, "w") as tar:
                for path in sorted(model_dir.rglob("*")):
                    if path.is_file():
                        tar.add(path, arcname=path.relative_to(model_dir).as_posix())
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
        version = self.resolve_model(ref)
        target = Path(dest)
        with tempfile.TemporaryDirectory(prefix="shipyard-dl-",
                                         dir=target.absolute().parent) as scratch:
            fetched = self._fetch_tree(version, Path(scratch))
            os.replace(fetched, target)
        return target

    def load_model(self, ref: str) -> LoadedModel:
        from shipyard.registry import flavors
        from shipyard.registry.loading import LoadedModel

        version = self.resolve_model(ref)
        cache_root = self.settings.home / "cache" / "models"
        cache_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = cache_root / version.tree_digest
        if not path.is_dir():
            with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache_root) as scratch:
                fetched = self._fetch_tree(version, Path(scratch))
                try:
                    os.replace(fetched, path)
                except OSError:
                    if not path.is_dir():  # else another process cached it first
                        raise
        options = flavors.LoadOptions(trusted_types=tuple(self.settings.trusted_types),
                                      allow_pickle=True)
        try:
            manifest, model = flavors.load(path, options)
        except DataCorruption:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return LoadedModel(version, manifest, model, path)

    def _fetch_tree(self, version: ModelVersion, scratch: Path) -> Path:
        """Download a version's files into ``scratch/tree`` and prove they are the tree the
        server recorded (the same canonical manifest hashes to the same digest)."""
        archive = scratch / "model.tar"
        url = self._m(version.name, f"/versions/{version.version}/download")
        with open(archive, "wb") as out:
            response = self.request("GET", url, timeout=httpx.Timeout(None, connect=5.0))
            out.write(response.content)
        target = scratch / "tree"
        sizes = safe_extract(archive, target)
        files = {}
        for rel in sizes:
            data = (target / rel).read_bytes()
            files[rel] = BlobInfo(hashlib.sha256(data).hexdigest(), len(data))
        if hashlib.sha256(encode_manifest(files)).hexdigest() != version.tree_digest:
            raise DataCorruption(f"the files of {version.uri} arrived damaged: they do not "
                                 "match the digest the registry recorded")
        return target
