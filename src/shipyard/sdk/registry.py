"""The model registry from the SDK (re-exported as ``shipyard.*``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.registry.models import AliasChange, ModelVersion, PromotionDecision, RegisteredModel
from shipyard.registry.port import RegistryPort
from shipyard.sdk import session

if TYPE_CHECKING:  # needs pandas: imported by load_model's caller, not by every client
    from shipyard.registry.loaded import LoadedModel


def _registry() -> RegistryPort:
    return session.current().registry


# -- registry ------------------------------------------------------------------------------------
def register_model(
    name: str,
    model_or_path: Any,
    *,
    input_example: Any = None,
    signature: Any = None,
    semver: str | None = None,
    description: str = "",
    labels: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    aliases: Sequence[str] | None = None,
    run: Any = None,
    trusted_digest: str | None = None,
) -> ModelVersion:
    """Register a new version of ``name`` (created on first use): a model object, a model
    file or a packaged directory, saved in a safe format with its signature.

    ``run`` (an ``ActiveRun`` or a run id) links the version to the run in the lineage graph;
    inside a pipeline step, the step's own run is used when none is given.
    """
    run_id = getattr(run, "id", run)
    # Inside a pipeline step, the step's execution produced the model (DESIGN.md 4).
    execution_id = os.environ.get("SHIPYARD_EXECUTION_ID") or None
    return _registry().register_model(
        name, model_or_path, input_example=input_example, signature=signature,
        semver=semver, description=description, labels=labels, metadata=metadata,
        metrics=metrics, aliases=aliases, run_id=run_id, trusted_digest=trusted_digest,
        execution_id=execution_id,
    )


def get_model(name: str) -> RegisteredModel:
    return _registry().get_model(name)


def get_model_version(name: str, version: int | None = None, alias: str | None = None
                      ) -> ModelVersion:
    """A version by number or alias; with neither, the newest version not retired."""
    return _registry().get_model_version(name, version, alias)


def resolve_model(ref: str) -> ModelVersion:
    """``name``, ``name:3``, ``name@alias`` or ``models:/name@alias`` -> the version."""
    return _registry().resolve_model(ref)


def list_models(filter: str | None = None) -> list[RegisteredModel]:
    """Models with a version matching ``filter`` (e.g. ``labels.team = 'sales' and
    metrics.rmse < 0.2``)."""
    return _registry().list_models(filter)


def list_model_versions(name: str, filter: str | None = None) -> list[ModelVersion]:
    return _registry().list_model_versions(name, filter)


def set_alias(name: str, alias: str, version: int, reason: str = "") -> ModelVersion:
    return _registry().set_alias(name, alias, version, reason)


def delete_alias(name: str, alias: str, reason: str = "") -> None:
    _registry().delete_alias(name, alias, reason)


def alias_history(name: str, alias: str | None = None) -> list[AliasChange]:
    """Every alias move of ``name``: who, when, why, from and to, and promotion figures."""
    return _registry().alias_history(name, alias)


def rollback_alias(name: str, alias: str, reason: str = "") -> ModelVersion:
    """Move ``alias`` back to the version it pointed at before its last move."""
    return _registry().rollback_alias(name, alias, reason)


def set_model_status(name: str, version: int, status: str, reason: str = "") -> ModelVersion:
    return _registry().set_model_status(name, version, status, reason)


def promote_if_better(
    name: str,
    version: int,
    metric: str = "rmse",
    mode: Literal["min", "max"] = "min",
    alias: str = "production",
    min_delta: float = 0.0,
    bump: Literal["major", "minor", "patch"] = "patch",
    *,
    data: Any = None,
    target: Any = None,
) -> PromotionDecision:
    """Move ``alias`` to ``version`` only if it beats the alias's current holder on
    ``metric`` (by more than ``min_delta``), bumping the semantic version; the decision and
    both figures are recorded in the alias history. With ``data`` and ``target``, both
    versions are evaluated on that dataset instead of their registered metrics."""
    if data is not None or target is not None:
        return _registry().promote_if_better_on_data(
            name, version, data, target, metric=metric, mode=mode, alias=alias,
            min_delta=min_delta, bump=bump)
    return _registry().promote_if_better(name, version, metric=metric, mode=mode, alias=alias,
                                         min_delta=min_delta, bump=bump)


def load_model(ref: str, *, trusted_digests: Iterable[str] | None = None) -> LoadedModel:
    """Load ``models:/name@alias`` (or ``name:3``...) in this process: an object with
    ``.predict(DataFrame)`` that checks its input against the signature.

    A pickle runs whatever code it holds, so one loads only if the sha256 of its file is in
    ``trusted_digests`` or ``SHIPYARD_TRUSTED_DIGESTS``: your decision, never that of whoever
    registered it. Otherwise ``UnsafeModel`` names the digest to trust.
    """
    return _registry().load_model(ref, trusted_digests=trusted_digests)


def download_model(ref: str, dest: str | os.PathLike[str]) -> Path:
    """Write a version's packaged directory (manifest and files) to ``dest``."""
    return _registry().download_model(ref, dest)
