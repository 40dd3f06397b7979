"""The Open Inference Protocol (V2, KServe's and Triton's): inference on the fast layer,
health and metadata through FastAPI (they are not on the hot path).

Inference takes JSON tensors or the binary tensor extension (``tritonclient[http]``'s
``binary_data``), tabular input as one 2-D tensor or one tensor per feature, and a version
pinned in the path (``/v2/models/{name}/versions/{version}/infer``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from shipyard import __version__
from shipyard.errors import NotFound
from shipyard.server.api import params
from shipyard.server.api.dataplane.access import READ_ON_PROJECT, check
from shipyard.server.api.dataplane.answers import Answer, answer, json_body, names
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState
from shipyard.serving import protocols, wire
from shipyard.serving.pool import pinned
from shipyard.serving.replicas import Supervisor

router = APIRouter(tags=["prediction"], responses=PROBLEM_RESPONSES)


async def infer(supervisor: Supervisor, project: str, name: str, raw: bytes, headers: Any,
                version: str | None) -> Answer:
    """OIP inference: the tensors in, one output tensor back (``protocols.oip_answer``),
    as JSON or, when the request asks for it, in the binary tensor extension's form
    (``protocols.oip_binary``, with ``Inference-Header-Content-Length``)."""
    header_length = headers.get("inference-header-content-length")
    text, binary = protocols.split_binary(raw, header_length)
    signature = supervisor.signature_of(project, name, version)
    rows, echo = protocols.parse_oip(json_body(text), binary, names(signature))
    prediction = await supervisor.predict(project, name, rows, version=version)
    body = protocols.oip_answer(prediction, name, echo)
    answered = answer(body, prediction, rows)
    if echo.get("binary"):  # the binary tensor extension: JSON header, then the bytes
        header, data = protocols.oip_binary(body)
        answered.body = header + data
        answered.media_type = "application/octet-stream"
        answered.headers = [*(answered.headers or []), (
            b"inference-header-content-length", str(len(header)).encode())]
    return answered

Version = Annotated[str, Path(min_length=1, max_length=140)]


# -- Open Inference Protocol: health and metadata (through FastAPI: not on the hot path) ----

@router.get("/v2/health/live", summary="OIP liveness")
def oip_live() -> dict[str, bool]:
    """OIP liveness: the server process answers."""
    return {"live": True}


@router.get("/v2/health/ready", summary="OIP readiness")
def oip_ready() -> dict[str, bool]:
    """OIP readiness: the server takes requests (each model has its own ready route)."""
    return {"ready": True}


@router.get("/v2", summary="OIP server metadata")
def oip_server_metadata() -> dict[str, Any]:
    """OIP server metadata."""
    return {"name": "shipyard", "version": __version__,
            "extensions": ["binary_tensor_data"]}


async def _served(request: Request, name: str) -> tuple[Supervisor, str]:
    """The supervisor and the project of the endpoint ``name``, once the caller may read
    that project (the route's rule only asked for a credential)."""
    supervisor: Supervisor = request.app.state.serving
    state: ServerState = request.app.state.shipyard
    project = supervisor.project_of(name)
    if project is None:
        raise NotFound(f"no endpoint named {name[:128]!r} serves predictions here",
                       field="name")
    request.scope.setdefault("path_params", {})["project"] = project
    await check(request, state, READ_ON_PROJECT, request.scope["route"].path, project)
    return supervisor, project


@router.get("/v2/models/{name}", summary="OIP model metadata (the endpoint's project: read)")
async def oip_model_metadata(name: params.Name, request: Request) -> dict[str, Any]:
    """OIP model metadata: the versions served and the features the model takes."""
    supervisor, project = await _served(request, name)
    targets = supervisor.targets_of(project, name)
    return protocols.oip_model_metadata(
        name, sorted({t.deployment.version for t in targets}),
        supervisor.signature_of(project, name))


@router.get("/v2/models/{name}/versions/{version}", summary="OIP metadata of one served version")
async def oip_version_metadata(name: params.Name, version: Version, request: Request
                               ) -> dict[str, Any]:
    """OIP model metadata of one served version."""
    supervisor, project = await _served(request, name)
    signature = supervisor.signature_of(project, name, version)
    _target(supervisor, project, name, version)
    return protocols.oip_model_metadata(name, [int(version)] if version.isdigit() else [],
                                        signature)


def _target(supervisor: Supervisor, project: str, name: str, version: str) -> Any:
    route = supervisor.routes.get((project, name))
    if route is None:
        raise NotFound(f"no endpoint named {name!r} serves predictions here", field="name")
    return pinned(route, name, version)


@router.get("/v2/models/{name}/ready", summary="OIP model readiness")
async def oip_model_ready(name: params.Name, request: Request) -> Response:
    """OIP model readiness: 200 when every deployment receiving traffic has a ready
    replica, else 503."""
    supervisor, project = await _served(request, name)
    ready = _ready(supervisor, project, name, None)
    return Response(wire.dumps({"name": name, "ready": ready}), status_code=200 if ready
                    else 503, media_type="application/json")


@router.get("/v2/models/{name}/versions/{version}/ready",
            summary="OIP readiness of one served version")
async def oip_version_ready(name: params.Name, version: Version, request: Request) -> Response:
    """OIP readiness of one served version."""
    supervisor, project = await _served(request, name)
    ready = _ready(supervisor, project, name, version)
    return Response(wire.dumps({"name": name, "ready": ready}), status_code=200 if ready
                    else 503, media_type="application/json")


def _ready(supervisor: Supervisor, project: str, name: str, version: str | None) -> bool:
    targets = ([_target(supervisor, project, name, version)] if version is not None else
               [t for t in supervisor.targets_of(project, name)
                if t.deployment.traffic_percentage > 0])
    # One entry per replica: a deployment is ready when any of its replicas is (another
    # may be starting for a scale-up, or replacing one that died).
    ready = {r["deployed_model_id"] for r in supervisor.status()
             if r["project"] == project and r["endpoint"] == name and r["state"] == "ready"}
    return bool(targets) and all(t.deployment.id in ready for t in targets)


