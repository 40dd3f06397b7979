"""Serving: /api/v1/projects/{project}/endpoints/... (the control plane) and the
prediction routes (the data plane), Vertex-style ``:predict`` on both its paths.

Control-plane handlers change the store through ``serving.service`` and then bring this
server's replicas in line (``Supervisor.refresh``); a deploy waits for the new replica to
load its model and is undone if it cannot. Prediction handlers are coroutines: the route
and the replica's answer never touch the database.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, Unavailable
from shipyard.server.api import params
from shipyard.server.api.events import Whole, whole
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.errors import problem
from shipyard.server.state import ServerState, request_context, server_state
from shipyard.serving import rollouts, service
from shipyard.serving.instances import MAX_INSTANCES
from shipyard.serving.models import (
    DEFAULT_AFTER_REQUESTS,
    DEFAULT_ALIAS,
    DEFAULT_ERROR_ALPHA,
    DEFAULT_ERROR_MARGIN,
    DEFAULT_LATENCY_RATIO,
    DEFAULT_PERCENT,
    CanaryRollout,
    Endpoint,
    Prediction,
)
from shipyard.serving.replicas import Supervisor
from shipyard.serving.service import MAX_LABELS, MAX_REPLICAS

__all__ = ["data_plane", "router"]

router = APIRouter(prefix="/api/v1/projects/{project}/endpoints", tags=["serving"],
                   dependencies=[Depends(params.project_parameter)], responses=PROBLEM_RESPONSES)
# Vertex AI's own prediction path, so its clients need only a new base URL.
data_plane = APIRouter(tags=["prediction"], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Ctx = Annotated[RequestContext, Depends(request_context)]
# Not true/false, not "50" (the bounds before the validator, so the schema states them).
Percent = Annotated[int, Field(ge=0, le=100), BeforeValidator(whole)]
DeployedId = Annotated[str, Field(min_length=3, max_length=140)]
LabelKey = Annotated[str, Field(min_length=1, max_length=128, pattern=params.NAME_PATTERN)]
LabelValue = Annotated[str, Field(max_length=256)]


def _number(value: Any) -> Any:
    if isinstance(value, bool | str):  # not true or "1.5", which pydantic's lax mode takes
        raise ValueError("must be a number")  # noqa: TRY004 (pydantic reports ValueError)
    return value


# A JSON number; the service checks its range, naming the field.
Number = Annotated[float, BeforeValidator(_number)]


def supervisor(request: Request) -> Supervisor:
    found: Supervisor = request.app.state.serving
    return found


Replicas = Annotated[Supervisor, Depends(supervisor)]
# Vertex's region (us-central1, europe-west4, ...): read and ignored, a single machine has one.
Location = Annotated[str, Path(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewEndpoint(Strict):
    name: str = Field(min_length=1, max_length=128, pattern=params.NAME_PATTERN)
    description: str = Field(default="", max_length=10_000)
    labels: dict[LabelKey, LabelValue] | None = Field(default=None, max_length=MAX_LABELS)


class Deploy(Strict):
    model: str = Field(min_length=1, max_length=128, pattern=params.NAME_PATTERN)
    version: Annotated[int, Field(ge=1, le=2**31 - 1), BeforeValidator(whole)] | None = None
    alias: str | None = Field(default=None, min_length=1, max_length=128)
    traffic_percentage: Percent | None = None
    min_replicas: Whole = Field(default=1, ge=1, le=MAX_REPLICAS)
    max_replicas: Whole = Field(default=1, ge=1, le=MAX_REPLICAS)
    shadow: StrictBool = False
    follow_alias: StrictBool = False
    # Where its replicas run: the server's processes, or a Ray Serve application on the
    # cluster RAY_ADDRESS names (refused with 412 naming RAY_ADDRESS when none answers).
    runtime: Literal["local", "ray"] = "local"


class Shift(Strict):
    deployed_model_id: DeployedId
    traffic_percentage: Percent


class Traffic(Strict):
    traffic: dict[DeployedId, Percent] = Field(max_length=100)


class Undeploy(Strict):
    deployed_model_id: DeployedId
    traffic: dict[DeployedId, Percent] | None = Field(default=None, max_length=100)


class StartRollout(Strict):
    """A durable canary: ``deployed_model_id`` (deployed already, usually at 0%) gets
    ``percent`` of the requests until the workers judge it after ``after_requests``."""

    deployed_model_id: DeployedId = Field(pattern=r"^.+:[0-9]+$")
    percent: Annotated[int, Field(ge=1, le=99), BeforeValidator(whole)] = DEFAULT_PERCENT
    after_requests: Annotated[int, Field(ge=1, le=rollouts.MAX_AFTER_REQUESTS),
                              BeforeValidator(whole)] = DEFAULT_AFTER_REQUESTS
    max_latency_ratio: Number = Field(default=DEFAULT_LATENCY_RATIO, gt=0, le=1000)
    prediction_tolerance: Number | None = Field(default=None, ge=0)
    promote_alias: str | None = Field(default=DEFAULT_ALIAS, min_length=1, max_length=128,
                                      pattern=params.NAME_PATTERN)
    error_rate_alpha: Number = Field(default=DEFAULT_ERROR_ALPHA, gt=0, le=0.5)
    max_error_rate_increase: Number = Field(default=DEFAULT_ERROR_MARGIN, ge=0, le=1)


class PredictRequest(Strict):
    instances: list[Any] = Field(min_length=1, max_length=MAX_INSTANCES)
    # Vertex's per-request parameters: accepted, and unused by the models served so far.
    parameters: dict[str, Any] | None = None


@router.api_route("/{name}:{verb}", methods=["GET", "DELETE"], include_in_schema=False)
def verbs_take_post(name: str, verb: str) -> Response:
    """``/{name}:predict`` and its kin take POST only. Declared before ``/{name}``, which
    would otherwise take a GET or DELETE of ``x:predict`` and refuse it as a bad name."""
    return problem(405, "an endpoint's verbs (:predict, ...) take POST only",
                   headers={"Allow": "POST"})


@router.get("", response_model=list[Endpoint])
def list_endpoints(state: State, ctx: Ctx) -> list[Endpoint]:
    return service.list_endpoints(state.store, ctx.project)


@router.post("", response_model=Endpoint)
def create_endpoint(body: NewEndpoint, state: State, ctx: Ctx) -> Endpoint:
    return service.create_endpoint(state.store, ctx, body.name, description=body.description,
                                   labels=body.labels)


@router.get("/{name}", response_model=Endpoint)
def get_endpoint(name: params.Name, state: State, ctx: Ctx) -> Endpoint:
    return service.get_endpoint(state.store, ctx.project, name)


@router.delete("/{name}", status_code=204)
def delete_endpoint(name: params.Name, state: State, ctx: Ctx) -> Response:
    service.delete_endpoint(state.store, ctx, name)
    return Response(status_code=204)


@router.post("/{name}/deployments", response_model=Endpoint)
def deploy(name: params.Name, body: Deploy, state: State, ctx: Ctx, replicas: Replicas
           ) -> Endpoint:
    """Deploy a version and wait until its replica has loaded it; a version the replica
    cannot load is undeployed again (412 naming it), leaving the traffic as it was."""
    before = service.get_endpoint(state.store, ctx.project, name)
    after = service.deploy(
        state.store, ctx, name, body.model, version=body.version, alias=body.alias,
        traffic_percentage=body.traffic_percentage, min_replicas=body.min_replicas,
        max_replicas=body.max_replicas, shadow=body.shadow, follow_alias=body.follow_alias,
        runtime=body.runtime)
    known = {d.id for d in before.deployments}
    new = next(d for d in after.deployments if d.id not in known)
    replicas.refresh()
    try:
        replicas.wait_deployed(ctx.project, name, new.id)
    except (FailedPrecondition, Unavailable):
        service.undeploy(state.store, ctx, name, new.id, traffic=before.traffic or None)
        replicas.refresh()
        raise
    return after


@router.put("/{name}/traffic", response_model=Endpoint)
def set_traffic(name: params.Name, body: Traffic, state: State, ctx: Ctx, replicas: Replicas
                ) -> Endpoint:
    endpoint = service.set_traffic(state.store, ctx, name, body.traffic)
    replicas.refresh()
    return endpoint


@router.post("/{name}/shift", response_model=Endpoint)
def shift_traffic(name: params.Name, body: Shift, state: State, ctx: Ctx, replicas: Replicas
                  ) -> Endpoint:
    """Give one deployed model ``traffic_percentage`` of the requests; the others share the
    rest in their proportions (a canary's step)."""
    endpoint = service.shift_traffic(state.store, ctx, name, body.deployed_model_id,
                                     body.traffic_percentage)
    replicas.refresh()
    return endpoint


@router.post("/{name}/undeploy", response_model=Endpoint)
def undeploy(name: params.Name, body: Undeploy, state: State, ctx: Ctx, replicas: Replicas
             ) -> Endpoint:
    endpoint = service.undeploy(state.store, ctx, name, body.deployed_model_id, body.traffic)
    replicas.refresh()
    return endpoint


@router.post("/{name}/rollouts", response_model=CanaryRollout)
def start_rollout(name: params.Name, body: StartRollout, state: State, ctx: Ctx,
                  replicas: Replicas) -> CanaryRollout:
    """Start a canary rollout that the workers promote or roll back from the request log."""
    settings = body.model_dump(exclude={"deployed_model_id"})
    rollout = rollouts.start_rollout(state.store, ctx, name, body.deployed_model_id, settings)
    replicas.refresh()
    return rollout


@router.get("/{name}/rollouts", response_model=list[CanaryRollout])
def list_rollouts(name: params.Name, state: State, ctx: Ctx) -> list[CanaryRollout]:
    """The endpoint's canary rollouts, newest first, with their verdicts and reasons."""
    service.get_endpoint(state.store, ctx.project, name)  # NotFound for an unknown one
    return rollouts.list_rollouts(state.store, ctx.project, name)


@router.get("/{name}/rollouts/{rollout_id}", response_model=CanaryRollout)
def get_rollout(name: params.Name, rollout_id: params.Id, state: State, ctx: Ctx
                ) -> CanaryRollout:
    return rollouts.endpoint_rollout(state.store, ctx.project, name, rollout_id)


@router.get("/{name}/replicas")
def list_replicas(name: params.Name, state: State, ctx: Ctx, replicas: Replicas
                  ) -> list[dict[str, Any]]:
    """The replica processes this server runs for the endpoint: pid, state, restarts."""
    service.get_endpoint(state.store, ctx.project, name)  # NotFound for an unknown one
    return [r for r in replicas.status()
            if r["project"] == ctx.project and r["endpoint"] == name]


async def _predict(project: str, name: str, body: PredictRequest, replicas: Supervisor
                   ) -> JSONResponse:
    answer = await replicas.predict(project, name, body.instances)
    return JSONResponse(vertex_answer(answer))


def vertex_answer(answer: Prediction) -> dict[str, Any]:
    return {"predictions": answer.predictions, "deployedModelId": answer.deployed_model_id,
            "model": answer.model, "modelVersionId": str(answer.model_version)}


_PREDICTED: dict[int | str, dict[str, Any]] = {
    200: {"description": "One prediction per instance, and who answered",
          "content": {"application/json": {"example": {
              "predictions": [0.42], "deployedModelId": "lead-scoring:3",
              "model": "lead-scoring", "modelVersionId": "3"}}}},
}


@router.post("/{name}:predict", responses=_PREDICTED)
async def predict(name: params.Name, body: PredictRequest, ctx: Ctx, replicas: Replicas
                  ) -> JSONResponse:
    """Predict: ``instances`` are objects keyed by feature or arrays in signature order."""
    return await _predict(ctx.project, name, body, replicas)


@data_plane.post("/v1/projects/{project}/locations/{location}/endpoints/{name}:predict",
                 responses=_PREDICTED)
async def vertex_predict(project: params.Name, location: Location, name: params.Name,
                         body: PredictRequest, replicas: Replicas) -> JSONResponse:
    """Vertex AI's path (any ``location``); the same as the route above."""
    return await _predict(project, name, body, replicas)
