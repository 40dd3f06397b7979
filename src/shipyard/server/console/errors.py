"""Error pages for browsers.

``server.errors`` answers every error as problem+json. For a console page asked for by a
browser (``Accept: text/html``) this wraps those handlers: the problem they built becomes
an HTML page with the same status and message (so redaction and the status table stay in
one place), and a missing or expired session becomes a redirect to the sign-in form
(except on a one-time login link, whose page says the link is used or expired).
Anything else (the API, curl, the policy tests) gets the problem unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

__all__ = ["install", "is_console_page"]

Handler = Callable[[Request, Exception], Awaitable[Response] | Response]


def is_console_page(request: Request) -> bool:
    path = request.url.path
    return (path == "/" or path.startswith(("/console/", "/login/"))) and (
        "text/html" in request.headers.get("accept", ""))


def install(app: FastAPI) -> None:
    for kind, handler in list(app.exception_handlers.items()):
        app.exception_handlers[kind] = _for_browsers(handler)


def _for_browsers(handler: Handler) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def answer(request: Request, exc: Exception) -> Response:
        result = handler(request, exc)
        response = await result if isinstance(result, Awaitable) else result
        if not is_console_page(request):
            return response
        return page_for(request, response)

    return answer


def page_for(request: Request, problem: Response) -> Response:
    """The HTML page for the problem response ``problem``."""
    from shipyard.server.console.rendering import render
    from shipyard.server.console.session import LOGIN_PATH

    status = problem.status_code
    # A used or expired login link says so (signing in would only lead back to it).
    if status == 401 and not request.url.path.startswith("/login/"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}",
                                status_code=303)
    body: dict[str, Any] = {}
    try:
        body = json.loads(bytes(problem.body))
    except (ValueError, TypeError):
        body = {}
    response = render(request, "error.html", {
        "status": status,
        "title": str(body.get("title", "Error")),
        "detail": str(body.get("detail", "")),
        "field": body.get("field"),
        # The error page must not ask the store again (it may be the store that failed).
        "csrf": "",
    }, status_code=status)
    for name in ("retry-after", "allow"):
        if name in problem.headers:
            response.headers[name] = problem.headers[name]
    return response
