"""Pipeline runs: /api/v1/projects/{project}/pipelines/...

Runs submitted here are queued; the server's embedded worker (``server.worker``) or a
``shipyard worker`` process runs them, each step in a child process.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from shipyard import pipelines
from shipyard.context import RequestContext
from shipyard.pipelines.compiler import parse_spec
from shipyard.pipelines.models import MAX_SOURCE_ENTRIES, PipelineRun
from shipyard.server.api import params
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, request_context, server_state
from shipyard.validation import MAX_TAG_VALUE

router = APIRouter(prefix="/api/v1/projects/{project}/pipelines", tags=["pipelines"],
                   dependencies=[Depends(params.project_parameter)], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitRun(Strict):
    spec: str = Field(max_length=8_000_000, description="the compiled pipeline YAML")
    arguments: dict[str, Any] | None = Field(default=None, max_length=1000)
    enable_caching: bool = True
    parallelism: int | None = Field(default=None, ge=1, le=256)
    max_cache_age: float | None = Field(default=None, ge=0)
    executor: Literal["process", "ray"] = "process"
    source: dict[Annotated[str, Field(max_length=250)],
                 Annotated[str, Field(max_length=MAX_TAG_VALUE)]] | None = Field(
        default=None, max_length=MAX_SOURCE_ENTRIES,
        description="where the code that started the run came from: git.* and source.* "
        "tags, as runs record them")


class Cancel(Strict):
    force: bool = False


@router.post("/runs", response_model=PipelineRun)
def submit(body: SubmitRun, state: State, ctx: Ctx) -> PipelineRun:
    spec = parse_spec(body.spec, "spec")
    return pipelines.run_pipeline(
        state.store, state.artifacts, ctx, spec, body.arguments,
        enable_caching=body.enable_caching, parallelism=body.parallelism,
        max_cache_age=body.max_cache_age, submit=True, backend=body.executor,
        source=body.source, settings=state.settings,
    )


@router.get("/runs", response_model=list[PipelineRun])
def list_runs(
    state: State, ctx: Ctx,
    pipeline_name: Annotated[str | None, Query(max_length=128)] = None,
    run_state: Annotated[str | None, Query(alias="state", max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[PipelineRun]:
    return pipelines.list_pipeline_runs(state.store, ctx.project, pipeline_name=pipeline_name,
                                        state=run_state, limit=limit)


@router.get("/runs/{run_id}", response_model=PipelineRun)
def get_run(run_id: params.Id, state: State, ctx: Ctx) -> PipelineRun:
    return pipelines.get_pipeline_run(state.store, ctx.project, run_id)


@router.post("/runs/{run_id}/retry", response_model=PipelineRun)
def retry(run_id: params.Id, state: State, ctx: Ctx) -> PipelineRun:
    # Queued like a submitted run: a worker runs it, its steps isolated (never in here).
    return pipelines.retry_pipeline_run(state.store, state.artifacts, ctx, run_id,
                                        submit=True)


@router.post("/runs/{run_id}/cancel", response_model=PipelineRun)
def cancel(run_id: params.Id, body: Cancel, state: State, ctx: Ctx) -> PipelineRun:
    return pipelines.cancel_pipeline_run(state.store, ctx, run_id, force=body.force)


@router.get("/runs/{run_id}/log")
def task_log(run_id: params.Id, state: State, ctx: Ctx,
             task: Annotated[str, Query(max_length=512)]) -> dict[str, str]:
    return {"task": task, "log": pipelines.get_task_log(state.store, state.artifacts,
                                                        ctx.project, run_id, task)}
