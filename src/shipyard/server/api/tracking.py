"""Experiments and runs: /api/v1/projects/{project}/experiments|runs."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shipyard.context import RequestContext
from shipyard.errors import DataCorruption, InvalidArgument, NotFound
from shipyard.server.api import params
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, request_context, server_state
from shipyard.tracking import artifacts as run_artifacts
from shipyard.tracking import search, service
from shipyard.tracking.filters import MAX_FILTER
from shipyard.tracking.models import Experiment, MetricPoint, RunArtifact, RunData, RunPage
from shipyard.tracking.points import MAX_BATCH_METRICS
from shipyard.validation import MAX_TAG_VALUE, check_name

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["tracking"],
                   dependencies=[Depends(params.project_parameter)], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]


# Tag values as shipyard.validation caps them.
TagValue = Annotated[str, Field(max_length=MAX_TAG_VALUE)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateExperiment(Strict):
    name: str = Field(max_length=128, pattern=params.NAME_PATTERN)


# Every list and mapping a body can grow declares the bound the service checks, so that an
# oversized one is refused before its entries are validated.
Tags = Annotated[dict[str, TagValue] | None, Field(max_length=service.MAX_BATCH_TAGS)]
Params = Annotated[dict[str, Any] | None, Field(max_length=service.MAX_BATCH_PARAMS)]


class CreateRun(Strict):
    experiment: str = Field(max_length=128, pattern=params.NAME_PATTERN)
    name: str | None = Field(default=None, max_length=128, pattern=params.NAME_PATTERN)
    tags: Tags = None
    params: Params = None


class MetricIn(Strict):
    key: str = Field(max_length=250, pattern=params.KEY_PATTERN)
    value: float
    # JSON-safe integers: every client (and JavaScript) reads them back exactly.
    step: int = Field(default=0, ge=0, le=2**53 - 1)
    timestamp: int | None = Field(default=None, ge=-(2**53 - 1), le=2**53 - 1)


class LogBatch(Strict):
    metrics: list[MetricIn] = Field(default_factory=list, max_length=MAX_BATCH_METRICS)
    params: Params = None
    tags: Tags = None


class Terminate(Strict):
    status: str = Field(default="FINISHED", max_length=16, pattern="^(FINISHED|FAILED|KILLED)$")


class Heartbeat(Strict):
    lease_seconds: float = Field(ge=service.MIN_LEASE_SECONDS, le=service.MAX_LEASE_SECONDS,
                                 description="how long the client vouches for the run")


class RunStatus(Strict):
    status: str


class SearchRuns(Strict):
    experiments: list[Annotated[str, Field(max_length=128)]] | None = Field(
        default=None, max_length=search.MAX_EXPERIMENTS)
    filter: str | None = Field(default=None, max_length=MAX_FILTER)
    # The service allows MAX_ORDER_BY distinct keys; repeats are dropped, so the list may be
    # longer, up to this hard cap.
    order_by: list[Annotated[str, Field(max_length=1000)]] | None = Field(
        default=None, max_length=search.MAX_ORDER_BY_ENTRIES,
        description=f"at most {search.MAX_ORDER_BY} distinct keys")
    max_results: int = Field(default=1000, ge=1, le=search.MAX_RESULTS)
    page_token: str | None = Field(default=None, max_length=search.MAX_PAGE_TOKEN)


@router.get("/experiments", response_model=list[Experiment])
def list_experiments(state: State, ctx: Ctx) -> list[Experiment]:
    return service.list_experiments(state.store, ctx.project)


@router.post("/experiments", response_model=Experiment)
def create_experiment(body: CreateExperiment, state: State, ctx: Ctx) -> Experiment:
    return service.get_or_create_experiment(state.store, ctx, body.name)


@router.post("/runs", response_model=RunData)
def create_run(body: CreateRun, state: State, ctx: Ctx) -> RunData:
    return service.create_run(state.store, ctx, body.experiment, name=body.name,
                              tags=body.tags, params=body.params)


@router.post("/runs:search", response_model=RunPage)
def search_runs(body: SearchRuns, state: State, ctx: Ctx) -> RunPage:
    return search.search_runs(state.store, ctx.project, experiments_=body.experiments,
                              filter=body.filter, order_by=body.order_by,
                              max_results=body.max_results, page_token=body.page_token)


@router.get("/runs/{run_id}", response_model=RunData)
def get_run(run_id: params.Id, state: State, ctx: Ctx) -> RunData:
    return service.get_run(state.store, ctx.project, run_id)


@router.post("/runs/{run_id}/log-batch", status_code=204)
def log_batch(run_id: params.Id, body: LogBatch, state: State, ctx: Ctx) -> None:
    points = [(m.key, m.value, m.step) if m.timestamp is None
              else (m.key, m.value, m.step, m.timestamp) for m in body.metrics]
    service.log_batch(state.store, ctx, run_id, metrics=points, params=body.params,
                      tags=body.tags)


@router.post("/runs/{run_id}/terminate", response_model=RunData)
def terminate(run_id: params.Id, body: Terminate, state: State, ctx: Ctx) -> RunData:
    return service.set_terminated(state.store, ctx, run_id, body.status)


@router.post("/runs/{run_id}/heartbeat", response_model=RunStatus)
def heartbeat(run_id: params.Id, body: Heartbeat, state: State, ctx: Ctx) -> RunStatus:
    """The run's client is alive; a RUNNING run whose client stops beating ends KILLED."""
    return RunStatus(status=service.heartbeat(state.store, ctx, run_id, body.lease_seconds))


