"""Turning a server's problem+json answer back into the ``ShipyardError`` it stands for."""

from __future__ import annotations

import httpx

from shipyard.errors import ERROR_KINDS, ShipyardError, Unavailable

__all__ = ["raise_for_problem"]


def raise_for_problem(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    kind = str(body.get("kind") or "")
    detail = str(body.get("detail") or response.reason_phrase or "request failed")
    field = body.get("field")
    cls = ERROR_KINDS.get(kind)
    if cls is None:
        cls = {400: ERROR_KINDS["invalid_argument"], 401: ERROR_KINDS["unauthenticated"],
               403: ERROR_KINDS["permission_denied"], 404: ERROR_KINDS["not_found"],
               409: ERROR_KINDS["conflict"], 413: ERROR_KINDS["too_large"],
               503: Unavailable}.get(response.status_code, ShipyardError)
    if cls is Unavailable:
        retry = float(response.headers.get("retry-after", "1") or 1)
        raise Unavailable(detail, retry_after=retry, field=field)
    if cls is ERROR_KINDS["missing_dependency"]:
        raise ERROR_KINDS["failed_precondition"](detail, field=field)
    raise cls(detail, field=field if isinstance(field, str) else None)
