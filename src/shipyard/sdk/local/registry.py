"""The model registry in local mode (the local ``RegistryPort``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.registry import aliases, loading, promotion, service
from shipyard.registry.loaded import LoadedModel
from shipyard.registry.models import AliasChange, ModelVersion, PromotionDecision, RegisteredModel
from shipyard.registry.port import Bump, Mode
from shipyard.tracking.destination import resolve_dest, writing

if TYPE_CHECKING:
    from shipyard.sdk.local import Scope


class LocalRegistry:
    def __init__(self, scope: Scope) -> None:
        self._s = scope
        self._store = scope.store
        self._project = scope.project
        # The serving capability's lookup, from the runtime's hooks (None: nothing deployed).
        self._deployments = scope.deployments

    def register_model(
        self, name: str, model_or_path: Any, *, input_example: Any = None,
        signature: Any = None, semver: str | None = None, description: str = "",
        labels: Mapping[str, str] | None = None, metadata: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None, aliases: Sequence[str] | None = None,
        run_id: str | None = None, trusted_digest: str | None = None,
        execution_id: str | None = None,
    ) -> ModelVersion:
        return service.register_model(
            self._store, self._s.artifacts, self._s.ctx(), name, model_or_path,
            input_example=input_example, signature=signature, semver=semver,
            description=description, labels=labels, metadata=metadata, metrics=metrics,
            aliases=aliases, run_id=run_id, trusted_digest=trusted_digest,
            execution_id=execution_id, deployments=self._deployments)

    def get_model(self, name: str) -> RegisteredModel:
        return service.get_model(self._store, self._project, name)

    def get_model_version(self, name: str, version: int | None = None,
                          alias: str | None = None) -> ModelVersion:
        return service.get_model_version(self._store, self._project, name, version=version,
                                         alias=alias, deployments=self._deployments)

    def resolve_model(self, ref: str) -> ModelVersion:
        return service.resolve_ref(self._store, self._project, ref,
                                   deployments=self._deployments)

    def list_models(self, filter: str | None = None) -> list[RegisteredModel]:
        return service.list_models(self._store, self._project, filter,
                                   deployments=self._deployments)

    def list_model_versions(self, name: str, filter: str | None = None) -> list[ModelVersion]:
        return service.list_versions(self._store, self._project, name, filter,
                                     deployments=self._deployments)

    def set_alias(self, name: str, alias: str, version: int, reason: str = "") -> ModelVersion:
        return aliases.set_alias(self._store, self._s.ctx(), name, alias, version, reason,
                                 deployments=self._deployments)

    def delete_alias(self, name: str, alias: str, reason: str = "") -> None:
        aliases.delete_alias(self._store, self._s.ctx(), name, alias, reason)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        return aliases.alias_history(self._store, self._project, name, alias)

    def rollback_alias(self, name: str, alias: str, reason: str = "") -> ModelVersion:
        return aliases.rollback(self._store, self._s.ctx(), name, alias, reason,
                                deployments=self._deployments)

    def set_model_status(self, name: str, version: int, status: str,
                         reason: str = "") -> ModelVersion:
        return service.set_status(self._store, self._s.ctx(), name, version, status, reason,
                                  deployments=self._deployments)

    def promote_if_better(self, name: str, version: int, *, metric: str = "rmse",
                          mode: Mode = "min", alias: str = "production",
                          min_delta: float = 0.0, bump: Bump = "patch") -> PromotionDecision:
        return promotion.promote_if_better(self._store, self._s.artifacts, self._s.ctx(), name,
                                           version, metric=metric, mode=mode, alias=alias,
                                           min_delta=min_delta, bump=bump)

    def promote_if_better_on_data(self, name: str, version: int, data: Any, target: Any, *,
                                  metric: str = "rmse", mode: Mode = "min",
                                  alias: str = "production", min_delta: float = 0.0,
                                  bump: Bump = "patch") -> PromotionDecision:
        return promotion.promote_if_better_on_data(
            self._store, self._s.artifacts, self._s.ctx(), name, version, data, target,
            settings=self._s.settings, metric=metric, mode=mode, alias=alias,
            min_delta=min_delta, bump=bump)

    def load_model(self, ref: str, *, trusted_digests: Iterable[str] | None = None
                   ) -> LoadedModel:
        return loading.load_model(self._store, self._s.artifacts, self._project, ref,
                                  self._s.settings, trusted_digests=trusted_digests)

    def download_model(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        version = self.resolve_model(ref)
        # dest as run artifacts read it: a new or empty directory, errors naming it.
        target = resolve_dest(dest, version.name, "tree")
        with writing(target):
            self._s.artifacts.get_tree(version.tree_digest, target)
        return target
