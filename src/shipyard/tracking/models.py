"""Tracking records as they cross the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

RunStatus = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
TERMINAL: tuple[str, ...] = ("FINISHED", "FAILED", "KILLED")
# A metric point as the SDK sends it: (key, value, step) or (key, value, step, timestamp ms).
MetricTuple = tuple[str, float, int] | tuple[str, float, int, int]


class Experiment(BaseModel):
    id: str
    project: str
    name: str
    created_at: datetime


class MetricPoint(BaseModel):
    key: str
    value: float
    step: int = 0
    timestamp: int = Field(description="milliseconds since the Unix epoch")


class RunArtifact(BaseModel):
    name: str
    digest: str
    size: int
    kind: Literal["file", "tree"]
    artifact_id: str | None = None
    created_at: datetime


class RunData(BaseModel):
    """One run with its params, tags and latest metric values."""

    id: str
    project: str
    experiment: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: datetime
    end_time: datetime | None = None
    execution_id: str | None = None
    created_by: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    artifacts: list[RunArtifact] = Field(default_factory=list)


class RunPage(BaseModel):
    runs: list[RunData]
    next_page_token: str | None = None
