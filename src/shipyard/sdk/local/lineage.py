"""Lineage in local mode (the local ``LineagePort``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.lineage import queries
from shipyard.lineage.models import (
    MAX_DEPTH,
    ArtifactNode,
    ContextNode,
    Direction,
    ExecutionNode,
    LineageGraph,
)

if TYPE_CHECKING:
    from shipyard.sdk.local import Scope


class LocalLineage:
    def __init__(self, scope: Scope) -> None:
        self._store = scope.store
        self._project = scope.project

    def get_artifact(self, artifact_id: str) -> ArtifactNode:
        return queries.get_artifact(self._store, self._project, artifact_id)

    def lineage_graph(self, artifact_id: str, direction: Direction = "upstream",
                      depth: int = MAX_DEPTH) -> LineageGraph:
        return queries.graph(self._store, self._project, artifact_id, direction=direction,
                             depth=depth)

    def list_artifacts(self, *, type: str | None = None, name: str | None = None,
                       context_id: str | None = None, limit: int = 100) -> list[ArtifactNode]:
        return queries.list_artifacts(self._store, self._project, type=type, name=name,
                                      context_id=context_id, limit=limit)

    def get_execution(self, execution_id: str) -> ExecutionNode:
        return queries.get_execution(self._store, self._project, execution_id)

    def list_executions(self, *, context_id: str | None = None, type: str | None = None,
                        limit: int = 100) -> list[ExecutionNode]:
        return queries.list_executions(self._store, self._project, context_id=context_id,
                                       type=type, limit=limit)

    def list_contexts(self, *, type: str | None = None, limit: int = 100) -> list[ContextNode]:
        return queries.list_contexts(self._store, self._project, type=type, limit=limit)
