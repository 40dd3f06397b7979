"""The access log: one line per request, through ``logging``, with structured fields.

Logged by ``shipyard.server.access`` at INFO when the response has been sent (or the
request failed): the request id (also sent back as ``X-Request-ID`` and recorded in the
audit rows the request writes), the principal (``anonymous`` on public routes, ``-`` when
the request was refused before anyone was authenticated), the method, the route's path
template (never the literal path: ``/login/{code}`` must not log its one-time code), the
status and the latency in milliseconds. Each is also on the record as an attribute
(``request_id``, ``principal``, ``method``, ``route``, ``status``, ``latency_ms``) for
structured handlers.

Plain ASGI rather than ``BaseHTTPMiddleware``: it wraps every other middleware, so the
answers they give themselves (413 and 408 from the body limits) are logged too, and it
adds no task or buffering to the response.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.ids import new_id
from shipyard.server.auth import route_path

__all__ = ["ACCESS_LOGGER", "REQUEST_ID_HEADER", "AccessLog"]

ACCESS_LOGGER = "shipyard.server.access"
REQUEST_ID_HEADER = "x-request-id"

log = logging.getLogger(ACCESS_LOGGER)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Our own id, never the client's: it keys audit rows, so a caller may not pick it.
        request_id = new_id()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500  # if the app fails before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _log(scope, state, request_id, status, time.perf_counter() - started)


def _log(scope: Scope, state: dict[str, Any], request_id: str, status: int,
         seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    ctx = state.get("ctx")
    principal = getattr(ctx, "actor", None) or "-"
    route = route_path(Request(scope)) or "-"
    fields = {
        "request_id": request_id,
        "principal": principal,
        "method": scope.get("method", "-"),
        "route": route,
        "status": status,
        "latency_ms": round(seconds * 1000, 1),
    }
    log.info(
        "request_id=%s principal=%s method=%s route=%s status=%d latency_ms=%.1f",
        *fields.values(), extra=fields,
    )
