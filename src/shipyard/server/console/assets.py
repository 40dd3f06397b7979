"""The console's static files: its own CSS and JavaScript (``static/``) and plotly's
JavaScript, served from the installed ``plotly`` package (never a CDN, never a copy)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from shipyard.errors import FailedPrecondition, NotFound

__all__ = ["ASSETS", "router"]

router = APIRouter(include_in_schema=False)

ASSETS = "/console/static"
_OWN = {"console.css": "text/css; charset=utf-8",
        "console.js": "text/javascript; charset=utf-8"}
_PLOTLY = "plotly.min.js"


@functools.cache
def plotly_file() -> Path:
    try:
        import plotly
    except ImportError:
        raise FailedPrecondition("the console's charts need plotly, a dependency of "
                                 "shipyard: pip install plotly") from None
    return Path(plotly.__file__).parent / "package_data" / _PLOTLY


@router.get(ASSETS + "/{name}")
def asset(name: str) -> Response:
    if name == _PLOTLY:
        path, media_type = plotly_file(), "text/javascript; charset=utf-8"
    elif name in _OWN:
        path = Path(str(resources.files("shipyard.server.console") / "static" / name))
        media_type = _OWN[name]
    else:
        raise NotFound(f"no such file: the console serves {sorted([*_OWN, _PLOTLY])}",
                       field="name")
    return FileResponse(path, media_type=media_type,
                        headers={"Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})
