"""Serving's value types (pydantic, so the REST layer returns them as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
        return {d.id: d.traffic_percentage for d in self.deployments}


class Prediction(BaseModel):
    """An answer: one prediction per instance, and the deployed version that gave them."""

    model_config = ConfigDict(frozen=True)

    predictions: list[Any]
    deployed_model_id: str
    model: str
    model_version: int
