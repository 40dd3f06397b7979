"""Lineage from the SDK (re-exported as ``shipyard.*``)."""

from __future__ import annotations

from shipyard.lineage.models import (
    MAX_DEPTH,
    ArtifactNode,
    ContextNode,
    Direction,
    ExecutionNode,
    LineageGraph,
)
from shipyard.sdk import session


def get_lineage(artifact_id: str, direction: Direction = "upstream", depth: int = MAX_DEPTH
                ) -> LineageGraph:
    """The graph of executions and artifacts upstream (or downstream, or both) of an
    artifact, to ``depth`` executions away."""
    return session.current().lineage.lineage_graph(artifact_id, direction, depth)


def get_artifact(artifact_id: str) -> ArtifactNode:
    return session.current().lineage.get_artifact(artifact_id)


def get_execution(execution_id: str) -> ExecutionNode:
    """One execution (a pipeline step, a run, a registration) with its properties."""
    return session.current().lineage.get_execution(execution_id)


def list_artifacts(type: str | None = None, *, name: str | None = None,
                   context_id: str | None = None, limit: int = 100) -> list[ArtifactNode]:
    return session.current().lineage.list_artifacts(type=type, name=name,
                                                    context_id=context_id, limit=limit)


def list_executions(context_id: str | None = None, *, type: str | None = None,
                    limit: int = 100) -> list[ExecutionNode]:
    return session.current().lineage.list_executions(context_id=context_id, type=type,
                                                     limit=limit)


def list_contexts(type: str | None = None, *, limit: int = 100) -> list[ContextNode]:
    return session.current().lineage.list_contexts(type=type, limit=limit)
