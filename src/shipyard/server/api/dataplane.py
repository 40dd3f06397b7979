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
offending field. The FastAPI routes below declare the same paths, so they are in
``/openapi.json``, in the policy test and in the REST reference; requests never reach them
while this layer is installed (``create_app`` installs it), and they answer the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard import __version__
from shipyard.context import RequestContext
from shipyard.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ShipyardError,
    TooLarge,
)
from shipyard.ids import new_id
from shipyard.security import service as identity
from shipyard.security.authcache import AUTH_CACHE, CachedToken, database_key
from shipyard.security.headers import API_SECURITY_HEADERS
from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role
from shipyard.security.tokens import effective_permissions, parse_token
from shipyard.server.api import params
from shipyard.server.auth import (
    PROBLEM_RESPONSES,
    SESSION_COOKIE,
    authorize,
    presented_token,
)
from shipyard.server.errors import from_error, problem, redact
from shipyard.server.policy import POLICY, Rule
from shipyard.server.state import ServerState
from shipyard.serving import metrics, protocols, wire
from shipyard.serving.explanation import parse_override
from shipyard.serving.instances import MAX_INSTANCES
from shipyard.serving.models import Prediction
from shipyard.serving.replicas import Supervisor
from shipyard.serving.requestlog import Logged
from shipyard.store.types import utcnow
from shipyard.validation import check_name

log = logging.getLogger(__name__)

__all__ = ["DataPlane", "router"]

BODY_TIMEOUT = 30.0
# The check made on the endpoint's project once a project-less path has named it.
PREDICT_ON_PROJECT = Rule(Permission.PREDICT)
READ_ON_PROJECT = Rule(Permission.READ)

VERTEX = "/api/v1/projects/{project}/endpoints/{name}:predict"
VERTEX_GOOGLE = "/v1/projects/{project}/locations/{location}/endpoints/{name}:predict"
EXPLAIN = "/api/v1/projects/{project}/endpoints/{name}:explain"
EXPLAIN_GOOGLE = "/v1/projects/{project}/locations/{location}/endpoints/{name}:explain"
RAW = "/api/v1/projects/{project}/endpoints/{name}:rawPredict"
RAW_GOOGLE = "/v1/projects/{project}/locations/{location}/endpoints/{name}:rawPredict"
KSERVE_V1 = "/v1/models/{name}:predict"
OIP_INFER = "/v2/models/{name}/infer"
OIP_VERSION_INFER = "/v2/models/{name}/versions/{version}/infer"
MLFLOW = "/endpoints/{name}/invocations"


@dataclass(frozen=True)
class Protocol:
    template: str
    pattern: re.Pattern[str]
    kind: str  # vertex | raw | kserve | oip | mlflow


def _pattern(template: str) -> re.Pattern[str]:
    # An endpoint's name has no colon (the Vertex verbs follow one); a pinned version may
    # be a deployed model id, which has one.
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    regex = regex.replace("(?P<name>[^/]+)", "(?P<name>[^/:]+)")
    return re.compile(f"^{regex}$")


PROTOCOLS = tuple(Protocol(t, _pattern(t), kind) for t, kind in (
    (VERTEX, "vertex"), (VERTEX_GOOGLE, "vertex"), (RAW, "raw"), (RAW_GOOGLE, "raw"),
    (EXPLAIN, "explain"), (EXPLAIN_GOOGLE, "explain"),
    (KSERVE_V1, "kserve"), (OIP_INFER, "oip"), (OIP_VERSION_INFER, "oip"),
    (MLFLOW, "mlflow")))


class _MatchedRoute:
    """What ``server.auth.route_path`` and the access log read from ``scope["route"]``."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


_SECURITY = [(k.lower().encode(), v.encode()) for k, v in API_SECURITY_HEADERS.items()]


@dataclass
class Answer:
    status: int
    body: bytes
    media_type: str = "application/json"
    headers: list[tuple[bytes, bytes]] | None = None
    prediction: Prediction | None = None
    instances: int = 0
    rows: list[Any] | None = None


class DataPlane:
    """ASGI middleware: answers the prediction routes, passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.endswith(("predict", "infer", "invocations", "Predict", "explain")):
                for protocol in PROTOCOLS:
                    match = protocol.pattern.match(path)
                    if match:
                        answer = await handle(scope, receive, protocol, match.groupdict())
                        await _send(send, answer)
                        return
        await self.app(scope, receive, send)


