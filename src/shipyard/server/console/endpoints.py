"""Endpoints: each endpoint with its deployed models, traffic split and replicas, and an
endpoint's page: deployments, the replicas this server runs for them, request rate, latency
percentiles and error rate over time (``traffic``), its canary rollouts with their
verdicts, a form that changes the split
(validated by the same service call as ``PUT .../traffic``) and one that sends a test
prediction through the same supervisor as ``:predict``, with its explanation (as
``:explain``) drawn as a bar chart of feature attributions when asked."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shipyard.errors import FailedPrecondition, InvalidArgument, Unavailable
from shipyard.security.roles import Permission
from shipyard.server.api import params
from shipyard.server.console.rendering import render
from shipyard.server.console.session import check_csrf, may, read_form
from shipyard.server.console.traffic import INTERVAL, History, charts
from shipyard.server.errors import status_of
from shipyard.server.state import ServerState, request_context, server_state
from shipyard.serving import rollouts, service
from shipyard.serving.models import Endpoint, Prediction
from shipyard.serving.replicas import Supervisor

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/endpoints"
SHARE_FIELD = "traffic."  # one form field per deployment: traffic.<deployed model id>
MAX_INSTANCES_TEXT = 64 * 1024  # the test form is for a few rows; the API takes more
MAX_TEST_INSTANCES = 100


MAX_EXPLAINED_FEATURES = 30  # bars per chart: the largest attributions
MAX_ROLLOUTS = 20  # the newest canary rollouts shown (the CLI and API list them all)


def supervisor(request: Request) -> Supervisor:
    found: Supervisor = request.app.state.serving
    return found


def history(request: Request) -> History | None:
    found: History | None = getattr(request.app.state, "console_history", None)
    return found


@router.get(PAGE)
def endpoints_page(request: Request, project: str, state: State) -> HTMLResponse:
    endpoints = service.list_endpoints(state.store, project)
    replicas = _replicas_by_endpoint(supervisor(request), project)
    return render(request, "endpoints.html", {
        "section": "endpoints", "endpoints": endpoints, "replicas": replicas,
    })


@router.get(PAGE + "/{name}")
def endpoint_page(request: Request, project: str, name: params.Name, state: State
                  ) -> HTMLResponse:
    endpoint = service.get_endpoint(state.store, project, name)
    return _endpoint_page(request, endpoint)


@router.post(PAGE + "/{name}/traffic")
async def set_traffic(request: Request, project: str, name: params.Name, state: State
                      ) -> Response:
    form = await read_form(request)
    check_csrf(request, form)
    try:
        split = _split_from(form)
        await run_in_threadpool(service.set_traffic, state.store, request_context(request),
                                name, split)
    except InvalidArgument as exc:
        # The page again, with the split as sent and what is wrong with it.
        endpoint = await run_in_threadpool(service.get_endpoint, state.store, project, name)
        return _endpoint_page(request, endpoint, traffic_error=exc.message,
                              sent=_sent_shares(form), status_code=400)
    await run_in_threadpool(supervisor(request).refresh)
    return RedirectResponse(f"/console/projects/{project}/endpoints/{name}#traffic",
                            status_code=303)


@router.post(PAGE + "/{name}/predict")
async def test_prediction(request: Request, project: str, name: params.Name, state: State
                          ) -> Response:
    form = await read_form(request)
    check_csrf(request, form)
    endpoint = await run_in_threadpool(service.get_endpoint, state.store, project, name)
    text = form.get("instances")
    explain = form.get("explain") == "on"
    explanations: list[dict[str, Any]] | None = None
    try:
        instances = _instances_from(text)
        if explain:
            answer, explanations = await supervisor(request).explain(project, name, instances)
        else:
            answer = await supervisor(request).predict(project, name, instances)
    except (InvalidArgument, FailedPrecondition, Unavailable) as exc:
        # Shown next to the form (a bad row, nothing deployed, a replica starting, a model
        # that cannot be explained).
        kept = str(text or "")[:MAX_INSTANCES_TEXT]
        return _endpoint_page(request, endpoint, instances_text=kept, explain=explain,
                              predict_error=exc.message, status_code=status_of(exc))
    return _endpoint_page(request, endpoint, instances_text=str(text), answer=answer,
                          rows=instances, explain=explain, explanations=explanations)


def _endpoint_page(request: Request, endpoint: Endpoint, *, traffic_error: str | None = None,
                   sent: dict[str, str] | None = None, instances_text: str | None = None,
                   predict_error: str | None = None, answer: Prediction | None = None,
                   rows: list[Any] | None = None, explain: bool = False,
                   explanations: list[dict[str, Any]] | None = None,
                   status_code: int = 200) -> HTMLResponse:
    replicas = _replicas_by_endpoint(supervisor(request), endpoint.project)
    kept = history(request)
    traffic = charts(kept.points(endpoint.project, endpoint.name)) if kept else []
    canaries = rollouts.list_rollouts(server_state(request).store, endpoint.project,
                                      endpoint.name)
    return render(request, "endpoint.html", {
        "section": "endpoints", "endpoint": endpoint,
        "replicas": replicas.get(endpoint.name, []),
        "rollouts": canaries[:MAX_ROLLOUTS], "more_rollouts": len(canaries) > MAX_ROLLOUTS,
        "traffic_charts": [{"id": f"traffic-{n}", "spec": spec}
                           for n, spec in enumerate(traffic)],
        "interval": INTERVAL,
        "explain": explain,
        "explained": _explanation_charts(explanations or []),
        "may_write": may(request, Permission.WRITE),
        "may_predict": may(request, Permission.PREDICT),
        "traffic_error": traffic_error,
        "shares": sent if sent is not None else {k: str(v) for k, v in endpoint.traffic.items()},
        "instances_text": instances_text if instances_text is not None
        else _example_instances(request, endpoint),
        "predict_error": predict_error, "answer": answer,
        "answered": list(zip(rows or [], answer.predictions if answer else [], strict=False)),
    }, status_code=status_code)


def _explanation_charts(explanations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One horizontal bar chart per explained instance (at most 10): each feature's
    attribution, largest magnitude on top, with the baseline and the instance's output."""
    found = []
    for n, explanation in enumerate(explanations[:10]):
        # Vertex's shape: {"attributions": [{"featureAttributions": {...}, ...}]}
        inner = explanation.get("attributions")
        if isinstance(inner, list) and inner and isinstance(inner[0], dict):
            explanation = inner[0]
        raw = explanation.get("featureAttributions")
        if not isinstance(raw, dict):
            continue
        values = {str(k): float(v) for k, v in raw.items()
                  if isinstance(v, int | float) and not isinstance(v, bool)}
        top = sorted(values.items(), key=lambda kv: abs(kv[1]))[-MAX_EXPLAINED_FEATURES:]
        baseline = explanation.get("baselineOutputValue")
        output = explanation.get("instanceOutputValue")
        found.append({"id": f"explained-{n}", "baseline": baseline, "output": output,
                      "features": len(values), "height": 110 + 24 * len(top), "spec": {
            "title": f"Instance {n + 1}: feature attributions",
            "x_title": "attribution (change of the output from the baseline)",
            "traces": [{"type": "bar", "orientation": "h",
                        "x": [v for _, v in top], "y": [k for k, _ in top],
                        "marker": {"color": ["#1e7a3c" if v >= 0 else "#b3261e"
                                             for _, v in top]},
                        "name": "attribution"}],
            "layout": {"showlegend": False, "margin": {"l": 120, "r": 16, "t": 36, "b": 44},
                       "yaxis": {"automargin": True}},
        }})
    return found


