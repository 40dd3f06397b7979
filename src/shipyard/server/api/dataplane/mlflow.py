"""MLflow's scoring route (``/endpoints/{name}/invocations``: ``dataframe_split``,
``dataframe_records``, ``instances`` or ``inputs``) and Vertex ``:rawPredict``, which takes
any of the accepted request shapes as they are."""

from __future__ import annotations

from shipyard.server.api.dataplane.answers import Answer, answer, json_body, names
from shipyard.serving import protocols
from shipyard.serving.replicas import Supervisor


async def invocations(supervisor: Supervisor, project: str, name: str, raw: bytes) -> Answer:
    """MLflow scoring: ``{"predictions": [...]}``."""
    signature = supervisor.signature_of(project, name)
    rows = protocols.parse_mlflow(json_body(raw), names(signature))
    prediction = await supervisor.predict(project, name, rows)
    return answer({"predictions": prediction.predictions}, prediction, rows)


async def raw_predict(supervisor: Supervisor, project: str, name: str, raw: bytes) -> Answer:
    """Vertex rawPredict: a Vertex body or any MLflow shape, predictions back."""
    body = json_body(raw)
    if isinstance(body, dict) and set(body) <= {"instances", "parameters"}:
        rows = protocols.parse_vertex(body)
    else:
        rows = protocols.parse_mlflow(body, names(supervisor.signature_of(project, name)))
    prediction = await supervisor.predict(project, name, rows)
    return answer({"predictions": prediction.predictions}, prediction, rows)
