"""The FastAPI application: routers, the policy dependency, limits, the access log and
error handling, over one runtime (``shipyard.runtime``)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from swagger_ui_bundle import swagger_ui_path

from shipyard import __version__
from shipyard.config import Settings, ensure_home
from shipyard.errors import NotFound
from shipyard.runtime import Runtime, open_runtime
from shipyard.security import service as security_service
from shipyard.security.headers import API_SECURITY_HEADERS, CONSOLE_SECURITY_HEADERS
from shipyard.server import console, errors
from shipyard.server.access import AccessLog
from shipyard.server.api import (
    audit,
    automation,
    dataplane,
    events,
    identity,
    lineage,
    monitoring,
    pipelines,
    registry,
    service,
    serving,
    tracking,
)
from shipyard.server.auth import enforce
from shipyard.server.limits import BodyLimit
from shipyard.server.state import ServerState
from shipyard.serving.replicas import Supervisor
from shipyard.serving.service import deployed_versions
from shipyard.store import open_store
from shipyard.worker import Lease, default_sources, start_worker

log = logging.getLogger(__name__)

JSON_LIMIT = 16 * 1024 * 1024
UPLOAD_LIMIT = 5 * 1024**3

# Swagger UI's files come from the swagger-ui-bundle-v2 package and are served by this
# server under DOCS_ASSETS, so /docs works offline and its policy names only this origin.
DOCS_ASSETS = "/docs/assets"
_DOCS_FILES = {  # name under DOCS_ASSETS -> media type; nothing else there is served
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def create_app(
    settings: Settings,
    *,
    json_limit: int = JSON_LIMIT,
    upload_limit: int = UPLOAD_LIMIT,
    worker: bool = True,
    runtime: Runtime | None = None,
    lease: Lease | None = None,
) -> FastAPI:
    """Build the app for ``settings`` (local-mode URIs only: the server owns the store),
    on ``runtime`` or one opened here. With ``worker``, the app runs the embedded worker
    (``shipyard.worker``, its runs leased with ``lease``) over the same runtime while it
    is up; at shutdown the run it is running goes back to the queue."""
    if settings.remote:
        raise ValueError("the server needs a database URI, not another server's URL")
    ensure_home(settings.home)  # the admin credentials live there, whatever the database
    if runtime is None:  # with serving's lookup: registry reads report deployed versions
        runtime = open_runtime(settings, deployment_lookups=(deployed_versions,))
    elif runtime.settings != settings:  # the app's settings (limits, server URL) win
        runtime = dataclasses.replace(runtime, settings=settings)
    state = ServerState(
        runtime=runtime,
        json_limit=json_limit,
        upload_limit=upload_limit,
    )

    # The replica processes of the endpoints' deployments (started with the app).
    replicas = Supervisor(runtime.store, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        replicas.start()
        try:
            async with _worker(app):
                yield
        finally:
            replicas.close()

    @asynccontextmanager
    async def _worker(_: FastAPI) -> AsyncIterator[None]:
        if not worker:
            yield
            return
        handback = threading.Event()
        thread, stop = start_worker(state.runtime,
                                    default_sources(lease=lease, handback=handback))
        try:
            yield
        finally:
            stop.set()
            handback.set()
            thread.join(timeout=10)

    app = FastAPI(
        title="Shipyard",
        version=__version__,
        description="Self-hosted MLOps: tracking, lineage, pipelines and a model registry.",
        dependencies=[Depends(enforce)],
        docs_url=None,
        redoc_url=None,
        # Served by a route below instead, so that the policy dependency (and its Host
        # check) runs on it like on every other route.
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.shipyard = state
    app.state.serving = replicas
    errors.install(app, (str(settings.home), settings.artifacts))
    for module in (service, identity, tracking, lineage, registry, pipelines, serving, events,
                   monitoring, audit):
        app.include_router(module.router)
    app.include_router(automation.router)
    app.include_router(serving.data_plane)
    app.include_router(dataplane.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    docs_page, docs_headers = _docs_page()

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page, headers=docs_headers)

    @app.get(DOCS_ASSETS + "/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        media_type = _DOCS_FILES.get(name)
        if media_type is None:
            raise NotFound(f"no such file: the API reference serves {sorted(_DOCS_FILES)}")
        return FileResponse(
            swagger_ui_path / name, media_type=media_type,
            # The files change only with the package's version.
            headers={"Cache-Control": "public, max-age=86400"},
        )  # fmt: skip

    # The web console's pages (``/`` and ``/console/...``), and HTML error pages for them.
    console.install(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if request.url.path not in ("/docs", "/"):
            for name, value in API_SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    app.add_middleware(BodyLimit, json_limit=json_limit, upload_limit=upload_limit)
    # The prediction routes, answered before the layers above with the same checks
    # (server.api.dataplane); inside the access log.
    app.add_middleware(dataplane.DataPlane)
    # Added last, so outermost: it logs the answers of every other middleware too.
    app.add_middleware(AccessLog)
    return app


def _docs_page() -> tuple[bytes, dict[str, str]]:
    """The Swagger UI page and its headers: a policy allowing scripts, styles and images
    from this origin only (the files under ``DOCS_ASSETS``), the page's inline script by
    hash, and requests to this origin."""
    page = bytes(get_swagger_ui_html(
        openapi_url="/openapi.json", title="Shipyard API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    ).body)
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in re.findall(rb"<script>(.*?)</script>", page, re.DOTALL)
    ]
    policy = "; ".join([
        "default-src 'none'",
        " ".join(["script-src 'self'", *hashes]),
        # Swagger UI sets inline styles as it renders; its icons are data: URIs.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ])
    return page, {**CONSOLE_SECURITY_HEADERS, "Content-Security-Policy": policy}


def bootstrap(settings: Settings) -> str | None:
    """Create the first admin and its token on first start; None when one exists."""
    return security_service.bootstrap_admin(open_store(settings.uri), settings.home)