def _split_from(form: FormData) -> dict[str, int]:
    split: dict[str, int] = {}
    for key, value in form.multi_items():
        if not key.startswith(SHARE_FIELD):
            continue
        deployed = key.removeprefix(SHARE_FIELD)
        text = value.strip() if isinstance(value, str) else ""
        if not text.isdigit() or len(text) > 3:
            raise InvalidArgument(f"the share of {deployed} must be a whole number from 0 to "
                                  f"100, got {text[:20]!r}", field=f"traffic.{deployed}")
        split[deployed] = int(text)
    if not split:
        raise InvalidArgument("the form sent no traffic shares", field="traffic")
    return split


def _sent_shares(form: FormData) -> dict[str, str]:
    return {k.removeprefix(SHARE_FIELD): str(v)[:20] for k, v in form.multi_items()
            if k.startswith(SHARE_FIELD)}


def _instances_from(text: object) -> list[Any]:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("write the instances to send: a JSON list of rows",
                              field="instances")
    if len(text) > MAX_INSTANCES_TEXT:
        raise InvalidArgument(f"the test form takes at most {MAX_INSTANCES_TEXT // 1024} KiB "
                              "of instances; send more through the API", field="instances")
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"the instances are not JSON: {exc}", field="instances") from None
    if isinstance(parsed, dict) and "instances" in parsed:
        parsed = parsed["instances"]  # a whole :predict body pasted in
    if not isinstance(parsed, list) or not parsed:
        raise InvalidArgument("the instances must be a JSON list of rows (objects keyed by "
                              "feature, or lists in signature order)", field="instances")
    if len(parsed) > MAX_TEST_INSTANCES:
        raise InvalidArgument(f"the test form takes at most {MAX_TEST_INSTANCES} rows",
                              field="instances")
    return parsed


def _example_instances(request: Request, endpoint: Endpoint) -> str:
    """One row shaped by the first deployment's signature, for the form to start from."""
    if not endpoint.deployments:
        return ""
    signature = supervisor(request).signature_of(endpoint.project, endpoint.name)
    columns = (signature or {}).get("columns") or []
    row: dict[str, Any] = {}
    for column in columns[:50]:
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            continue
        levels = column.get("levels") or []
        kind = str(column.get("kind", ""))
        row[column["name"]] = levels[0] if levels else ("" if kind in ("string", "category")
                                                        else 0)
    return json.dumps([row], indent=1) if row else "[[0]]"


def _replicas_by_endpoint(replicas: Supervisor, project: str
                          ) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for replica in replicas.status():
        if replica["project"] == project:
            found.setdefault(replica["endpoint"], []).append(replica)
    return found


__all__ = ["router"]