async def _send(send: Send, answer: Answer) -> None:
    headers = [(b"content-type", answer.media_type.encode()),
               (b"content-length", str(len(answer.body)).encode()), *_SECURITY]
    if answer.headers:
        headers.extend(answer.headers)
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def _problem_answer(exc: ShipyardError, state: ServerState | None) -> Answer:
    if state is not None:
        exc.message = redact(exc.message, (str(state.settings.home), state.settings.artifacts))
    response = from_error(exc)
    headers = [(k.encode(), v.encode()) for k, v in response.headers.items()
               if k not in ("content-type", "content-length")]
    return Answer(response.status_code, bytes(response.body), "application/problem+json",
                  headers)


async def handle(scope: Scope, receive: Receive, protocol: Protocol, params: dict[str, str]
                 ) -> Answer:
    """Authorize, read, parse, predict and answer one data-plane request."""
    app = scope.get("app")
    state: ServerState | None = getattr(getattr(app, "state", None), "shipyard", None)
    supervisor: Supervisor | None = getattr(getattr(app, "state", None), "serving", None)
    scope["path_params"] = params
    scope["route"] = _MatchedRoute(protocol.template)
    if protocol.kind == "oip":
        _type_oip_body(scope)
    scope.setdefault("state", {})
    request = Request(scope, receive)
    started = time.perf_counter()
    try:
        state, supervisor = _serving(state, supervisor)
        _check_path(params)
        await _authorize(request, state, supervisor, protocol, params)
        raw = await _read_body(scope, receive, state)
        answer = await respond(supervisor, protocol, params, raw, request.headers)
    except BodyTimeout as exc:
        response = problem(408, exc.message, kind="invalid_argument", field="body",
                           headers={"Connection": "close"})
        answer = Answer(408, bytes(response.body), "application/problem+json",
                        [(b"connection", b"close")])
    except ShipyardError as exc:
        answer = _problem_answer(exc, state)
    except Exception as exc:
        from shipyard.store.availability import database_unavailable

        unavailable = database_unavailable(exc)
        if unavailable is not None:
            answer = _problem_answer(unavailable, state)
        else:
            log.exception("unhandled error on POST %s", scope["path"])
            response = problem(500, "internal error; the server log has the details",
                               kind="internal")
            answer = Answer(500, bytes(response.body), "application/problem+json")
    seconds = time.perf_counter() - started
    if supervisor is not None:
        found = answer.prediction
        project, name = params.get("project", ""), params.get("name", "")
        if found is None and (project, name) not in supervisor.routes:
            project = name = ""  # not a served endpoint: no series per name a caller sends
        supervisor.metrics.observe(
            project, name,
            found.deployed_model_id if found else "",
            str(found.model_version) if found else "", protocol.kind, answer.status,
            seconds, answer.instances)
        logged = supervisor.request_log
        if found is not None and answer.rows is not None and logged is not None and \
                logged.sampled():
            signature = supervisor.signature_of(project, name, found.deployed_model_id)
            logged.record(Logged(
                request_id=str(scope["state"].get("request_id") or new_id()),
                time=time.time(), project=project, endpoint=name,
                deployed_model_id=found.deployed_model_id, model_version=found.model_version,
                protocol=protocol.kind, latency_ms=seconds * 1000, rows=answer.rows,
                predictions=found.predictions, names=_names(signature)))
    return answer


def _check_path(params: dict[str, str]) -> None:
    """The bounds the routes declare (``_PATH_SCHEMAS``), 400 naming the parameter."""
    for key, value in params.items():
        if key in ("project", "name"):
            check_name(value, key)
        elif not 1 <= len(value) <= _PATH_SCHEMAS[key]["maxLength"]:
            raise InvalidArgument(f"{key} must be 1 to {_PATH_SCHEMAS[key]['maxLength']} "
                                  "characters", field=key)


