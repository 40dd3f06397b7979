"""Experiments and runs: a page of runs searched with ``search_runs``'s filter language,
and a run's page with its params, metrics, tags, artifacts and metric-over-step charts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.errors import ShipyardError
from shipyard.server.api import params
from shipyard.server.console.rendering import render, seconds_between
from shipyard.server.state import ServerState, server_state
from shipyard.tracking import search
from shipyard.tracking import service as tracking
from shipyard.tracking.models import RunPage

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/runs"
PAGE_SIZES = (25, 50, 100, 200)
MAX_COLUMNS = 8  # metric (and param) columns shown, from the keys the page's runs have
MAX_CHARTS = 24
MAX_POINTS = 2000  # per chart: a longer history is thinned, evenly, keeping the last point


@router.get(PAGE)
def runs_page(
    request: Request, project: str, state: State,
    filter: Annotated[str, Query(max_length=params.FILTER_MAX)] = "",
    order: Annotated[str, Query(max_length=300)] = "",
    experiment: Annotated[str, Query(max_length=128)] = "",
    page: Annotated[str, Query(max_length=search.MAX_PAGE_TOKEN)] = "",
    size: Annotated[int, Query(ge=1, le=PAGE_SIZES[-1])] = 50,
) -> HTMLResponse:
    error: ShipyardError | None = None
    try:
        found = search.search_runs(
            state.store, project, experiments_=[experiment] if experiment else None,
            filter=filter or None, order_by=[order] if order else None,
            max_results=size, page_token=page or None)
    except ShipyardError as exc:
        if exc.field is None:  # not the caller's input: the error page says what broke
            raise
        error, found = exc, RunPage(runs=[])
    metric_keys = _keys(r.metrics for r in found.runs)
    param_keys = _keys(r.params for r in found.runs)
    return render(request, "runs.html", {
        "section": "runs",
        "runs": found.runs,
        "next_page": found.next_page_token,
        "filter": filter, "order": order, "experiment": experiment, "page": page,
        "size": size, "sizes": PAGE_SIZES,
        "experiments": [e.name for e in tracking.list_experiments(state.store, project)],
        "metric_keys": metric_keys, "param_keys": param_keys,
        "error": error.message if error else None,
        "error_field": error.field if error else None,
        "durations": {r.id: seconds_between(r.start_time, r.end_time) for r in found.runs},
    }, status_code=400 if error else 200)


@router.get(PAGE + "/{run_id}")
def run_page(request: Request, project: str, run_id: params.Id, state: State
             ) -> HTMLResponse:
    run = tracking.get_run(state.store, project, run_id)
    charts: list[dict[str, Any]] = []
    for key in sorted(run.metrics)[:MAX_CHARTS]:
        history = tracking.metric_history(state.store, project, run_id, key)
        if len(history) < 2:
            continue
        points = _thin(history)
        charts.append({
            "id": f"chart-{len(charts)}",
            "spec": {"title": key, "x_title": "step", "y_title": key,
                     "traces": [{"x": [p.step for p in points], "y": [p.value for p in points],
                                 "type": "scatter", "mode": "lines+markers" if len(points) < 60
                                 else "lines", "name": key}]},
        })
    return render(request, "run.html", {
        "section": "runs", "run": run, "charts": charts,
        "duration": seconds_between(run.start_time, run.end_time),
        "more_metrics": max(0, len(run.metrics) - MAX_CHARTS),
    })


def _keys(mappings: Any) -> list[str]:
    seen: dict[str, None] = {}
    for mapping in mappings:
        for key in mapping:
            seen.setdefault(key, None)
    return sorted(seen)[:MAX_COLUMNS]


def _thin(points: list[Any]) -> list[Any]:
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / (MAX_POINTS - 1)
    kept = [points[int(i * stride)] for i in range(MAX_POINTS - 1)]
    return [*kept, points[-1]]


__all__ = ["router"]
