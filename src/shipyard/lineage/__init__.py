"""Lineage: the ML Metadata model (artifacts, executions, contexts, events) and its queries.

Other services record into it inside their own write transactions through ``records``;
readers use ``queries``.
"""

from shipyard.lineage.models import (
    ArtifactNode,
    ContextNode,
    EventEdge,
    ExecutionNode,
    LineageGraph,
)

__all__ = ["ArtifactNode", "ContextNode", "EventEdge", "ExecutionNode", "LineageGraph"]
