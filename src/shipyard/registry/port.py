"""What the SDK needs from the model registry (local: ``shipyard.sdk.local.registry``;
remote: ``shipyard.client.registry``).

Packaging and loading happen in the caller's process in both modes: a model is packaged
where it was trained and loaded where it is used, with the caller's own trust settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shipyard.registry.models import AliasChange, ModelVersion, PromotionDecision, RegisteredModel

if TYPE_CHECKING:  # it needs pandas, which a client that never loads a model need not import
    from shipyard.registry.loaded import LoadedModel

Mode = Literal["min", "max"]
Bump = Literal["major", "minor", "patch"]


class RegistryPort(Protocol):
    def register_model(
        self, name: str, model_or_path: Any, *, input_example: Any = None,
        signature: Any = None, semver: str | None = None, description: str = "",
        labels: Mapping[str, str] | None = None, metadata: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None, aliases: Sequence[str] | None = None,
        run_id: str | None = None, trusted_digest: str | None = None,
        execution_id: str | None = None,
    ) -> ModelVersion: ...

    def get_model(self, name: str) -> RegisteredModel: ...

    def get_model_version(self, name: str, version: int | None = None,
                          alias: str | None = None) -> ModelVersion: ...

    def resolve_model(self, ref: str) -> ModelVersion: ...

    def list_models(self, filter: str | None = None) -> list[RegisteredModel]: ...

    def list_model_versions(self, name: str, filter: str | None = None
                            ) -> list[ModelVersion]: ...

    def set_alias(self, name: str, alias: str, version: int,
                  reason: str = "") -> ModelVersion: ...

    def delete_alias(self, name: str, alias: str, reason: str = "") -> None: ...

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]: ...

    def rollback_alias(self, name: str, alias: str, reason: str = "") -> ModelVersion: ...

    def set_model_status(self, name: str, version: int, status: str,
                         reason: str = "") -> ModelVersion: ...

    def promote_if_better(self, name: str, version: int, *, metric: str = "rmse",
                          mode: Mode = "min", alias: str = "production",
                          min_delta: float = 0.0, bump: Bump = "patch"
                          ) -> PromotionDecision: ...

    def promote_if_better_on_data(self, name: str, version: int, data: Any, target: Any, *,
                                  metric: str = "rmse", mode: Mode = "min",
                                  alias: str = "production", min_delta: float = 0.0,
                                  bump: Bump = "patch") -> PromotionDecision: ...

    def load_model(self, ref: str, *, trusted_digests: Iterable[str] | None = None
                   ) -> LoadedModel: ...

    def download_model(self, ref: str, dest: str | os.PathLike[str]) -> Path: ...
