"""Pipelines: the runs of a project, and a run's page: its DAG laid out on the server and
drawn as SVG (each task's state, duration and cache hit), its tasks, a task's log, and the
retry and cancel buttons (the role ``user``, as the API's twins; disabled for others).

While a run is going its page polls ``.../live`` (a small JSON of the run's and each task's
state, the same reading as the page) every ``POLL_SECONDS`` and updates in place
(``static/console.js``); without JavaScript it reloads itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from shipyard import pipelines
from shipyard.pipelines.models import RUN_STATES, TERMINAL_RUN_STATES, PipelineRun, TaskInfo
from shipyard.pipelines.runs import read_run, read_spec
from shipyard.pipelines.spec import PipelineSpec, upstream_tasks
from shipyard.security.roles import Permission
from shipyard.server.api import params
from shipyard.server.console.layout import layered
from shipyard.server.console.rendering import duration, render, seconds_between
from shipyard.server.console.session import check_csrf, may, read_form
from shipyard.server.state import ServerState, request_context, server_state

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/pipelines"
MAX_LOG = 256 * 1024  # characters of a log shown; the end of a longer one
LIMITS = (100, 500, 2000)
RETRYABLE = frozenset({"FAILED", "CANCELLED"})  # what retry_pipeline_run takes
POLL_SECONDS = 2


@dataclass(frozen=True)
class Node:
    """A task of the spec as drawn: its iterations (``name[i]``) folded into one box."""

    name: str
    state: str
    seconds: float | None
    cached: bool
    runs: int
    log_task: str | None

    @property
    def label(self) -> str:
        """The line under its name: state, iterations, duration, cache hit."""
        parts = [self.state.lower() + (f" \u00d7{self.runs}" if self.runs > 1 else "")]
        if self.seconds is not None:
            parts.append(duration(self.seconds))
        if self.cached:
            parts.append("cached")
        return " · ".join(parts)


@router.get(PAGE)
def runs_page(
    request: Request, project: str, state: State,
    run_state: Annotated[str, Query(alias="state", max_length=16)] = "",
    pipeline: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=LIMITS[-1])] = LIMITS[0],
) -> HTMLResponse:
    found = pipelines.list_pipeline_runs(state.store, project, pipeline_name=pipeline or None,
                                         state=run_state or None, limit=limit + 1)
    more = len(found) > limit
    return render(request, "pipelines.html", {
        "section": "pipelines", "runs": found[:limit], "more": more, "limit": limit,
        "next_limit": next((n for n in LIMITS if n > limit), None),
        "run_state": run_state, "pipeline": pipeline, "states": RUN_STATES,
        "durations": {r.id: seconds_between(r.started_at, r.finished_at) for r in found},
    })


@router.get(PAGE + "/{run_id}")
def run_page(
    request: Request, project: str, run_id: params.Id, state: State,
    task: Annotated[str, Query(max_length=512)] = "",
) -> HTMLResponse:
    with state.store.read() as conn:
        run = read_run(conn, project, run_id)
        spec = read_spec(conn, run_id)
    nodes, edges = _graph(run, spec)
    drawing = layered([n.name for n in nodes], edges)
    log: str | None = None
    truncated = False
    if task:
        log = pipelines.get_task_log(state.store, state.artifacts, project, run_id, task)
        truncated = len(log) > MAX_LOG
        log = log[-MAX_LOG:]
    may_run = may(request, Permission.RUN)
    ended = run.state in TERMINAL_RUN_STATES
    return render(request, "pipeline_run.html", {
        "section": "pipelines", "run": run, "drawing": drawing,
        "nodes": {n.name: n for n in nodes},
        "tasks": sorted(run.tasks.values(), key=_task_order),
        "durations": {t.name: seconds_between(t.started_at, t.finished_at)
                      for t in run.tasks.values()},
        "task": task, "log": log, "log_truncated": truncated,
        "may_run": may_run, "ended": ended, "retryable": run.state in RETRYABLE,
        "duration": seconds_between(run.started_at, run.finished_at),
        "refresh": not ended, "poll_seconds": POLL_SECONDS,
    })


@router.get(PAGE + "/{run_id}/live")
def run_live(request: Request, project: str, run_id: params.Id, state: State) -> JSONResponse:
    """What the run's page shows that changes while it runs, for the page to poll."""
    with state.store.read() as conn:
        run = read_run(conn, project, run_id)
        spec = read_spec(conn, run_id)
    nodes, _ = _graph(run, spec)
    ended = run.state in TERMINAL_RUN_STATES
    return JSONResponse({
        "state": run.state, "ended": ended, "error": run.error,
        "retryable": run.state in RETRYABLE,
        "duration": duration(seconds_between(run.started_at, run.finished_at)),
        "nodes": {n.name: {"state": n.state, "label": n.label} for n in nodes},
        "tasks": {t.name: {"state": t.state, "cached": t.cached, "attempts": t.attempts,
                           "duration": duration(seconds_between(t.started_at,
                                                                t.finished_at))}
                  for t in run.tasks.values()},
    }, headers={"Cache-Control": "no-store"})


