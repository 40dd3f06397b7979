"""Monitors: /api/v1/projects/{project}/monitors (create, list, show, delete, run, runs,
report), /monitor-alerts, and /endpoints/{name}/monitoring-stats, over
``monitoring.monitors`` (REST twins of ``sy.create_monitor`` and the ``Monitor`` methods).

The baseline profile comes as base64 of ``DataProfile.to_bytes()`` (the SDK profiles the
training data in the caller's process); the configuration is checked by the same
``monitoring.config.check_config`` as in local mode (400 naming the field)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.monitoring import monitors
from shipyard.monitoring.config import (
    MAX_CHANNELS,
    MAX_ESTIMATOR_BYTES,
    MAX_FEATURES,
    MAX_INTERVAL,
    MAX_URL,
    MIN_INTERVAL,
    check_config,
)
from shipyard.monitoring.models import Alert, Monitor, MonitorRun
from shipyard.monitoring.monitor_report import render_history
from shipyard.server.api import params
from shipyard.server.api.events import Whole, whole
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState, request_context, server_state

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["monitoring"],
                   dependencies=[Depends(params.project_parameter)], responses=PROBLEM_RESPONSES)
State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]
NameField = Annotated[str, Field(min_length=1, max_length=128, pattern=params.NAME_PATTERN)]
Column = Annotated[str, Field(min_length=1, max_length=256)]
MAX_PROFILE_TEXT = (monitors.MAX_BASELINE_BYTES * 4) // 3 + 4


def _number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be a number")  # noqa: TRY004
    return value


Number = Annotated[float, BeforeValidator(_number)]
Duration = Annotated[str, Field(min_length=1, max_length=32)] | \
    Annotated[int, Field(ge=MIN_INTERVAL, le=MAX_INTERVAL), BeforeValidator(whole)]


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Annotated[str, Field(min_length=1, max_length=16)]
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL)] | None = None
    to: Annotated[str, Field(min_length=3, max_length=320)] | None = None


class NewMonitor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: NameField
    endpoint: NameField
    baseline_profile: str = Field(min_length=4, max_length=MAX_PROFILE_TEXT)
    baseline_uri: str | None = Field(default=None, min_length=1, max_length=1024)
    interval: Duration = "1h"
    window: Duration | None = None
    sampling_rate: Number = Field(default=1.0, gt=0, le=1)
    thresholds: Number | dict[Column, Number] | None = None
    objectives: dict[Annotated[str, Field(min_length=1, max_length=32)], Number] | None = None
    alert: list[Annotated[str, Field(min_length=1, max_length=MAX_URL + 8)] | Channel] | None \
        = Field(default=None, max_length=MAX_CHANNELS)
    alert_after: list[Annotated[int, Field(ge=1, le=100), BeforeValidator(whole)]] | None = Field(
        default=None, min_length=2, max_length=2)
    drift_windows: Whole = Field(default=1, ge=1, le=168)
    attribution_rows: Whole = Field(default=200, ge=0, le=1000)
    features: list[Column] | None = Field(default=None, max_length=MAX_FEATURES)
    categorical_features: list[Column] | None = Field(default=None, max_length=MAX_FEATURES)
    feature_importance: dict[Column, Number] | None = None
    # A fitted performance estimator's JSON document, as text (numbers and XGBoost's JSON).
    performance_estimator: str | None = Field(default=None, min_length=2,
                                              max_length=MAX_ESTIMATOR_BYTES)


def _profile_bytes(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("baseline_profile must be base64 of a profile's bytes",
                              field="baseline_profile") from None


@router.get("/monitors", response_model=list[Monitor])
def list_monitors(state: State, ctx: Ctx, endpoint: params.OptionalName = None
                  ) -> list[Monitor]:
    return monitors.list_monitors(state.store, ctx.project, endpoint)


@router.post("/monitors", response_model=Monitor)
def create_monitor(body: NewMonitor, state: State, ctx: Ctx) -> Monitor:
    """A monitor on an endpoint's request log (see ``sy.create_monitor``)."""
    alert = None if body.alert is None else [
        a if isinstance(a, str) else a.model_dump(exclude_none=True) for a in body.alert]
    config = check_config(
        interval=body.interval, window=body.window, sampling_rate=body.sampling_rate,
        thresholds=body.thresholds, objectives=body.objectives, alert=alert,
        alert_after=body.alert_after, drift_windows=body.drift_windows,
        features=body.features, categorical_features=body.categorical_features,
        feature_importance=body.feature_importance, attribution_rows=body.attribution_rows,
        performance_estimator=body.performance_estimator)
    return monitors.create_monitor(state.store, ctx, body.name, endpoint=body.endpoint,
                                   baseline_profile=_profile_bytes(body.baseline_profile),
                                   config=config, baseline_uri=body.baseline_uri)


