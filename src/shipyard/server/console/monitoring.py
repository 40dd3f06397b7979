"""Monitoring: a project's monitors with their open alerts, and a monitor's page: each
feature's drift value over time against its threshold (skew from the baseline, and drift
from the earlier windows where judged), prediction drift, the windows it judged, and its
alerts with their state; each feature's reference (baseline) against its current (newest
window) distribution, and the performance measured from ground truth (and, for a monitor
with a performance estimator, estimated without labels, with its band) over the windows
(``monitor_charts``). Read through ``monitoring.monitors`` (``list_monitors``,
``get_monitor``, ``history``, ``list_alerts``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shipyard.errors import InvalidArgument
from shipyard.lineage import queries as lineage
from shipyard.monitoring import monitors as service
from shipyard.monitoring.config import check_config
from shipyard.monitoring.models import MonitorRun
from shipyard.security.roles import Permission
from shipyard.server.api import params
from shipyard.server.console import monitor_charts
from shipyard.server.console.baselines import DATASET_TYPE, baseline_profile
from shipyard.server.console.forms import checked_form, text
from shipyard.server.console.rendering import render
from shipyard.server.console.session import may
from shipyard.server.state import ServerState, request_context, server_state
from shipyard.serving import service as serving

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/monitors"
RUNS = 200  # windows read for the charts (newest)
RUNS_SHOWN = 50  # rows of the runs table
MAX_CHARTS = 12  # features charted: the most drifted (score over threshold) first
ALERTS = 100
DATASETS = 100  # dataset artifacts offered as a new monitor's baseline (newest)


@router.get(PAGE)
def monitors_page(request: Request, project: str, state: State) -> HTMLResponse:
    store = state.store
    found = service.list_monitors(store, project)
    alerts = service.list_alerts(store, project, limit=ALERTS)
    open_alerts: dict[str, int] = {}
    for alert in alerts:
        if alert.state == "open":
            open_alerts[alert.monitor] = open_alerts.get(alert.monitor, 0) + 1
    may_write = may(request, Permission.WRITE)
    return render(request, "monitors.html", {
        "section": "monitors", "monitors": found, "alerts": alerts,
        "open_alerts": open_alerts, "may_write": may_write,
        "endpoints": [e.name for e in serving.list_endpoints(store, project)],
        "datasets": lineage.list_artifacts(store, project, type=DATASET_TYPE,
                                           limit=DATASETS),
    })


@router.post(PAGE)
async def create_monitor(request: Request, project: str, state: State) -> Response:
    """The create form: a monitor on an endpoint, its baseline profiled from a dataset
    artifact of the project, as ``POST .../monitors`` creates one (the role editor)."""
    form = await checked_form(request)
    name = text(form, "name", max_length=128)
    endpoint = text(form, "endpoint", max_length=128)
    dataset = text(form, "baseline", max_length=64)
    features = [f.strip() for f in text(form, "features", max_length=4096,
                                         required=False).split(",") if f.strip()]
    threshold = text(form, "threshold", max_length=32, required=False)
    try:
        limit = float(threshold) if threshold else None
    except ValueError:
        raise InvalidArgument(f"threshold must be a number, got {threshold!r}",
                              field="threshold") from None
    config = check_config(
        interval=text(form, "interval", max_length=32, required=False, default="1h"),
        window=None, sampling_rate=1.0, thresholds=limit, objectives=None, alert=None,
        alert_after=None, drift_windows=1, features=features or None,
        categorical_features=None, feature_importance=None)
    ctx = request_context(request)
    profile_bytes, uri = await run_in_threadpool(baseline_profile, state.store,
                                                 state.artifacts, project, dataset)
    await run_in_threadpool(service.create_monitor, state.store, ctx, name,
                            endpoint=endpoint, config=config, baseline_profile=profile_bytes,
                            baseline_uri=uri)
    return RedirectResponse(f"/console/projects/{project}/monitors/{name}", status_code=303)


@router.post(PAGE + "/{name}/pause")
async def pause_monitor(request: Request, project: str, name: params.Name, state: State
                        ) -> Response:
    await checked_form(request)
    await run_in_threadpool(service.pause_monitor, state.store, request_context(request), name)
    return RedirectResponse(f"/console/projects/{project}/monitors/{name}", status_code=303)


@router.post(PAGE + "/{name}/resume")
async def resume_monitor(request: Request, project: str, name: params.Name, state: State
                         ) -> Response:
    await checked_form(request)
    await run_in_threadpool(service.resume_monitor, state.store, request_context(request),
                            name)
    return RedirectResponse(f"/console/projects/{project}/monitors/{name}", status_code=303)


@router.post(PAGE + "/{name}/run")
async def run_monitor(request: Request, project: str, name: params.Name, state: State
                      ) -> Response:
    """Judge the window ending now, in this request, as ``POST .../monitors/NAME/run``."""
    await checked_form(request)
    await run_in_threadpool(service.run_monitor, state.store, state.settings, project, name)
    return RedirectResponse(f"/console/projects/{project}/monitors/{name}#runs-card",
                            status_code=303)


@router.get(PAGE + "/{name}")
def monitor_page(request: Request, project: str, name: params.Name, state: State,
                 feature: Annotated[str, Query(max_length=256)] = "") -> HTMLResponse:
    store = state.store
    monitor = service.get_monitor(store, project, name)
    runs = service.history(store, project, name, limit=RUNS)
    alerts = service.list_alerts(store, project, monitor=name, limit=ALERTS)
    charts = _feature_charts(list(reversed(runs)), only=feature or None)
    latest = next((r for r in runs if r.state == "succeeded"), None)
    # The reference and current distributions: the charted features in the drift charts'
    # order, then the monitor's other features.
    baseline = monitor_charts.baseline_of(store, project, name)
    charted = [c["feature"] for c in charts[:MAX_CHARTS]]
    shown = [*charted, *(f for f in monitor.features if f not in charted
                         and (not feature or f == feature))][:MAX_CHARTS]
    current, why_not = (monitor_charts.window_profile(state.settings, monitor, baseline, latest)
                        if latest is not None else (None, ""))
    return render(request, "monitor.html", {
        "section": "monitors", "monitor": monitor, "runs": runs[:RUNS_SHOWN],
        "run_total": len(runs), "alerts": alerts, "charts": charts[:MAX_CHARTS],
        "more_charts": max(0, len(charts) - MAX_CHARTS), "feature": feature,
        "prediction": _prediction_chart(list(reversed(runs))), "latest": latest,
        "distributions": monitor_charts.distribution_charts(baseline, current, shown),
        "current_missing": why_not if latest is not None else "",
        "performance": monitor_charts.performance_chart(monitor, list(reversed(runs))),
        "bins": monitor_charts.BINS,
        "may_write": may(request, Permission.WRITE), "may_run": may(request, Permission.RUN),
    })


def _feature_charts(runs: list[MonitorRun], only: str | None) -> list[dict[str, Any]]:
    """One chart per feature, oldest window first: its skew score (and drift score) at
    each window's end, and its threshold as a dashed line; the most drifted first."""
    series: dict[str, dict[str, list[Any]]] = {}
    for run in runs:
        if run.state != "succeeded":
            continue
        at = monitor_charts.axis_time(run.window_end)
        for feature, entry in (run.result.get("features") or {}).items():
            if (only is not None and feature != only) or not isinstance(entry, dict):
                continue
            found = series.setdefault(feature, {"x": [], "skew": [], "threshold": [],
                                                "drift": [], "metric": []})
            later = entry.get("drift") or {}
            found["x"].append(at)
            found["skew"].append(_number(entry.get("drift_score")))
            found["threshold"].append(_number(entry.get("threshold")))
            found["drift"].append(_number(later.get("value")))
            found["metric"].append(entry.get("metric"))
    charts: list[dict[str, Any]] = []
    for feature, found in series.items():
        metric = next((m for m in reversed(found["metric"]) if m), "")
        traces: list[dict[str, Any]] = [
            {"x": found["x"], "y": found["skew"], "name": "vs baseline", "type": "scatter",
             "mode": "lines+markers"},
            {"x": found["x"], "y": found["threshold"], "name": "threshold",
             "type": "scatter", "mode": "lines", "line": {"dash": "dash", "color": "#b3261e"}},
        ]
        if any(v is not None for v in found["drift"]):
            traces.insert(1, {"x": found["x"], "y": found["drift"],
                              "name": "vs earlier windows", "type": "scatter",
                              "mode": "lines+markers"})
        last_score, last_limit = found["skew"][-1], found["threshold"][-1]
        ratio = (last_score / last_limit if last_score is not None and last_limit
                 else 0.0)
        charts.append({"id": "", "feature": feature, "ratio": ratio,
                       "drifted": last_score is not None and last_limit is not None
                       and last_score > last_limit,
                       "spec": {"title": f"{feature} ({metric}, UTC times)" if metric
                                else feature, "y_title": metric or "drift", "traces": traces,
                                "layout": {"yaxis": {"rangemode": "tozero",
                                                     "title": {"text": metric or "drift"}}}}})
    charts.sort(key=lambda c: (-float(c["ratio"]), str(c["feature"])))
    for n, chart in enumerate(charts):
        chart["id"] = f"feature-{n}"
    return charts


def _prediction_chart(runs: list[MonitorRun]) -> dict[str, Any] | None:
    x, y, limit = [], [], []
    for run in runs:
        found = run.result.get("prediction") if run.state == "succeeded" else None
        if isinstance(found, dict) and found.get("value") is not None:
            x.append(monitor_charts.axis_time(run.window_end))
            y.append(_number(found.get("value")))
            limit.append(_number(found.get("threshold")))
    if not x:
        return None
    return {"id": "prediction-drift", "spec": {
        "title": "Prediction drift", "y_title": "drift", "traces": [
            {"x": x, "y": y, "name": "prediction", "type": "scatter", "mode": "lines+markers"},
            {"x": x, "y": limit, "name": "threshold", "type": "scatter", "mode": "lines",
             "line": {"dash": "dash", "color": "#b3261e"}}]}}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
