"""The data plane: every prediction route, answered by one ASGI layer before FastAPI routes.

Why a layer of its own: FastAPI's routing, its dependency solving, the policy dependency in
the thread pool, the body-limit middleware (which authenticates in the thread pool too) and
the header middleware cost about 1.5 ms per request on this machine, twice the whole budget
of a one-row prediction (issue 18: p50 at most 0.8 ms, auth on). This layer makes the same
checks in the same order on the event loop:

1. the policy table's rule for the route (``server.policy``), and ``server.auth.authorize``
   itself (Host, Origin and Content-Type, the credential, the role), run inline when the
   in-process auth cache already holds the token and role (no database read, the same
   answer; a revocation still forgets the entry at once), in the thread pool otherwise;
   KServe, OIP and MLflow paths name no project, so the endpoint's project is resolved
   from the served endpoints first and the role is checked there;
2. the body, read only after the caller is authorized, bounded by the server's JSON limit
   (413) and the body timeout (408);
3. the protocol's parse (``serving.protocols``) and the replica's answer
   (``Supervisor.predict``), then the response with the API security headers.

Errors are the same problem+json as everywhere (``server.errors.from_error``), with the
offending field. FastAPI routes (``openapi``) declare the same paths, so they are in
``/openapi.json``, in the policy test and in the REST reference; requests never reach them
while this layer is installed (``create_app`` installs it), and they answer the same way.

The modules, each on its own:

- ``fastpath``: the ASGI layer (``DataPlane``), the body, the metrics and request log;
- ``access``: authorization and its decision cache;
- ``paths``: the routes' templates and their parameters' bounds;
- ``vertex`` (Vertex predict and explain, KServe V1), ``mlflow`` (MLflow scoring and Vertex
  rawPredict), ``oip`` (the Open Inference Protocol: inference, health, metadata): each
  protocol's parse and answer, sharing ``answers``;
- ``openapi``: the same paths as FastAPI routes; ``ops``: ``/metrics`` and feedback.
"""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.server.api.dataplane import oip, openapi, ops
from shipyard.server.api.dataplane.fastpath import DataPlane

__all__ = ["DataPlane", "router"]

router = APIRouter()
router.include_router(openapi.router)
router.include_router(oip.router)
router.include_router(ops.router)
