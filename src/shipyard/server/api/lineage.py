"""Lineage queries: /api/v1/projects/{project}/lineage/..."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from shipyard.context import RequestContext
from shipyard.lineage import queries
from shipyard.lineage.models import (
    MAX_DEPTH,
    ArtifactNode,
    ContextNode,
    ExecutionNode,
    LineageGraph,
)
from shipyard.server.api import params
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, request_context, server_state

router = APIRouter(prefix="/api/v1/projects/{project}/lineage", tags=["lineage"],
                   dependencies=[Depends(params.project_parameter)], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]
Limit = Annotated[int, Query(ge=1, le=10_000)]
Name = Annotated[str | None, Query(max_length=256)]


@router.get("/artifacts", response_model=list[ArtifactNode])
def list_artifacts(state: State, ctx: Ctx, type: params.OptionalName = None, name: Name = None,
                   context_id: params.OptionalId = None, limit: Limit = 100) -> list[ArtifactNode]:
    return queries.list_artifacts(state.store, ctx.project, type=type, name=name,
                                  context_id=context_id, limit=limit)


@router.get("/artifacts/{artifact_id}", response_model=ArtifactNode)
def get_artifact(artifact_id: params.Id, state: State, ctx: Ctx) -> ArtifactNode:
    return queries.get_artifact(state.store, ctx.project, artifact_id)


@router.get("/artifacts/{artifact_id}/graph", response_model=LineageGraph)
def artifact_graph(
    artifact_id: params.Id, state: State, ctx: Ctx,
    direction: Literal["upstream", "downstream", "both"] = "upstream",
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = MAX_DEPTH,
) -> LineageGraph:
    return queries.graph(state.store, ctx.project, artifact_id, direction=direction,
                         depth=depth)


@router.get("/executions", response_model=list[ExecutionNode])
def list_executions(state: State, ctx: Ctx, context_id: params.OptionalId = None,
                    type: params.OptionalName = None, limit: Limit = 100) -> list[ExecutionNode]:
    return queries.list_executions(state.store, ctx.project, context_id=context_id,
                                   type=type, limit=limit)


@router.get("/executions/{execution_id}", response_model=ExecutionNode)
def get_execution(execution_id: params.Id, state: State, ctx: Ctx) -> ExecutionNode:
    return queries.get_execution(state.store, ctx.project, execution_id)


@router.get("/contexts", response_model=list[ContextNode])
def list_contexts(state: State, ctx: Ctx, type: params.OptionalName = None,
                  limit: Limit = 100) -> list[ContextNode]:
    return queries.list_contexts(state.store, ctx.project, type=type, limit=limit)