def _type_oip_body(scope: Scope) -> None:
    """OIP clients (tritonclient's HTTP client) send their JSON or binary bodies without a
    Content-Type. The browser-header check refuses untyped bodies because a foreign page
    can send one with the session cookie; it cannot attach an Authorization header to a
    simple request, so an untyped body that comes with one is taken as the OIP body it is.
    """
    names = {name for name, _ in scope["headers"]}
    if b"content-type" not in names and b"authorization" in names:
        scope["headers"] = [*scope["headers"], (b"content-type", b"application/json")]


def _serving(state: ServerState | None, supervisor: Supervisor | None
             ) -> tuple[ServerState, Supervisor]:
    if state is None or supervisor is None:
        raise FailedPrecondition("this server does not serve predictions")
    return state, supervisor


# -- authorization ------------------------------------------------------------------------------

async def _authorize(request: Request, state: ServerState, supervisor: Supervisor,
                     protocol: Protocol, params: dict[str, str]) -> None:
    rule = POLICY[("POST", protocol.template)]
    if "project" in params:
        await _check(request, state, rule, protocol.template, params["project"])
        return
    # No project in the path: authenticate, find the endpoint's project, then check the
    # permission there, as if the path had named it.
    await _check(request, state, rule, protocol.template, None)
    project = supervisor.project_of(params["name"])
    if project is None:
        raise NotFound(f"no endpoint named {params['name'][:128]!r} serves predictions here",
                       field="name")
    params["project"] = project
    await _check(request, state, PREDICT_ON_PROJECT, protocol.template, project)


@dataclass(frozen=True)
class _Decision:
    actor: str
    token_id: str | None
    expires_at: datetime | None
    generation: int
    stored_at: float


# Allowed requests by everything ``authorize`` looked at: the presented credential, the
# project, the permission and the browser headers. A hit is the same decision ``authorize``
# made less than AUTH_CACHE.ttl ago, with no invalidation since (a revoked token, a disabled
# principal or a changed grant bumps the database's generation, which every hit compares),
# and the token's expiry checked again. So a revocation here counts from the next request,
# and one made by another process within the cache's TTL, exactly as for AUTH_CACHE.
_DECISIONS: dict[tuple[Any, ...], _Decision] = {}
_MAX_DECISIONS = 10_000


def _decision_key(request: Request, rule: Rule, project: str | None) -> tuple[Any, ...]:
    headers = request.headers
    return (headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
            if "cookie" in headers else None, project, rule.permission, rule.scope,
            headers.get("host"), headers.get("origin"), headers.get("content-type"),
            headers.get("sec-fetch-site"), "transfer-encoding" in headers,
            headers.get("content-length", "0") != "0")


async def _check(request: Request, state: ServerState, rule: Rule, route: str,
                 project: str | None) -> None:
    """``authorize``: from the decision cache, inline when the auth cache answers it
    without the database (same checks, same result), else in the thread pool."""
    db = database_key(state.store)
    key = _decision_key(request, rule, project)
    now = time.monotonic()
    found = _DECISIONS.get(key)
    if found is not None and found.generation == AUTH_CACHE.generation(db) and \
            now - found.stored_at < AUTH_CACHE.ttl and (
            found.expires_at is None or found.expires_at > utcnow()):
        request.state.ctx = RequestContext(
            project=project or "default", actor=found.actor, token_id=found.token_id,
            client=request.client.host if request.client else None,
            request_id=getattr(request.state, "request_id", None) or new_id())
        return
    generation = AUTH_CACHE.generation(db)
    if _cached_allow(request, state, rule, project):
        authorize(request, rule, route)
    else:
        await asyncio.to_thread(authorize, request, rule, route)
    ctx = getattr(request.state, "ctx", None)
    token = _cached_token(request, state)
    if ctx is None or token is None or AUTH_CACHE.ttl <= 0:
        return
    if len(_DECISIONS) >= _MAX_DECISIONS:
        _DECISIONS.pop(next(iter(_DECISIONS)))
    _DECISIONS[key] = _Decision(ctx.actor, ctx.token_id, token.expires_at, generation, now)


