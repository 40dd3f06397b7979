"""Executions: the lineage model's executions of a project, newest first, a page at a time.

An execution is one thing that read and wrote artifacts: a pipeline task run in one
pipeline run (type ``pipeline_task``, named ``PIPELINE/TASK``; a rerun served from the
cache is one too, in state ``CACHED``), a tracking run (``run``), a batch prediction job
(``batch_prediction``). Filtered by type, by name (a pipeline step across all its runs)
or by pipeline, each row shows the execution's state and times, what it belongs to (the
pipeline run, the tracking run, the model) with a link there, and the artifacts it read
and wrote, each a link into the lineage graph around it.

Pages are keyset pages (``before``: the last row's time and id), so a large store is read
a page at a time in index order, never counted or offset. The reads are three queries
over the lineage tables (the page, its contexts, its events with their artifacts), like
the events page's aggregate reads.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import and_, or_, select
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.errors import InvalidArgument
from shipyard.server.console.rendering import render, seconds_between
from shipyard.server.state import ServerState, server_state
from shipyard.store import Store
from shipyard.store.schema.lineage import (
    associations,
    contexts,
    events,
    executions,
    lineage_artifacts,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/executions"
LIMITS = (50, 200, 1000)
MAX_ARTIFACTS = 8  # inputs (and outputs) listed per execution; the rest counted


@router.get(PAGE)
def executions_page(
    request: Request, project: str, state: State,
    type: Annotated[str, Query(max_length=128)] = "",
    name: Annotated[str, Query(max_length=512)] = "",
    pipeline: Annotated[str, Query(max_length=128)] = "",
    before: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=LIMITS[-1])] = LIMITS[0],
) -> HTMLResponse:
    store = state.store
    cursor = _cursor(before) if before else None
    rows = _page(store, project, type, name, pipeline, cursor, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [r.id for r in rows]
    found = {
        "section": "lineage", "rows": rows, "type": type, "name": name,
        "pipeline": pipeline, "limit": limit, "limits": sorted({*LIMITS, limit}),
        "first_page": not before,
        "types": _types(store, project),
        "contexts": _contexts(store, ids), "artifacts": _artifacts(store, ids),
        "max_artifacts": MAX_ARTIFACTS, "seconds": seconds_between,
        "older": _token(rows[-1].created_at, rows[-1].id) if more and rows else None,
    }
    return render(request, "executions.html", found)


def _page(store: Store, project: str, type: str, name: str, pipeline: str,
          cursor: tuple[datetime, str] | None, limit: int) -> list[Any]:
    query = select(executions).where(executions.c.project == project)
    if type:
        query = query.where(executions.c.type == type)
    if name:
        query = query.where(executions.c.name == name)
    if pipeline:
        query = query.where(executions.c.name.startswith(pipeline + "/", autoescape=True))
    if cursor is not None:
        at, last = cursor
        query = query.where(or_(executions.c.created_at < at,
                                and_(executions.c.created_at == at, executions.c.id < last)))
    query = query.order_by(executions.c.created_at.desc(), executions.c.id.desc()).limit(limit)
    with store.read() as conn:
        return list(conn.execute(query).all())


def _types(store: Store, project: str) -> list[str]:
    query = select(executions.c.type).where(executions.c.project == project).distinct()
    with store.read() as conn:
        return sorted(str(t) for t in conn.execute(query).scalars())


def _contexts(store: Store, ids: list[str]) -> dict[str, list[Any]]:
    """Each execution's contexts (a pipeline run, an experiment, a model)."""
    if not ids:
        return {}
    query = (select(associations.c.execution_id, contexts.c.type, contexts.c.name)
             .join(contexts, contexts.c.id == associations.c.context_id)
             .where(associations.c.execution_id.in_(ids)))
    found: dict[str, list[Any]] = {}
    with store.read() as conn:
        for row in conn.execute(query):
            found.setdefault(row.execution_id, []).append(row)
    return found


def _artifacts(store: Store, ids: list[str]) -> dict[str, dict[str, list[Any]]]:
    """Each execution's inputs and outputs: the event's name and the artifact."""
    if not ids:
        return {}
    query = (select(events.c.execution_id, events.c.kind, events.c.name.label("event"),
                    lineage_artifacts.c.id, lineage_artifacts.c.name, lineage_artifacts.c.type)
             .join(lineage_artifacts, lineage_artifacts.c.id == events.c.artifact_id)
             .where(events.c.execution_id.in_(ids))
             .order_by(events.c.execution_id, events.c.kind, events.c.name))
    found: dict[str, dict[str, list[Any]]] = {}
    with store.read() as conn:
        for row in conn.execute(query):
            found.setdefault(row.execution_id, {"input": [], "output": []})[row.kind].append(row)
    return found


def _token(at: datetime, execution_id: str) -> str:
    text = f"{at.isoformat()}|{execution_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _cursor(token: str) -> tuple[datetime, str]:
    """The page token's position; ``InvalidArgument`` for one this page did not issue."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, execution_id = text.split("|", 1)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("the page token is not one this page gave: start from the "
                              "first page", field="before") from None
    if not execution_id or len(execution_id) > 64 or not execution_id.isalnum():
        raise InvalidArgument("the page token is not one this page gave: start from the "
                              "first page", field="before")
    return moment, execution_id
