"""Serving's value types (pydantic, so the REST layer returns them as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Deployment(BaseModel):
    """One model version deployed to an endpoint. ``id`` (``name:version``) is what a
    traffic split names; ``traffic_percentage`` is its share of the endpoint's requests."""

    model_config = ConfigDict(frozen=True)

    id: str
    model: str
    version: int
    model_version_id: str
    alias: str | None
    traffic_percentage: int
    min_replicas: int
    max_replicas: int
    created_at: datetime
    created_by: str | None
    # Moves to the alias's new version when the registry moves ``alias``.
    follow_alias: bool = False
    # Gets a copy of every request; its answers are logged (marked shadow), never returned.
    shadow: bool = False
    # Where its replicas run: "local" (processes of the server) or "ray" (a Ray Serve
    # application on the cluster RAY_ADDRESS names, behind the same routes).
    runtime: str = "local"


class Endpoint(BaseModel):
    """A named endpoint and what it serves. ``traffic`` maps each deployment's id to its
    percentage; the percentages add up to 100 whenever a model is deployed."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    description: str
    labels: dict[str, str]
    deployments: list[Deployment] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    @property
    def traffic(self) -> dict[str, int]:
        """The split over the deployments that answer (shadows are not in it)."""
        return {d.id: d.traffic_percentage for d in self.deployments if not d.shadow}

    @property
    def shadows(self) -> list[str]:
        """The shadow deployments' ids: they get a copy of the traffic."""
        return [d.id for d in self.deployments if d.shadow]


class Rollout(BaseModel):
    """What a canary did: the steps it took (percentages of the canary), whether it rolled
    back (and why), and the split it left."""

    model_config = ConfigDict(frozen=True)

    deployed_model_id: str
    steps: list[int]
    rolled_back: bool
    reason: str = ""
    traffic: dict[str, int]


class Prediction(BaseModel):
    """An answer: one prediction per instance, and the deployed version that gave them."""

    model_config = ConfigDict(frozen=True)

    predictions: list[Any]
    deployed_model_id: str
    model: str
    model_version: int


RolloutState = Literal["running", "promoted", "rolled_back"]
# A canary rollout's defaults (serving.rollouts): its share, the candidate's requests before
# a verdict, the p95 latency ratio allowed, the error-rate test's level and margin, and the
# alias moved on promotion.
DEFAULT_PERCENT = 10
DEFAULT_AFTER_REQUESTS = 100
DEFAULT_LATENCY_RATIO = 1.5
DEFAULT_ERROR_ALPHA = 0.05
DEFAULT_ERROR_MARGIN = 0.0
DEFAULT_ALIAS = "production"
ROLLOUT_SETTINGS = ("percent", "after_requests", "max_latency_ratio", "prediction_tolerance",
                    "promote_alias", "error_rate_alpha", "max_error_rate_increase")


class CanaryRollout(BaseModel):
    """A canary rollout as recorded: what it judges, by which criteria, and its verdict."""

    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    endpoint: str
    candidate: str
    champions: list[str]
    previous_traffic: dict[str, int]
    percent: int
    after_requests: int
    criteria: dict[str, Any]
    promote_alias: str | None
    state: RolloutState
    decision: dict[str, Any] | None
    started_at: datetime
    decided_at: datetime | None
    created_by: str | None