def _cached_token(request: Request, state: ServerState) -> CachedToken | None:
    try:
        token = presented_token(request)
        if not token:
            return None
        parsed = parse_token(token)
    except ShipyardError:
        return None
    return AUTH_CACHE.token(database_key(state.store), parsed.lookup)


def _cached_allow(request: Request, state: ServerState, rule: Rule, project: str | None
                  ) -> bool:
    """True when the auth cache holds this token (and its role in ``project``) and they
    allow ``rule``: ``authorize`` will then neither read the database nor write a denial."""
    try:
        token = presented_token(request)
        if not token:
            return False
        parsed = parse_token(token)
    except ShipyardError:
        return False
    db = database_key(state.store)
    cached = AUTH_CACHE.token(db, parsed.lookup)
    if cached is None:
        return False
    if rule.scope == "authenticated" or rule.permission is None:
        return True
    if cached.project is not None and cached.project != project:
        return False
    role: Role | None
    if cached.is_admin:
        role = Role.ADMIN
    else:
        if project is None:
            return False
        hit, role = AUTH_CACHE.role(db, cached.principal_id, project)
        if not hit:
            return False
    held = ROLE_PERMISSIONS[role] if role is not None else frozenset()
    return rule.permission in effective_permissions(cached.scopes, held)


# -- the body ------------------------------------------------------------------------------------

async def _read_body(scope: Scope, receive: Receive, state: ServerState) -> bytes:
    limit = state.json_limit
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if not text.isdigit() or len(text) > 18:
                raise InvalidArgument("Content-Length is not a non-negative number",
                                      field="content-length")
            if int(text) > limit:
                raise TooLarge(f"the request body is {text} bytes; the limit for this route "
                               f"is {limit} bytes", field="body")
    timeout = float(state.settings.extra.get("body_timeout", BODY_TIMEOUT))
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            message: Message = await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            raise BodyTimeout(f"no part of the request body arrived for {timeout:g} s; the "
                              "server stopped waiting for it") from None
        if message["type"] == "http.disconnect":
            raise InvalidArgument("the client went away before sending the body",
                                  field="body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request body exceeds the limit for this route: {limit} "
                           "bytes", field="body")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodyTimeout(InvalidArgument):
    """408: the body stalled (``server.errors`` has no kind for it, so it is answered here)."""

    kind = "invalid_argument"


# -- the protocols ---------------------------------------------------------------------------

def _json(raw: bytes) -> Any:
    if not raw:
        raise InvalidArgument("the request body is empty: send a JSON object", field="body")
    try:
        return wire.loads(raw)
    except ValueError as exc:
        error = exc
    # The standard library reads what orjson refuses: NaN, Infinity and integers past 64
    # bits. Name the part of the body that holds them.
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidArgument(f"the request body is not valid JSON: {str(error)[:200]}",
                              field="body") from None
    part = next((key for key in _DATA_KEYS if isinstance(body, dict) and key in body), "body")
    raise InvalidArgument(f"{part} holds NaN, Infinity or an integer beyond 64 bits, which "
                          "this server does not take: send null for a missing value",
                          field=part)


_DATA_KEYS = ("instances", "inputs", "dataframe_split", "dataframe_records")


def _answer(body: dict[str, Any], prediction: Prediction, rows: list[Any]) -> Answer:
    headers = [(b"x-deployed-model-id", prediction.deployed_model_id.encode()),
               (b"x-model-version", str(prediction.model_version).encode())]
    return Answer(200, wire.dumps(body), headers=headers, prediction=prediction,
                  instances=len(prediction.predictions), rows=rows)


