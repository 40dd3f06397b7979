"""What the SDK needs from lineage (local: ``shipyard.sdk.local.lineage``; remote:
``shipyard.client.lineage``)."""

from __future__ import annotations

from typing import Protocol

from shipyard.lineage.models import (
    ArtifactNode,
    ContextNode,
    Direction,
    ExecutionNode,
    LineageGraph,
)


class LineagePort(Protocol):
    def get_artifact(self, artifact_id: str) -> ArtifactNode: ...

    def lineage_graph(self, artifact_id: str, direction: Direction = "upstream",
                      depth: int = 1000) -> LineageGraph: ...

    def list_artifacts(self, *, type: str | None = None, name: str | None = None,
                       context_id: str | None = None, limit: int = 100
                       ) -> list[ArtifactNode]: ...

    def get_execution(self, execution_id: str) -> ExecutionNode: ...

    def list_executions(self, *, context_id: str | None = None, type: str | None = None,
                        limit: int = 100) -> list[ExecutionNode]: ...

    def list_contexts(self, *, type: str | None = None,
                      limit: int = 100) -> list[ContextNode]: ...
