"""The lineage records as they cross the API: plain pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shipyard.errors import InvalidArgument

Direction = Literal["upstream", "downstream", "both"]
MAX_DEPTH = 1000


def check_graph_options(direction: object, depth: object) -> None:
    """``InvalidArgument`` naming ``direction`` or ``depth`` if a lineage graph cannot take
    them (checked on both sides of the wire, so both modes say the same)."""
    if direction not in ("upstream", "downstream", "both"):
        raise InvalidArgument(
            "direction must be one of upstream, downstream, both", field="direction"
        )
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidArgument(f"depth must be an integer from 1 to {MAX_DEPTH}", field="depth")


class ArtifactNode(BaseModel):
    id: str
    project: str
    type: str
    name: str
    uri: str
    digest: str | None = None
    size: int | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class ExecutionNode(BaseModel):
    id: str
    project: str
    type: str
    name: str
    state: str
    properties: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class ContextNode(BaseModel):
    id: str
    project: str
    type: str
    name: str
    properties: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class EventEdge(BaseModel):
    execution_id: str
    artifact_id: str
    kind: Literal["input", "output"]
    name: str


class LineageGraph(BaseModel):
    """A subgraph around ``root``: artifacts and executions joined by events."""

    root: str
    artifacts: list[ArtifactNode]
    executions: list[ExecutionNode]
    events: list[EventEdge]

    def upstream_artifacts(self) -> list[ArtifactNode]:
        return [a for a in self.artifacts if a.id != self.root]