async def respond(supervisor: Supervisor, protocol: Protocol, params: dict[str, str],
                  raw: bytes, headers: Any) -> Answer:
    """The protocol's answer for an authorized request's body."""
    project, name = params["project"], params["name"]
    kind = protocol.kind
    if kind == "oip":
        header_length = headers.get("inference-header-content-length")
        text, binary = protocols.split_binary(raw, header_length)
        version = params.get("version")
        signature = supervisor.signature_of(project, name, version)
        rows, echo = protocols.parse_oip(_json(text), binary, _names(signature))
        prediction = await supervisor.predict(project, name, rows, version=version)
        return _answer(protocols.oip_answer(prediction, name, echo), prediction, rows)
    if kind == "mlflow":
        signature = supervisor.signature_of(project, name)
        rows = protocols.parse_mlflow(_json(raw), _names(signature))
        prediction = await supervisor.predict(project, name, rows)
        return _answer({"predictions": prediction.predictions}, prediction, rows)
    if kind == "raw":
        # rawPredict passes any of the accepted request shapes through as they are.
        body = _json(raw)
        if isinstance(body, dict) and set(body) <= {"instances", "parameters"}:
            rows = protocols.parse_vertex(body)
        else:
            rows = protocols.parse_mlflow(body, _names(supervisor.signature_of(project, name)))
        prediction = await supervisor.predict(project, name, rows)
        return _answer({"predictions": prediction.predictions}, prediction, rows)
    if kind == "explain":
        body = _json(raw)
        override = body.pop("explanationSpecOverride", None) if isinstance(body, dict) else None
        method, path_count = parse_override(override)
        rows = protocols.parse_vertex(body)
        prediction, explanations = await supervisor.explain(project, name, rows, method,
                                                            path_count)
        return _answer({**protocols.vertex_answer(prediction), "explanations": explanations},
                       prediction, rows)
    rows = protocols.parse_vertex(_json(raw))
    prediction = await supervisor.predict(project, name, rows)
    if kind == "kserve":
        return _answer(protocols.kserve_v1_answer(prediction, name), prediction, rows)
    return _answer(protocols.vertex_answer(prediction), prediction, rows)


def _names(signature: dict[str, Any] | None) -> list[str] | None:
    from shipyard.serving.instances import signature_names

    return signature_names(signature)


# -- the same paths as FastAPI routes (OpenAPI, the policy test, the REST reference) -------

router = APIRouter(tags=["prediction"], responses=PROBLEM_RESPONSES)

_ROWS = {"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
         "items": {"anyOf": [{"type": "array", "minItems": 1}, {"type": "object"}]}}
_VERTEX_BODY: dict[str, Any] = {
    "type": "object", "required": ["instances"], "additionalProperties": False,
    "properties": {"instances": _ROWS,
                   "parameters": {"anyOf": [{"type": "object"}, {"type": "null"}]}}}
_PATHS = {"type": "object", "additionalProperties": False, "properties": {
    "pathCount": {"type": "integer", "minimum": 1, "maximum": 50}}}
_OVERRIDE = {"type": "object", "required": ["parameters"], "additionalProperties": False,
             "properties": {"parameters": {
                 "type": "object", "minProperties": 1, "maxProperties": 1,
                 "additionalProperties": False, "properties": {
                     "sampledShapleyAttribution": _PATHS, "autoAttribution": _PATHS,
                     "treeShapAttribution": {"type": "object", "maxProperties": 0}}}}}
_EXPLAIN_BODY: dict[str, Any] = {**_VERTEX_BODY, "properties": {
    **_VERTEX_BODY["properties"],
    "explanationSpecOverride": {"anyOf": [_OVERRIDE, {"type": "null"}]}}}


def _one_key(key: str, schema: dict[str, Any], *others: str) -> dict[str, Any]:
    return {"type": "object", "required": [key], "additionalProperties": False,
            "properties": {key: schema, **{o: {"type": "object"} for o in others}}}


_MLFLOW_BODY: dict[str, Any] = {"oneOf": [
    _one_key("dataframe_split", {"type": "object", "required": ["data"],
                                 "properties": {"columns": {"type": "array", "items": {
                                     "type": "string", "maxLength": 256}}, "data": _ROWS}},
             "params"),
    _one_key("dataframe_records", _ROWS, "params"),
    _one_key("instances", _ROWS, "params"),
    _one_key("inputs", {"anyOf": [_ROWS, {"type": "object", "minProperties": 1}]}, "params"),
]}
_RAW_BODY: dict[str, Any] = {"oneOf": [_VERTEX_BODY, *_MLFLOW_BODY["oneOf"][:2],
                                       _MLFLOW_BODY["oneOf"][3]]}