@router.post(PAGE + "/{run_id}/retry")
async def retry(request: Request, project: str, run_id: params.Id, state: State) -> Response:
    check_csrf(request, await read_form(request))
    # Queued like the API's retry (the run again, in place): a worker runs it, its steps
    # isolated (never in here).
    await run_in_threadpool(pipelines.retry_pipeline_run, state.store, state.artifacts,
                            request_context(request), run_id, submit=True)
    return RedirectResponse(f"/console/projects/{project}/pipelines/{run_id}", status_code=303)


@router.post(PAGE + "/{run_id}/cancel")
async def cancel(request: Request, project: str, run_id: params.Id, state: State) -> Response:
    check_csrf(request, await read_form(request))
    await run_in_threadpool(pipelines.cancel_pipeline_run, state.store,
                            request_context(request), run_id)
    return RedirectResponse(f"/console/projects/{project}/pipelines/{run_id}", status_code=303)


def _graph(run: PipelineRun, spec: dict[str, Any]) -> tuple[list[Node], list[tuple[str, str]]]:
    """The spec's tasks with the run's states, and the edges between them. A spec this
    release cannot read still shows its tasks, without edges."""
    edges: list[tuple[str, str]] = []
    names: list[str] = []
    try:
        parsed = PipelineSpec.model_validate(spec)
    except ValidationError:
        parsed = None
    if parsed is not None:
        for name, task in parsed.tasks.items():
            names.append(name)
            edges.extend((up, name) for up in upstream_tasks(parsed, task))
    iterations: dict[str, list[TaskInfo]] = {}
    for info in run.tasks.values():
        base = info.name.split("[", 1)[0]
        if base not in names:
            names.append(base)
        iterations.setdefault(base, []).append(info)
    return [_node(name, iterations.get(name, [])) for name in names], edges


def _node(name: str, infos: list[TaskInfo]) -> Node:
    if not infos:
        return Node(name, "NOT RUN", None, False, 0, None)
    states = {i.state for i in infos}
    for candidate in ("FAILED", "RUNNING", "CANCELLED", "PENDING", "SUCCEEDED", "SKIPPED"):
        if candidate in states:
            shown = candidate
            break
    else:
        shown = infos[0].state
    starts = [i.started_at for i in infos if i.started_at]
    ends = [i.finished_at for i in infos if i.finished_at]
    seconds = seconds_between(min(starts), max(ends)) if starts and ends else None
    first = sorted(infos, key=_task_order)[0]
    return Node(name, shown, seconds, all(i.cached for i in infos), len(infos), first.name)


def _task_order(info: TaskInfo) -> tuple[Any, ...]:
    return (info.started_at is None, info.started_at or 0, info.name)


__all__ = ["router"]
