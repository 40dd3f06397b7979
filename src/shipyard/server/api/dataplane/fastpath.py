"""The fast layer: an ASGI middleware that answers every prediction route before FastAPI's
routing, and passes everything else on.

For each request it makes the checks FastAPI's stack would, in the same order: the path's
bounds, authorization (``access``), the body (bounded by the JSON limit, 413, and the body
timeout, 408), then the protocol's parse and the replica's answer (``vertex``, ``mlflow``,
``oip``); then the metrics and, for a sampled request that was answered or failed once
routed to a deployment, the request log (a failure with its status and error).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import FailedPrecondition, InvalidArgument, ShipyardError, TooLarge
from shipyard.ids import new_id
from shipyard.security.headers import API_SECURITY_HEADERS
from shipyard.server.api.dataplane import mlflow, oip, vertex
from shipyard.server.api.dataplane.access import authorize_request
from shipyard.server.api.dataplane.answers import Answer, names
from shipyard.server.api.dataplane.paths import PATH_SCHEMAS, PROTOCOLS, MatchedRoute, Protocol
from shipyard.server.errors import from_error, problem, redact
from shipyard.server.state import ServerState
from shipyard.serving.dataplane import CALL, Call
from shipyard.serving.replicas import Supervisor
from shipyard.serving.requestlog import Logged, setting
from shipyard.validation import check_name

log = logging.getLogger(__name__)

BODY_TIMEOUT = 30.0

_SECURITY = [(k.lower().encode(), v.encode()) for k, v in API_SECURITY_HEADERS.items()]


class DataPlane:
    """ASGI middleware: answers the prediction routes, passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and _settles(scope):
            await self.app(scope, receive, _settling(send))
            return
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


# The tail of the latency, measured under wrk (bench/serving.py's workload): a full
# collection of the server's heap (some 280,000 objects once FastAPI, pydantic, SQLAlchemy
# and pyarrow are loaded) stopped the event loop for 0.1-0.6 s every few thousand requests;
# and a thread holding the GIL (the request log's writer building its table) kept the loop
# waiting up to the interpreter's switch interval, 5 ms, each time it wanted the GIL back.
SWITCH_INTERVAL = 0.001


def settle_heap() -> None:
    """Once the server has started: collect, then freeze what is left (``gc.freeze``: the
    modules, the app, the settings, the replicas' pools; alive for the server's life), so
    later collections walk only what requests made; and a 1 ms switch interval. For a
    process that is the server (``shipyard server`` sets ``serving_settle_heap``): in a
    process that makes many apps (tests), frozen apps would never be freed."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL)


def _settles(scope: Scope) -> bool:
    state = getattr(getattr(scope.get("app"), "state", None), "shipyard", None)
    extra = state.settings.extra if state is not None else {}
    return setting(extra, "serving_settle_heap", "0") == "1"


def _settling(send: Send) -> Send:
    async def forward(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            settle_heap()
        await send(message)

    return forward


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
    scope["route"] = MatchedRoute(protocol.template)
    if protocol.kind == "oip":
        _type_oip_body(scope)
    scope.setdefault("state", {})
    request = Request(scope, receive)
    started = time.perf_counter()
    call = Call(str(scope["state"].get("request_id") or new_id()))
    token = CALL.set(call)
    error: str | None = None
    try:
        state, supervisor = _serving(state, supervisor)
        _check_path(params)
        await authorize_request(request, state, supervisor, protocol, params)
        raw = await _read_body(scope, receive, state)
        answer = await respond(supervisor, protocol, params, raw, request.headers)
    except BodyTimeout as exc:
        response = problem(408, exc.message, kind="invalid_argument", field="body",
                           headers={"Connection": "close"})
        answer = Answer(408, bytes(response.body), "application/problem+json",
                        [(b"connection", b"close")])
    except ShipyardError as exc:
        answer = _problem_answer(exc, state)
        error = f"{exc.kind}: {exc.message}"
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
            error = f"internal: {type(exc).__name__}"
    finally:
        CALL.reset(token)
    seconds = time.perf_counter() - started
    if supervisor is not None:
        _observe(supervisor, protocol, params, answer, call, error, seconds)
    return answer


def _observe(supervisor: Supervisor, protocol: Protocol, params: dict[str, str],
             answer: Answer, call: Call, error: str | None, seconds: float) -> None:
    """The request's metrics, and its request log row when sampled: an answer, or a failure
    after routing (against the deployment that was to answer it)."""
    found = answer.prediction
    routed = call.deployment if found is None else None
    project, name = params.get("project", ""), params.get("name", "")
    if found is None and (project, name) not in supervisor.routes:
        project = name = ""  # not a served endpoint: no series per name a caller sends
    # A failure after routing counts against the deployment that was to answer it, so a
    # version that fails shows in its own error series.
    series_id, series_version = "", ""
    if found is not None:
        series_id, series_version = found.deployed_model_id, str(found.model_version)
    elif routed is not None and project:
        series_id, series_version = routed.id, str(routed.version)
    supervisor.metrics.observe(project, name, series_id, series_version, protocol.kind,
                               answer.status, seconds, answer.instances)
    logged = supervisor.request_log
    if logged is None:
        return
    if found is not None and answer.rows is not None:
        rows, predictions, status = answer.rows, found.predictions, 200
        deployed_model_id, version = found.deployed_model_id, found.model_version
    elif routed is not None and isinstance(call.instances, list) and call.instances and \
            project:
        rows, predictions, status = call.instances, [], answer.status
        deployed_model_id, version = routed.id, routed.version
    else:
        return
    if not logged.sampled():
        return
    signature = supervisor.signature_of(project, name, deployed_model_id)
    logged.record(Logged(
        request_id=call.request_id, time=time.time(), project=project, endpoint=name,
        deployed_model_id=deployed_model_id, model_version=version, protocol=protocol.kind,
        latency_ms=seconds * 1000, rows=rows, predictions=predictions,
        names=names(signature), status=status,
        error=None if status == 200 else error or f"http {status}"))


def _check_path(params: dict[str, str]) -> None:
    """The bounds the routes declare (``PATH_SCHEMAS``), 400 naming the parameter."""
    for key, value in params.items():
        if key in ("project", "name"):
            check_name(value, key)
        elif not 1 <= len(value) <= PATH_SCHEMAS[key]["maxLength"]:
            raise InvalidArgument(f"{key} must be 1 to {PATH_SCHEMAS[key]['maxLength']} "
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



Responder = Callable[[Supervisor, str, str, bytes], Awaitable[Answer]]
_RESPONDERS: dict[str, Responder] = {
    "vertex": vertex.predict, "kserve": vertex.kserve, "explain": vertex.explain,
    "mlflow": mlflow.invocations, "raw": mlflow.raw_predict}


async def respond(supervisor: Supervisor, protocol: Protocol, params: dict[str, str],
                  raw: bytes, headers: Any) -> Answer:
    """The protocol's answer for an authorized request's body."""
    project, name = params["project"], params["name"]
    if protocol.kind == "oip":
        return await oip.infer(supervisor, project, name, raw, headers, params.get("version"))
    return await _RESPONDERS[protocol.kind](supervisor, project, name, raw)