_TENSOR = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": protocols.MAX_NAME},
    "shape": {"type": "array", "minItems": 1, "maxItems": 2,
              "items": {"type": "integer", "minimum": 0, "maximum": 10**9}},
    "datatype": {"type": "string", "maxLength": 16},
    "data": {"type": "array"}, "parameters": {"type": "object"}}}
_OIP_BODY: dict[str, Any] = {
    "type": "object", "required": ["inputs"], "additionalProperties": False, "properties": {
        "id": {"type": "string", "maxLength": protocols.MAX_NAME},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "minItems": 1, "maxItems": protocols.MAX_TENSORS,
                   "items": _TENSOR},
        "outputs": {"type": "array", "maxItems": 1, "items": {
            "type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "maxLength": protocols.MAX_NAME},
                "parameters": {"type": "object"}}}}}}
_BODIES = {"vertex": _VERTEX_BODY, "kserve": _VERTEX_BODY, "explain": _EXPLAIN_BODY,
           "raw": _RAW_BODY, "mlflow": _MLFLOW_BODY, "oip": _OIP_BODY}


async def _through(request: Request, kind: str, template: str) -> Response:
    """Answer a request that reached FastAPI (the layer above was not installed)."""
    protocol = next(p for p in PROTOCOLS if p.template == template and p.kind == kind)
    answer = await handle(request.scope, request.receive, protocol,
                          dict(request.path_params))
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type,
                    headers={k.decode(): v.decode() for k, v in answer.headers or []})


_NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 128,
                "pattern": params.NAME_PATTERN}
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "project": _NAME_SCHEMA, "name": _NAME_SCHEMA,
    "location": {"type": "string", "minLength": 1, "maxLength": 64},
    "version": {"type": "string", "minLength": 1, "maxLength": 140},
}


def _declare(template: str, kind: str, summary: str) -> None:
    async def route(request: Request) -> Response:
        return await _through(request, kind, template)

    route.__name__ = f"{kind}_{template.strip('/').replace('/', '_').replace('{', '')}"
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": _PATH_SCHEMAS[name]}
                  for name in re.findall(r"\{(\w+)\}", template)]
    body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _BODIES[kind]}}}}
    router.add_api_route(template, route, methods=["POST"], summary=summary,
                         openapi_extra={**body, "parameters": parameters})


_declare(EXPLAIN, "explain", "Vertex explain: predictions and feature attributions "
         "(explanationSpecOverride picks the method and path count)")
_declare(EXPLAIN_GOOGLE, "explain", "Vertex explain on Vertex's own path (any location)")
_declare(RAW, "raw", "Vertex rawPredict: any accepted request shape, predictions back")
_declare(RAW_GOOGLE, "raw", "Vertex rawPredict on Vertex's own path (any location)")
_declare(KSERVE_V1, "kserve", "KServe V1 predict (the endpoint's project: predict)")
_declare(OIP_INFER, "oip", "OIP (V2) inference (the endpoint's project: predict)")
_declare(OIP_VERSION_INFER, "oip", "OIP (V2) inference of a pinned version (the endpoint's "
         "project: predict)")
_declare(MLFLOW, "mlflow", "MLflow scoring: dataframe_split, dataframe_records, instances "
         "or inputs (the endpoint's project: predict)")


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
    await _check(request, state, READ_ON_PROJECT, request.scope["route"].path, project)
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
    from shipyard.serving.replicas import _pinned

    route = supervisor.routes.get((project, name))
    if route is None:
        raise NotFound(f"no endpoint named {name!r} serves predictions here", field="name")
    return _pinned(route, name, version)


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
    states = {r["deployed_model_id"]: r["state"] for r in supervisor.status()
              if r["project"] == project and r["endpoint"] == name}
    return bool(targets) and all(states.get(t.deployment.id) == "ready" for t in targets)



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
        raise FailedPrecondition("request logging is off on this server (it needs a local "
                                 "artifact store)")
    supervisor.request_log.feedback(
        project, name, [(i.request_id, i.instance, i.ground_truth) for i in body.feedback])
    return {"recorded": len(body.feedback)}
