"""Read-side lineage queries.

The graph walk goes one level per query pair (artifacts -> executions -> artifacts), with
``IN`` over the whole frontier, so its cost grows with the depth of the graph, not with the
number of nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from shipyard.errors import NotFound
from shipyard.ids import check_id
from shipyard.lineage.models import (
    MAX_DEPTH,
    ArtifactNode,
    ContextNode,
    Direction,
    EventEdge,
    ExecutionNode,
    LineageGraph,
    check_graph_options,
)
from shipyard.store import Store
from shipyard.store.schema import (
    associations,
    attributions,
    contexts,
    events,
    executions,
    lineage_artifacts,
)
from shipyard.validation import check_name

_CHUNK = 500


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    items = list(ids)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def get_artifact(store: Store, project: str, artifact_id: str) -> ArtifactNode:
    check_id(artifact_id, "artifact_id")
    with store.read() as conn:
        row = conn.execute(
            select(lineage_artifacts).where(
                lineage_artifacts.c.id == artifact_id, lineage_artifacts.c.project == project
            )
        ).first()
    if row is None:
        raise NotFound(f"artifact {artifact_id} not found in project {project!r}",
                       field="artifact_id")
    return ArtifactNode.model_validate(dict(row._mapping))


def get_execution(store: Store, project: str, execution_id: str) -> ExecutionNode:
    check_id(execution_id, "execution_id")
    with store.read() as conn:
        row = conn.execute(
            select(executions).where(
                executions.c.id == execution_id, executions.c.project == project
            )
        ).first()
    if row is None:
        raise NotFound(f"execution {execution_id} not found in project {project!r}",
                       field="execution_id")
    return ExecutionNode.model_validate(dict(row._mapping))


def _events_for(
    conn: Connection, project: str, column: Any, ids: set[str], kind: str
) -> list[EventEdge]:
    """Events of ``kind`` touching ``ids`` whose execution and artifact are both in
    ``project``: an edge a run recorded to another project's artifact is not followed."""
    found: list[EventEdge] = []
    for chunk in _chunks(ids):
        rows = conn.execute(
            select(events.c.execution_id, events.c.artifact_id, events.c.kind, events.c.name)
            .join(executions, executions.c.id == events.c.execution_id)
            .join(lineage_artifacts, lineage_artifacts.c.id == events.c.artifact_id)
            .where(column.in_(chunk), events.c.kind == kind)
            .where(executions.c.project == project, lineage_artifacts.c.project == project)
            .order_by(events.c.id)
        )
        found.extend(EventEdge.model_validate(dict(r._mapping)) for r in rows)
    return found


def _walk(
    conn: Connection, project: str, root: str, upstream: bool, depth: int
) -> list[EventEdge]:
    """Follow events away from ``root``; ``depth`` counts executions crossed."""
    edges: list[EventEdge] = []
    frontier = {root}
    seen_artifacts = {root}
    seen_executions: set[str] = set()
    for _ in range(depth):
        # Upstream: who produced the frontier (output events), then what they consumed.
        first_kind, second_kind = ("output", "input") if upstream else ("input", "output")
        hop1 = _events_for(conn, project, events.c.artifact_id, frontier, first_kind)
        new_execs = {e.execution_id for e in hop1} - seen_executions
        edges.extend(hop1)
        if not new_execs:
            break
        seen_executions |= new_execs
        hop2 = _events_for(conn, project, events.c.execution_id, new_execs, second_kind)
        edges.extend(hop2)
        frontier = {e.artifact_id for e in hop2} - seen_artifacts
        seen_artifacts |= frontier
        if not frontier:
            break
    return edges


def graph(
    store: Store,
    project: str,
    artifact_id: str,
    *,
    direction: Direction = "upstream",
    depth: int = MAX_DEPTH,
) -> LineageGraph:
    """The artifacts and executions around ``artifact_id``, to ``depth`` executions away."""
    check_graph_options(direction, depth)
    root = get_artifact(store, project, artifact_id)
    with store.read() as conn:
        edges: list[EventEdge] = []
        if direction in ("upstream", "both"):
            edges += _walk(conn, project, artifact_id, True, depth)
        if direction in ("downstream", "both"):
            edges += _walk(conn, project, artifact_id, False, depth)
        unique = {(e.execution_id, e.artifact_id, e.kind, e.name): e for e in edges}
        edges = list(unique.values())
        artifact_ids = {e.artifact_id for e in edges} | {artifact_id}
        execution_ids = {e.execution_id for e in edges}
        arts = [root] + [
            ArtifactNode.model_validate(dict(r._mapping))
            for chunk in _chunks(artifact_ids - {artifact_id})
            for r in conn.execute(
                select(lineage_artifacts).where(
                    lineage_artifacts.c.id.in_(chunk), lineage_artifacts.c.project == project
                )
            )
        ]
        execs = [
            ExecutionNode.model_validate(dict(r._mapping))
            for chunk in _chunks(execution_ids)
            for r in conn.execute(
                select(executions).where(
                    executions.c.id.in_(chunk), executions.c.project == project
                )
            )
        ]
    execs.sort(key=lambda e: e.created_at)
    return LineageGraph(root=artifact_id, artifacts=arts, executions=execs, events=edges)


def _require_context(conn: Connection, project: str, context_id: str) -> None:
    # An unknown context is a mistake to report, not an empty result to show.
    found = conn.execute(
        select(contexts.c.id).where(contexts.c.id == context_id, contexts.c.project == project)
    ).first()
    if found is None:
        raise NotFound(f"context {context_id} not found in project {project!r}",
                       field="context_id")


def list_artifacts(
    store: Store,
    project: str,
    *,
    type: str | None = None,
    name: str | None = None,
    context_id: str | None = None,
    limit: int = 100,
) -> list[ArtifactNode]:
    stmt = select(lineage_artifacts).where(lineage_artifacts.c.project == project)
    if type is not None:
        stmt = stmt.where(lineage_artifacts.c.type == check_name(type, "type"))
    if name is not None:
        stmt = stmt.where(lineage_artifacts.c.name == name)
    if context_id is not None:
        check_id(context_id, "context_id")
        stmt = stmt.join(
            attributions, attributions.c.artifact_id == lineage_artifacts.c.id
        ).where(attributions.c.context_id == context_id)
    stmt = stmt.order_by(lineage_artifacts.c.created_at.desc()).limit(limit)
    with store.read() as conn:
        if context_id is not None:
            _require_context(conn, project, context_id)
        return [ArtifactNode.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]


def list_executions(
    store: Store,
    project: str,
    *,
    context_id: str | None = None,
    type: str | None = None,
    limit: int = 100,
) -> list[ExecutionNode]:
    stmt = select(executions).where(executions.c.project == project)
    if context_id is not None:
        check_id(context_id, "context_id")
        stmt = stmt.join(
            associations, associations.c.execution_id == executions.c.id
        ).where(associations.c.context_id == context_id)
    if type is not None:
        stmt = stmt.where(executions.c.type == check_name(type, "type"))
    stmt = stmt.order_by(executions.c.created_at).limit(limit)
    with store.read() as conn:
        if context_id is not None:
            _require_context(conn, project, context_id)
        return [ExecutionNode.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]


def list_contexts(
    store: Store, project: str, *, type: str | None = None, limit: int = 100
) -> list[ContextNode]:
    stmt = select(contexts).where(contexts.c.project == project)
    if type is not None:
        stmt = stmt.where(contexts.c.type == check_name(type, "type"))
    stmt = stmt.order_by(contexts.c.created_at.desc()).limit(limit)
    with store.read() as conn:
        return [ContextNode.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]
