"""The registry's result types (pydantic, so the REST layer can return them as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

# "deployed" is not stored: it is derived from the endpoints serving a version (the
# runtime's deployment lookup, passed to the registry's reads as ``deployments``).
Status = Literal["registered", "staged", "retired", "deployed"]
STORED_STATUSES = ("registered", "staged", "retired")


class RegisteredModel(BaseModel):
    """A named model: the container of its versions."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    description: str
    labels: dict[str, str]
    aliases: dict[str, int] = Field(default_factory=dict)
    latest_version: int | None = None
    created_at: datetime
    updated_at: datetime


class ModelVersion(BaseModel):
    """One registered version. ``version`` counts up from 1 per model, with no gaps."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    version: int
    semver: str | None
    description: str
    labels: dict[str, str]
    metadata: dict[str, Any]
    metrics: dict[str, float]
    aliases: list[str]
    status: Status
    flavor: str
    tree_digest: str
    signature: dict[str, Any] | None
    artifact_id: str | None
    run_id: str | None
    created_at: datetime
    created_by: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def uri(self) -> str:
        """``models:/name/3``: what ``load_model`` and the serving layer accept."""
        return f"models:/{self.name}/{self.version}"


class AliasChange(BaseModel):
    """One row of an alias's history: who moved it, when, why, from where to where."""

    model_config = ConfigDict(frozen=True)

    id: int
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str | None
    reason: str
    decision: dict[str, Any] | None
    created_at: datetime


class PromotionDecision(BaseModel):
    """The outcome of ``promote_if_better``, also stored in the alias history."""

    model_config = ConfigDict(frozen=True)

    promoted: bool
    name: str
    alias: str
    metric: str
    mode: Literal["min", "max"]
    min_delta: float
    candidate_version: int
    candidate_value: float | None
    incumbent_version: int | None
    incumbent_value: float | None
    semver: str | None
    reason: str
    # "registered" when figures came from the versions' stored metrics, "dataset" when
    # they were recomputed on data passed to the call.
    source: Literal["registered", "dataset"] = "registered"
