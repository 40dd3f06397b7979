"""Errors as RFC 9457 problem+json: one mapping from ``ShipyardError`` kinds to statuses.

Bad input is always a 4xx naming the field; a database that cannot be reached is a 503 with
Retry-After (``store.availability``); an unexpected exception is logged with its traceback
on the server and answered with a bare 500 that leaks nothing.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.errors import HTTP_STATUS, ShipyardError, Unavailable
from shipyard.security.ratelimit import RateLimited
from shipyard.store.availability import database_unavailable

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

# The kinds' statuses live with the errors (local mode logs them too).
STATUS = HTTP_STATUS

TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://shipyard.dev/problems/{kind or 'http'}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if kind:
        body["kind"] = kind
    if field:
        body["field"] = field
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_of(exc: ShipyardError) -> int:
    """The HTTP status for a Shipyard error (a throttled caller is 429, not 503)."""
    if isinstance(exc, RateLimited):
        return 429
    return STATUS.get(exc.kind, 500)


def from_error(exc: ShipyardError) -> JSONResponse:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unavailable):
        # Rounded up: a client that waits exactly this long must not be refused again.
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="shipyard"'
    details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool)}
    return problem(status, exc.message, kind=exc.kind, field=exc.field,
                   headers=headers or None, **details)


def _field_of(loc: Sequence[Any]) -> str:
    # ("body", "metrics", 0, "value") -> "metrics[0].value"; the location prefix is noise.
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


_SCRATCH = re.compile(r"(?:/[^\s'\"]*)?/\.?[\w.-]*(?:shipyard-upload-|\.staging-)[\w.-]*"
                      r"(?:/[^\s'\"]*)?")


def redact(message: str, places: Sequence[str]) -> str:
    """``message`` without the server's own paths: its home, artifact root and temporary
    folders (a caller learns which of its inputs was wrong, not where the server keeps
    things)."""
    message = _SCRATCH.sub("<upload>", message)
    for place in places:
        if place and len(place) > 1:
            message = message.replace(place.rstrip("/"), "<server>")
    return message


def install(app: FastAPI, places: Sequence[str] = ()) -> None:
    """Answer errors as problems; ``places`` (paths of the server's own) never appear in
    one."""
    hidden = sorted({*places, tempfile.gettempdir()}, key=len, reverse=True)

    @app.exception_handler(ShipyardError)
    async def _shipyard(_: Request, exc: ShipyardError) -> JSONResponse:
        if exc.kind == "data_corruption":
            log.error("data corruption: %s", exc.message)
        exc.message = redact(exc.message, hidden)
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        # A JSON syntax error's location is a character offset, not a field.
        field = ("body" if first.get("type") == "json_invalid"
                 else _field_of(first.get("loc", ("body",))))
        message = str(first.get("msg", "invalid value"))
        return problem(400, f"{field}: {message}", kind="invalid_argument", field=field,
                       errors=[{"field": _field_of(e.get("loc", ())), "message": e.get("msg")}
                               for e in errors[:20]])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "too_large" if exc.status_code == 413 else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; RFC 9110 wants
            # every method the path supports.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem(exc.status_code, str(exc.detail), kind=kind,
                       field="body" if kind else None, headers=headers)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        # A driver error the store let through. Handled here rather than as Exception,
        # which Starlette answers from its outermost layer (no access log, no headers).
        unavailable = database_unavailable(exc)
        if unavailable is not None:  # restarting or unreachable: the caller retries
            return from_error(unavailable)
        return await _unexpected(request, exc)

    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(PoolTimeout, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal error; the server log has the details", kind="internal")


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