@router.get("/runs/{run_id}/metrics/history", response_model=list[MetricPoint])
def metric_history(
    run_id: params.Id, state: State, ctx: Ctx,
    key: Annotated[str, Query(max_length=250, pattern=params.KEY_PATTERN)],
) -> list[MetricPoint]:
    return service.metric_history(state.store, ctx.project, run_id, key)


# The upload takes the file as the whole body or as the one part of a form; FastAPI cannot
# declare a body it does not parse itself, so the document is written out here.
# Not required: an empty body is an empty file (``curl -T empty.txt`` sends no Content-Type
# and no bytes), which is stored like any other.
_UPLOAD_BODY: dict[str, Any] = {
    "required": False,
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
            "additionalProperties": False,
        }},
    },
}


@router.put("/runs/{run_id}/artifacts/{name}", response_model=RunArtifact,
            summary="Upload Artifact: the raw body, or the multipart part 'file', as is",
            openapi_extra={"requestBody": _UPLOAD_BODY})
async def upload_artifact(
    run_id: params.Id,
    name: params.Name,
    request: Request,
    state: State,
    ctx: Ctx,
    kind: Annotated[str, Query(pattern="^(file|tree)$", max_length=4)] = "file",
) -> RunArtifact:
    """Store a file with the run under ``name``; ``kind=tree`` for a tar of a directory.

    The file is either the whole body (``application/octet-stream``, or no Content-Type:
    ``curl -T f.csv URL``) or the one part named ``file`` of a ``multipart/form-data``
    form (``curl -F file=@f.csv URL``); either way exactly the file's bytes are stored. An
    ``X-Content-SHA256`` header, when sent, must match those bytes or nothing is stored.
    """
    check_name(name, "name")
    expected = request.headers.get("x-content-sha256")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    with tempfile.NamedTemporaryFile(prefix="shipyard-upload-") as spool:
        hasher = hashlib.sha256()
        async for chunk in _file_chunks(request, multipart=media == "multipart/form-data"):
            hasher.update(chunk)
            await run_in_threadpool(spool.write, chunk)
        await run_in_threadpool(spool.flush)
        if expected is not None and hasher.hexdigest() != expected.lower():
            raise InvalidArgument(
                "the uploaded bytes do not match X-Content-SHA256; nothing was stored",
                field="body",
            )
        return await run_in_threadpool(
            run_artifacts.log_artifact_file, state.store, state.artifacts, ctx, run_id,
            spool.name, name=name, kind=kind,
        )


async def _file_chunks(request: Request, *, multipart: bool) -> AsyncIterator[bytes]:
    """The uploaded file's bytes: the raw body, or the form's part named ``file``."""
    if not multipart:
        async for chunk in request.stream():
            yield chunk
        return
    # Parsed by Starlette (files spooled to disk past 1 MiB); one more part than allowed is
    # enough to tell that the form is not just the file.
    async with request.form(max_files=2, max_fields=1) as form:
        names = list(form.keys())
        upload = form.get("file")
        if names != ["file"] or isinstance(upload, str) or upload is None:
            raise InvalidArgument(
                "a multipart upload carries one part, named 'file', holding the file "
                f"(got {', '.join(repr(n[:40]) for n in names) or 'no parts'})",
                field="file",
            )
        while chunk := await upload.read(1 << 20):
            yield chunk


@router.get("/runs/{run_id}/artifacts/{name}")
def download_artifact(run_id: params.Id, name: params.Name, state: State, ctx: Ctx
                      ) -> StreamingResponse:
    check_name(name, "name")
    art = service.get_run_artifact(state.store, ctx.project, run_id, name)
    reader = run_artifacts.open_artifact(state.artifacts, art)

    def chunks() -> Iterator[bytes]:
        with reader:
            try:
                while chunk := reader.read(1 << 20):
                    yield chunk
            except DataCorruption:
                # Headers are gone already: end the stream short so the client's digest
                # check fails instead of handing it wrong bytes.
                return

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers={
        "X-Content-SHA256": art.digest if art.kind == "file" else "",
        "X-Artifact-Kind": art.kind,
        "Content-Disposition": f'attachment; filename="{name}"',
    })


__all__ = ["NotFound", "router"]
