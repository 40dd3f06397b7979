"""Local mode for the model registry: the registry service on this process's store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard import registry
from shipyard.registry.models import AliasChange, ModelVersion, PromotionDecision, RegisteredModel

if TYPE_CHECKING:
    from shipyard.artifacts import ArtifactStore
    from shipyard.config import Settings
    from shipyard.context import RequestContext
    from shipyard.registry import DeploymentLookup
    from shipyard.registry.loading import LoadedModel
    from shipyard.store import Store


class LocalRegistry:
    store: Store
    project: str
    settings: Settings

    # Provided by LocalBackend, which mixes this class in.
    artifacts: ArtifactStore
    ctx: Callable[[], RequestContext]
    # The serving capability's lookup, from the runtime's hooks (None: nothing deployed).
    deployments: DeploymentLookup | None

    def register_model(self, name: str, model_or_path: Any, **options: Any) -> ModelVersion:
        return registry.register_model(self.store, self.artifacts, self.ctx(), name,
                                       model_or_path, deployments=self.deployments,
                                       **options)

    def get_model(self, name: str) -> RegisteredModel:
        return registry.get_model(self.store, self.project, name)

    def get_model_version(self, name: str, version: int | None = None,
                          alias: str | None = None) -> ModelVersion:
        return registry.get_model_version(self.store, self.project, name, version=version,
                                          alias=alias, deployments=self.deployments)

    def resolve_model(self, ref: str) -> ModelVersion:
        return registry.resolve_ref(self.store, self.project, ref,
                                    deployments=self.deployments)

    def list_models(self, filter: str | None = None) -> list[RegisteredModel]:
        return registry.list_models(self.store, self.project, filter,
                                    deployments=self.deployments)

    def list_model_versions(self, name: str, filter: str | None = None) -> list[ModelVersion]:
        return registry.list_versions(self.store, self.project, name, filter,
                                      deployments=self.deployments)

    def set_alias(self, name: str, alias: str, version: int, reason: str = "") -> ModelVersion:
        return registry.set_alias(self.store, self.ctx(), name, alias, version, reason)

    def delete_alias(self, name: str, alias: str, reason: str = "") -> None:
        registry.delete_alias(self.store, self.ctx(), name, alias, reason)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        return registry.alias_history(self.store, self.project, name, alias)

    def rollback_alias(self, name: str, alias: str, reason: str = "") -> ModelVersion:
        return registry.rollback(self.store, self.ctx(), name, alias, reason)

    def set_model_status(self, name: str, version: int, status: str,
                         reason: str = "") -> ModelVersion:
        return registry.set_status(self.store, self.ctx(), name, version, status, reason,
                                   deployments=self.deployments)

    def promote_if_better(self, name: str, version: int, **options: Any) -> PromotionDecision:
        return registry.promote_if_better(self.store, self.artifacts, self.ctx(), name,
                                          version, **options)

    def promote_if_better_on_data(self, name: str, version: int, X: Any, y: Any,
                                  **options: Any) -> PromotionDecision:
        return registry.promote_if_better_on_data(self.store, self.artifacts, self.ctx(), name,
                                                  version, X, y, settings=self.settings,
                                                  **options)

    def load_model(self, ref: str, *, trusted_digests: Iterable[str] | None = None
                   ) -> LoadedModel:
        return registry.load_model(self.store, self.artifacts, self.project, ref, self.settings,
                                   trusted_digests=trusted_digests)

    def download_model(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        from shipyard.tracking.destination import resolve_dest, writing

        version = self.resolve_model(ref)
        # dest as run artifacts read it: a new or empty directory, errors naming it.
        target = resolve_dest(dest, version.name, "tree")
        with writing(target):
            self.artifacts.get_tree(version.tree_digest, target)
        return target

