"""Writes into the lineage tables, always inside the caller's transaction."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from shipyard.errors import NotFound
from shipyard.ids import new_id
from shipyard.store.schema import (
    associations,
    attributions,
    contexts,
    events,
    executions,
    lineage_artifacts,
)
from shipyard.store.types import utcnow

EXECUTION_STATES = ("NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED")


def create_artifact(
    conn: Connection,
    project: str,
    type: str,
    name: str,
    uri: str,
    *,
    digest: str | None = None,
    size: int | None = None,
    properties: dict[str, Any] | None = None,
) -> str:
    artifact_id = new_id()
    conn.execute(
        insert(lineage_artifacts).values(
            id=artifact_id,
            project=project,
            type=type,
            name=name,
            uri=uri,
            digest=digest,
            size=size,
            properties=properties or {},
            created_at=utcnow(),
        )
    )
    return artifact_id


def create_execution(
    conn: Connection,
    project: str,
    type: str,
    name: str,
    *,
    state: str = "RUNNING",
    properties: dict[str, Any] | None = None,
) -> str:
    execution_id = new_id()
    now = utcnow()
    conn.execute(
        insert(executions).values(
            id=execution_id,
            project=project,
            type=type,
            name=name,
            state=state,
            properties=properties or {},
            created_at=now,
            updated_at=now,
        )
    )
    return execution_id


def require_execution(conn: Connection, project: str, execution_id: str) -> None:
    """Raise ``NotFound(field="execution_id")`` unless ``project`` has that execution."""
    found = conn.execute(
        select(executions.c.id).where(executions.c.id == execution_id,
                                      executions.c.project == project)
    ).first()
    if found is None:
        raise NotFound(f"no execution {execution_id!r} in project {project!r}",
                       field="execution_id")


def set_execution_state(
    conn: Connection, execution_id: str, state: str, properties: dict[str, Any] | None = None
) -> None:
    values: dict[str, Any] = {"state": state, "updated_at": utcnow()}
    if properties is not None:
        values["properties"] = properties
    conn.execute(update(executions).where(executions.c.id == execution_id).values(**values))


def get_or_create_context(
    conn: Connection,
    project: str,
    type: str,
    name: str,
    properties: dict[str, Any] | None = None,
) -> str:
    found = conn.execute(
        select(contexts.c.id).where(
            contexts.c.project == project, contexts.c.type == type, contexts.c.name == name
        )
    ).scalar()
    if found is not None:
        return str(found)
    context_id = new_id()
    conn.execute(
        insert(contexts).values(
            id=context_id,
            project=project,
            type=type,
            name=name,
            properties=properties or {},
            created_at=utcnow(),
        )
    )
    return context_id


def add_event(
    conn: Connection,
    execution_id: str,
    artifact_id: str,
    kind: Literal["input", "output"],
    name: str,
) -> None:
    conn.execute(
        insert(events).values(
            execution_id=execution_id,
            artifact_id=artifact_id,
            kind=kind,
            name=name,
            created_at=utcnow(),
        )
    )


def associate(conn: Connection, context_id: str, execution_id: str) -> None:
    exists = conn.execute(
        select(associations.c.context_id).where(
            associations.c.context_id == context_id,
            associations.c.execution_id == execution_id,
        )
    ).first()
    if exists is None:
        conn.execute(insert(associations).values(context_id=context_id, execution_id=execution_id))


def attribute(conn: Connection, context_id: str, artifact_id: str) -> None:
    exists = conn.execute(
        select(attributions.c.context_id).where(
            attributions.c.context_id == context_id,
            attributions.c.artifact_id == artifact_id,
        )
    ).first()
    if exists is None:
        conn.execute(insert(attributions).values(context_id=context_id, artifact_id=artifact_id))
