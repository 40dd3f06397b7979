"""Models: the registry's models with their aliases and the latest version's status, and a
model's page: versions, metrics across versions, alias history (who, when, why, and the
promotion decision) and a version's signature."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.errors import ShipyardError
from shipyard.registry import aliases as registry_aliases
from shipyard.registry import service as registry
from shipyard.registry.models import ModelVersion, RegisteredModel
from shipyard.server.api import params
from shipyard.server.console.rendering import render
from shipyard.server.state import ServerState, server_state
from shipyard.serving import service as serving

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/models"
PER_PAGE = 50
MAX_CHART_METRICS = 8


@router.get(PAGE)
def models_page(
    request: Request, project: str, state: State,
    filter: Annotated[str, Query(max_length=params.FILTER_MAX)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    error: ShipyardError | None = None
    try:
        found = registry.list_models(state.store, project, filter or None,
                                     deployments=state.deployments)
    except ShipyardError as exc:
        if exc.field is None:
            raise
        error, found = exc, []
    shown = found[(page - 1) * PER_PAGE: page * PER_PAGE]
    latest = {m.name: _latest(state, project, m) for m in shown}
    return render(request, "models.html", {
        "section": "models", "models": shown, "latest": latest, "filter": filter,
        "page": page, "more": len(found) > page * PER_PAGE, "total": len(found),
        "error": error.message if error else None,
    }, status_code=400 if error else 200)


@router.get(PAGE + "/{name}")
def model_page(
    request: Request, project: str, name: params.Name, state: State,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    model = registry.get_model(state.store, project, name)
    versions = registry.list_versions(state.store, project, name,
                                      deployments=state.deployments)
    chosen = next((v for v in versions if v.version == version), None) if version else (
        versions[0] if versions else None)
    if version is not None and chosen is None:
        chosen = registry.get_model_version(state.store, project, name, version,
                                            deployments=state.deployments)
    history = registry_aliases.alias_history(state.store, project, name)
    return render(request, "model.html", {
        "section": "models", "model": model, "versions": versions, "chosen": chosen,
        "history": list(reversed(history)), "chart": _metrics_chart(versions),
        "deployed_on": _deployed_on(state, project, name),
    })


def _deployed_on(state: ServerState, project: str, model: str) -> dict[int, list[str]]:
    """Version number -> the endpoints serving it (with their traffic share)."""
    found: dict[int, list[str]] = {}
    for endpoint in serving.list_endpoints(state.store, project):
        for d in endpoint.deployments:
            if d.model == model:
                found.setdefault(d.version, []).append(
                    f"{endpoint.name} ({d.traffic_percentage}%)")
    return found


def _latest(state: ServerState, project: str, model: RegisteredModel) -> ModelVersion | None:
    if model.latest_version is None:
        return None
    return registry.get_model_version(state.store, project, model.name, model.latest_version,
                                      deployments=state.deployments)


def _metrics_chart(versions: list[ModelVersion]) -> dict[str, Any] | None:
    """One line per metric over version numbers (oldest first); None with fewer than two
    versions carrying metrics."""
    ordered = sorted((v for v in versions if v.metrics), key=lambda v: v.version)
    if len(ordered) < 2:
        return None
    keys = sorted({k for v in ordered for k in v.metrics})[:MAX_CHART_METRICS]
    return {
        "title": "Metrics across versions", "x_title": "version", "y_title": "",
        "layout": {"xaxis": {"title": {"text": "version"}, "dtick": 1}},
        "traces": [{"x": [v.version for v in ordered if key in v.metrics],
                    "y": [v.metrics[key] for v in ordered if key in v.metrics],
                    "type": "scatter", "mode": "lines+markers", "name": key}
                   for key in keys],
    }


__all__ = ["router"]
