"""The data plane's other routes: Prometheus ``/metrics`` and the feedback API that attaches
ground truth to logged requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shipyard.errors import FailedPrecondition
from shipyard.security import service as identity
from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role
from shipyard.security.tokens import effective_permissions
from shipyard.server.api import params
from shipyard.server.auth import PROBLEM_RESPONSES
from shipyard.server.state import ServerState
from shipyard.serving import metrics
from shipyard.serving.instances import MAX_INSTANCES
from shipyard.serving.replicas import Supervisor
from shipyard.validation import check_name

router = APIRouter(tags=["prediction"], responses=PROBLEM_RESPONSES)

# -- Prometheus ----------------------------------------------------------------------------

@router.get("/metrics", response_class=Response, summary="Prometheus metrics of the data plane",
            responses={200: {"content": {"text/plain": {}}}})
def prometheus_metrics(request: Request) -> Response:
    """Requests, errors, latency histograms and instances per endpoint and model version
    (``serving.metrics``), for the projects the caller may read (all for an admin)."""
    supervisor: Supervisor = request.app.state.serving
    state: ServerState = request.app.state.shipyard
    principal = request.state.principal
    readable: set[str] = set()
    for project in supervisor.metrics.projects():
        if not project:
            if principal.is_admin:
                readable.add(project)
            continue
        role = Role.ADMIN if principal.is_admin else identity.role_in(state.store, principal,
                                                                      project)
        held = ROLE_PERMISSIONS[role] if role is not None else frozenset()
        if Permission.READ in effective_permissions(principal.scopes, held):
            readable.add(project)
    return Response(supervisor.metrics.exposition(readable), media_type=metrics.CONTENT_TYPE)


# -- feedback: ground truth for logged requests ----------------------------------------

class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    instance: int = Field(default=0, ge=0, le=MAX_INSTANCES)
    ground_truth: Any

    @field_validator("instance", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("instance must be a whole number, not a boolean")  # noqa: TRY004
        return value


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


@router.post("/api/v1/projects/{project}/endpoints/{name}/feedback",
             summary="Ground truth for logged predictions, by request id")
def feedback(project: params.Name, name: params.Name, body: Feedback, request: Request
             ) -> dict[str, int]:
    """Attach ground truth to predictions by the request id their answer carried
    (``X-Request-ID``) and the instance's index in that request; written to the request
    log's ``feedback`` table before this returns."""
    from shipyard.serving import service

    supervisor: Supervisor = request.app.state.serving
    state: ServerState = request.app.state.shipyard
    check_name(name, "name")
    service.get_endpoint(state.store, project, name)  # NotFound for an unknown endpoint
    if supervisor.request_log is None:
        raise FailedPrecondition("request logging is off on this server")
    supervisor.request_log.feedback(
        project, name, [(i.request_id, i.instance, i.ground_truth) for i in body.feedback])
    return {"recorded": len(body.feedback)}
