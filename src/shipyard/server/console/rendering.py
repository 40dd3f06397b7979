"""Templates and the headers every console page carries.

Templates are autoescaped Jinja2 files shipped in this package (``templates/``). A page
never holds an inline script: data for its charts travels in ``<script
type="application/json">`` blocks that ``static/console.js`` reads, so the content security
policy can allow scripts from this origin only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.security.headers import CONSOLE_SECURITY_HEADERS

__all__ = ["PAGE_HEADERS", "render"]

PAGE_HEADERS: Mapping[str, str] = {
    **CONSOLE_SECURITY_HEADERS,
    # Scripts and styles from this origin only; plotly sets inline styles on the elements
    # it draws and offers its PNG download as a data: URL.
    "Content-Security-Policy": "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]),
    "Referrer-Policy": "same-origin",
    # Pages show what a session may read: never kept by a shared cache or the back button.
    "Cache-Control": "no-store",
    # Not no-referrer: with it, Chromium sends 'Origin: null' on the pages' own form posts,
    # which the server's Origin check refuses. same-origin sends nothing to other sites; no
    # console URL holds a secret (the login link's page is a redirect of the API's).
}


@functools.cache
def environment() -> jinja2.Environment:
    folder = resources.files("shipyard.server.console") / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["duration"] = duration
    env.filters["number"] = number
    return env


def render(request: Request, template: str, context: Mapping[str, Any], *,
           status_code: int = 200) -> HTMLResponse:
    """The page ``template`` with ``context`` plus what every page uses (who is signed in,
    the project, the CSRF token for its forms)."""
    from shipyard.server.console.session import csrf_token

    principal = getattr(request.state, "principal", None)
    ctx = getattr(request.state, "ctx", None)
    values: dict[str, Any] = {
        "request_path": request.url.path,
        "principal": getattr(principal, "name", None),
        "project": request.path_params.get("project") or getattr(ctx, "project", "default"),
        "csrf": csrf_token(request),
        "section": "",
        "may_admin": _acts_as_admin(principal),
    }
    values.update(context)
    page = environment().get_template(template).render(values)
    return HTMLResponse(page, status_code=status_code, headers=dict(PAGE_HEADERS))


def _acts_as_admin(principal: object) -> bool:
    """Whether the signed-in caller may open the admin page (an admin whose token's scopes
    let admin through), known without asking the store: the nav shows it only then."""
    from shipyard.security.principals import Principal
    from shipyard.security.roles import ROLE_PERMISSIONS, Permission, Role
    from shipyard.security.tokens import effective_permissions

    if not isinstance(principal, Principal) or not principal.is_admin:
        return False
    return Permission.ADMIN in effective_permissions(principal.scopes,
                                                     ROLE_PERMISSIONS[Role.ADMIN])


def when(value: datetime | None) -> str:
    """A UTC timestamp as ISO text (``console.js`` shows it in the reader's time zone)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def number(value: object) -> str:
    """A metric value, short: 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()
