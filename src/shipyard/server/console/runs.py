"""Experiments and runs: a page of runs searched with ``search_runs``'s filter language,
a run's page with its params, metrics, tags, artifacts and metric-over-step charts, and
runs compared side by side (a parameter diff and overlaid charts)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.errors import InvalidArgument, ShipyardError
from shipyard.ids import check_id
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
MAX_COMPARE = 10


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


# Declared before the run page, whose {run_id} would otherwise take "compare".
@router.get(PAGE + "/compare")
def compare_page(
    request: Request, project: str, state: State,
    run: Annotated[list[str], Query(max_length=MAX_COMPARE)] = [],  # noqa: B006
) -> HTMLResponse:
    """Runs side by side: their params (those that differ first), metrics, and one chart
    per metric with each run's series overlaid."""
    ids = list(dict.fromkeys(run))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise InvalidArgument(f"pick 2 to {MAX_COMPARE} runs to compare (got {len(ids)})",
                              field="run")
    for run_id in ids:  # every one checked before any is looked up
        check_id(run_id, "run_id")
    found = [tracking.get_run(state.store, project, run_id) for run_id in ids]
    param_keys = sorted({k for r in found for k in r.params})
    differ = [k for k in param_keys if len({r.params.get(k) for r in found}) > 1]
    same = [k for k in param_keys if k not in differ]
    metric_keys = sorted({k for r in found for k in r.metrics})
    charts: list[dict[str, Any]] = []
    for key in metric_keys[:MAX_CHARTS]:
        traces = []
        for one in found:
            if key not in one.metrics:
                continue
            points = _thin(tracking.metric_history(state.store, project, one.id, key))
            traces.append({"x": [p.step for p in points], "y": [p.value for p in points],
                           "type": "scatter", "mode": "lines+markers" if len(points) < 60
                           else "lines", "name": one.name})
        if any(len(t["x"]) > 1 for t in traces):
            charts.append({"id": f"chart-{len(charts)}",
                           "spec": {"title": key, "x_title": "step", "y_title": key,
                                    "traces": traces}})
    return render(request, "compare.html", {
        "section": "runs", "runs": found, "differ": differ, "same": same,
        "metric_keys": metric_keys, "charts": charts,
    })


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
