"""The web console: server-rendered pages over the same services as the REST API.

Every page is a route of the one app, listed in ``server.policy`` like any other and
checked by the same dependency (``server.auth.enforce``): a page needs the permission its
data needs, and a form's action needs the permission its API twin needs. The console adds
what a browser needs and the API does not:

* ``session``: the login form and the one-time link land on an HttpOnly, SameSite=Strict
  session cookie (``server.auth.SESSION_COOKIE``); every form carries a CSRF token;
* ``rendering``: Jinja2 templates (autoescaped) and the console's headers (a content
  security policy with scripts from this origin only: no inline script, no CDN);
* ``errors``: a browser asking for a console page gets an HTML error page (or, without
  a session, the login form) instead of problem+json; other clients still get problems;
* ``assets``: the console's own CSS and JavaScript, and plotly's, served from the
  installed ``plotly`` package;
* ``traffic``: a small in-memory ring of samples of the serving metrics, for the endpoint
  page's charts over time.
"""

from __future__ import annotations

from fastapi import FastAPI

from shipyard.server.console import (
    admin,
    assets,
    endpoints,
    errors,
    events,
    executions,
    lineage,
    models,
    monitoring,
    overview,
    pipelines,
    runs,
    session,
    traffic,
)

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the console's routes to ``app`` and its HTML error pages (call after
    ``server.errors.install``, whose problems it turns into pages for browsers)."""
    for module in (session, overview, runs, pipelines, lineage, executions, models,
                   endpoints, monitoring, events, admin, assets):
        app.include_router(module.router)
    errors.install(app)
    traffic.install(app)
