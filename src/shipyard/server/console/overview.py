"""The overview page: counts and recent activity of a project, with the command to run
first where there is nothing yet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard import pipelines
from shipyard.pipelines.counts import count_pipeline_runs
from shipyard.registry import service as registry
from shipyard.server.console.rendering import render
from shipyard.server.state import ServerState, server_state
from shipyard.tracking import search
from shipyard.tracking import service as tracking
from shipyard.tracking.counts import count_runs

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}"
RECENT = 6


@router.get(PAGE)
def overview(request: Request, project: str, state: State) -> HTMLResponse:
    store = state.store
    runs = count_runs(store, project)
    pipeline_runs = count_pipeline_runs(store, project)
    models = registry.list_models(store, project, deployments=state.deployments)
    recent_models = sorted(models, key=lambda m: m.updated_at, reverse=True)[:RECENT]
    return render(request, "overview.html", {
        "section": "overview",
        "runs": runs,
        "run_total": sum(runs.values()),
        "experiments": len(tracking.list_experiments(store, project)),
        "recent_runs": search.search_runs(store, project, order_by=["start_time DESC"],
                                          max_results=RECENT).runs,
        "pipeline_runs": pipeline_runs,
        "pipeline_total": sum(pipeline_runs.values()),
        "recent_pipeline_runs": pipelines.list_pipeline_runs(store, project, limit=RECENT),
        "model_total": len(models),
        "version_total": sum(m.latest_version or 0 for m in models),
        "recent_models": recent_models,
    })
