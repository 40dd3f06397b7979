"""The data plane's paths: the prediction routes' templates, the patterns the fast layer
matches them with, and the bounds of their path parameters (400 naming the parameter)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shipyard.server.api import params

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


class MatchedRoute:
    """What ``server.auth.route_path`` and the access log read from ``scope["route"]``."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path



NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 128,
               "pattern": params.NAME_PATTERN}
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "project": NAME_SCHEMA, "name": NAME_SCHEMA,
    "location": {"type": "string", "minLength": 1, "maxLength": 64},
    "version": {"type": "string", "minLength": 1, "maxLength": 140},
}
