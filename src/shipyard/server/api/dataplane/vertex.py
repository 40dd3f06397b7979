"""Vertex ``:predict`` and ``:explain``, and KServe V1 ``/v1/models/{name}:predict``: the
same ``instances`` body, answered in each protocol's shape."""

from __future__ import annotations

from shipyard.server.api.dataplane.answers import Answer, answer, json_body
from shipyard.serving import protocols
from shipyard.serving.explanation import parse_override
from shipyard.serving.replicas import Supervisor


async def predict(supervisor: Supervisor, project: str, name: str, raw: bytes) -> Answer:
    """Vertex predict: ``{"predictions": [...], "deployedModelId": ...}``."""
    rows = protocols.parse_vertex(json_body(raw))
    prediction = await supervisor.predict(project, name, rows)
    return answer(protocols.vertex_answer(prediction), prediction, rows)


async def kserve(supervisor: Supervisor, project: str, name: str, raw: bytes) -> Answer:
    """KServe V1 predict: ``{"predictions": [...]}`` with the model's name."""
    rows = protocols.parse_vertex(json_body(raw))
    prediction = await supervisor.predict(project, name, rows)
    return answer(protocols.kserve_v1_answer(prediction, name), prediction, rows)


async def explain(supervisor: Supervisor, project: str, name: str, raw: bytes) -> Answer:
    """Vertex explain: the predictions and one attribution per instance
    (``explanationSpecOverride`` picks the method and path count)."""
    body = json_body(raw)
    override = body.pop("explanationSpecOverride", None) if isinstance(body, dict) else None
    method, path_count = parse_override(override)
    rows = protocols.parse_vertex(body)
    prediction, explanations = await supervisor.explain(project, name, rows, method,
                                                        path_count)
    return answer({**protocols.vertex_answer(prediction), "explanations": explanations},
                  prediction, rows)
