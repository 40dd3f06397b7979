"""Lineage over the REST API (the remote ``LineagePort``)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from shipyard.client.http import HttpClient, path_id
from shipyard.lineage.models import (
    ArtifactNode,
    ContextNode,
    Direction,
    ExecutionNode,
    LineageGraph,
    check_graph_options,
)


class HttpLineage:
    def __init__(self, client: HttpClient) -> None:
        self._c = client

    def get_artifact(self, artifact_id: str) -> ArtifactNode:
        return ArtifactNode.model_validate(self._c.json("GET", self._c.project_path(
            f"/lineage/artifacts/{path_id(artifact_id, 'artifact_id')}")))

    def lineage_graph(self, artifact_id: str, direction: Direction = "upstream",
                      depth: int = 1000) -> LineageGraph:
        check_graph_options(direction, depth)
        return LineageGraph.model_validate(self._c.json("GET", self._c.project_path(
            f"/lineage/artifacts/{path_id(artifact_id, 'artifact_id')}/graph"),
            params={"direction": direction, "depth": depth}))

    def list_artifacts(self, *, type: str | None = None, name: str | None = None,
                       context_id: str | None = None, limit: int = 100) -> list[ArtifactNode]:
        params = _present(type=type, name=name, context_id=context_id, limit=limit)
        return TypeAdapter(list[ArtifactNode]).validate_python(self._c.json(
            "GET", self._c.project_path("/lineage/artifacts"), params=params))

    def get_execution(self, execution_id: str) -> ExecutionNode:
        return ExecutionNode.model_validate(self._c.json("GET", self._c.project_path(
            f"/lineage/executions/{path_id(execution_id, 'execution_id')}")))

    def list_executions(self, *, context_id: str | None = None, type: str | None = None,
                        limit: int = 100) -> list[ExecutionNode]:
        params = _present(context_id=context_id, type=type, limit=limit)
        return TypeAdapter(list[ExecutionNode]).validate_python(self._c.json(
            "GET", self._c.project_path("/lineage/executions"), params=params))

    def list_contexts(self, *, type: str | None = None, limit: int = 100) -> list[ContextNode]:
        return TypeAdapter(list[ContextNode]).validate_python(self._c.json(
            "GET", self._c.project_path("/lineage/contexts"),
            params=_present(type=type, limit=limit)))


def _present(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}