@router.get("/monitors/{name}", response_model=Monitor)
def get_monitor(name: params.Name, state: State, ctx: Ctx) -> Monitor:
    return monitors.get_monitor(state.store, ctx.project, name)


@router.delete("/monitors/{name}", status_code=204)
def delete_monitor(name: params.Name, state: State, ctx: Ctx) -> Response:
    monitors.delete_monitor(state.store, ctx, name)
    return Response(status_code=204)


@router.post("/monitors/{name}/pause", response_model=Monitor)
def pause_monitor(name: params.Name, state: State, ctx: Ctx) -> Monitor:
    """Stop judging windows on the schedule (a manual run still runs)."""
    return monitors.pause_monitor(state.store, ctx, name)


@router.post("/monitors/{name}/resume", response_model=Monitor)
def resume_monitor(name: params.Name, state: State, ctx: Ctx) -> Monitor:
    """Judge windows on the schedule again, from the first window ending after now."""
    return monitors.resume_monitor(state.store, ctx, name)


@router.post("/monitors/{name}/run", response_model=MonitorRun)
def run_monitor(name: params.Name, state: State, ctx: Ctx) -> MonitorRun:
    """Judge the window ending now, in this request (the schedule is left as it is)."""
    return monitors.run_monitor(state.store, state.settings, ctx.project, name)


Limit = Annotated[int, Query(ge=1, le=monitors.MAX_HISTORY)]


@router.get("/monitors/{name}/runs", response_model=list[MonitorRun])
def history(name: params.Name, state: State, ctx: Ctx, limit: Limit = 100
            ) -> list[MonitorRun]:
    """The monitor's runs, newest window first."""
    return monitors.history(state.store, ctx.project, name, limit)


@router.get("/monitors/{name}/report", response_class=HTMLResponse)
def report(name: params.Name, state: State, ctx: Ctx, limit: Limit = 100) -> HTMLResponse:
    """The monitor's HTML report over its newest ``limit`` runs (plotly.js embedded)."""
    monitor = monitors.get_monitor(state.store, ctx.project, name)
    page = render_history(monitor, monitors.history(state.store, ctx.project, name, limit))
    return HTMLResponse(page)



@router.get("/monitor-alerts", response_model=list[Alert])
def list_alerts(state: State, ctx: Ctx, monitor: params.OptionalName = None,
                alert_state: Annotated[str | None, Query(alias="state", max_length=8,
                                                         pattern="^(open|resolved)$")] = None,
                limit: Limit = 100) -> list[Alert]:
    """Alerts, newest first."""
    return monitors.list_alerts(state.store, ctx.project, monitor=monitor, state=alert_state,
                                limit=limit)


@router.get("/endpoints/{name}/monitoring-stats")
def monitoring_stats(name: params.Name, state: State, ctx: Ctx,
                     monitor: params.OptionalName = None) -> dict[str, Any]:
    """The newest run of the endpoint's monitors (``feature_metrics`` -> feature ->
    ``drift_score``, as seed 002 reads it)."""
    return monitors.monitoring_stats(state.store, ctx.project, name, monitor)
