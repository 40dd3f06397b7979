"""The Vertex AI SDK calls the seeds use, on Shipyard: ``from shipyard import aiplatform``
in place of ``from google.cloud import aiplatform``.

``init(project=..., location=...)``, ``Endpoint.list(filter=...)``,
``Endpoint(name).predict(instances=...)`` -> ``.predictions``, ``.deployed_model_id``,
``.model_version_id``; ``endpoint.explain(instances=...)`` ->
``.explanations[0].attributions[0].feature_attributions``; ``Model.list(filter=...)`` on
``display_name`` and ``labels.<key>``. An adapter like the CLI: built on the public SDK
(``import shipyard as sy``), so it works in local mode and through a server alike.

- The Vertex *project* is the Shipyard project (``init(project=...)`` switches to it and
  keeps the session's store or server); the *location* is accepted and kept for resource
  names, as one installation has one region.
- Filters: ``key="value"`` (or ``key=value``) terms joined by ``AND``, on ``display_name``
  and ``labels.<key>`` (Vertex's syntax for these; other operators are refused naming the
  filter).
- A scalar prediction is a ``float`` that also answers ``[0]`` with itself, so code written
  for a model answering one-element lists (seed 002's ``predictions[0][0]``) runs as it is.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, SupportsIndex

import shipyard as sy
from shipyard.errors import InvalidArgument, NotFound

__all__ = [
    "Attribution",
    "Endpoint",
    "Explanation",
    "Model",
    "Prediction",
    "init",
]

_state: dict[str, str] = {"location": "us-central1"}


def init(*, project: str | None = None, location: str | None = None,
         experiment: str | None = None, staging_bucket: str | None = None,
         credentials: Any = None, encryption_spec_key_name: str | None = None,
         service_account: str | None = None, network: str | None = None,
         api_endpoint: str | None = None, api_transport: str | None = None,
         request_metadata: Sequence[tuple[str, str]] | None = None) -> None:
    """Vertex's ``aiplatform.init``: ``project`` becomes the Shipyard project (the store or
    server stays the session's); ``location`` is kept for resource names. The other
    arguments are Google Cloud's and are accepted and ignored."""
    if location is not None:
        _state["location"] = str(location)
    if project is not None and project != _project():
        from shipyard.sdk import session

        now = session.settings()
        sy.init(project=project, uri=now.uri, artifacts=now.artifacts, home=now.home,
                token=now.token)


def _project() -> str:
    from shipyard.sdk import session

    return session.settings().project


# -- filters -------------------------------------------------------------------------------

_TERM = re.compile(r'\s*([A-Za-z_][\w.\-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s"]+)\s*')


def _parse_filter(text: str | None) -> list[tuple[str, str]]:
    """``display_name="x" AND labels.k="v"`` as ``[(key, value), ...]``."""
    if text is None or not text.strip():
        return []
    if not isinstance(text, str) or len(text) > 2000:
        raise InvalidArgument("filter must be a string of at most 2000 characters",
                              field="filter")
    terms = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        match = _TERM.fullmatch(part)
        if match is None:
            raise InvalidArgument(
                f"filter term {part[:100]!r}: write key=\"value\" terms joined by AND, on "
                "display_name or labels.<key>", field="filter")
        key, value = match[1], match[2]
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if key != "display_name" and not key.startswith("labels."):
            raise InvalidArgument(f"filter on {key!r}: only display_name and labels.<key> "
                                  "are supported", field="filter")
        terms.append((key, value))
    return terms


def _matches(terms: list[tuple[str, str]], display_name: str,
             *labels: Mapping[str, str]) -> bool:
    for key, value in terms:
        if key == "display_name":
            if display_name != value:
                return False
        elif not any(found.get(key.removeprefix("labels.")) == value for found in labels):
            return False
    return True


def _resource_id(name: str, kind: str) -> str:
    """``projects/p/locations/l/<kind>/<id>`` or a bare id -> the id."""
    if "/" in name:
        parts = name.strip("/").split("/")
        if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" \
                or parts[4] != kind:
            raise InvalidArgument(f"{name[:200]!r} is not a {kind} resource name "
                                  f"(projects/P/locations/L/{kind}/ID)", field=f"{kind}_name")
        return parts[5]
    return name


# -- answers ---------------------------------------------------------------------------------


class _Scalar(float):
    """A scalar prediction that also answers ``[0]`` (and ``[-1]``) with itself."""

    def __getitem__(self, index: SupportsIndex) -> float:
        if int(index) in (0, -1):
            return float(self)
        raise IndexError("a scalar prediction has one value")

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[float]:
        yield float(self)


def _prediction_value(value: Any) -> Any:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return _Scalar(value)
    return value


@dataclass(frozen=True)
class Attribution:
    """One output's attribution (Vertex's ``Attribution``)."""

    baseline_output_value: float
    instance_output_value: float
    feature_attributions: dict[str, float]
    output_index: list[int]
    approximation_error: float
    output_display_name: str = ""
    output_name: str = ""


@dataclass(frozen=True)
class Explanation:
    """One instance's explanation: ``attributions[0]`` (one output explained)."""

    attributions: list[Attribution]


@dataclass(frozen=True)
class Prediction:
    """Vertex's ``Prediction``: ``predictions``, the deployed model that answered,
    ``explanations`` for ``explain``."""

    predictions: list[Any]
    deployed_model_id: str
    model_version_id: str
    model_resource_name: str
    explanations: list[Explanation] | None = None


# -- endpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployedModel:
    id: str
    model: str
    model_version_id: str
    display_name: str
    traffic_percentage: int


class Endpoint:
    """A Shipyard endpoint, seen as a Vertex ``aiplatform.Endpoint``."""

    def __init__(self, endpoint_name: str, project: str | None = None,
                 location: str | None = None, credentials: Any = None) -> None:
        if project is not None:
            init(project=project)
        if location is not None:
            _state["location"] = location
        self._ep = sy.get_endpoint(_resource_id(endpoint_name, "endpoints"))

    @classmethod
    def _wrap(cls, endpoint: Any) -> Endpoint:
        self = cls.__new__(cls)
        self._ep = endpoint
        return self

    @classmethod
    def list(cls, filter: str | None = None, order_by: str | None = None,
             project: str | None = None, location: str | None = None,
             credentials: Any = None) -> list[Endpoint]:
        """The project's endpoints matching ``filter`` (by ``display_name``, ``labels.k``),
        newest first as Vertex lists them unless ``order_by="display_name"``."""
        terms = _parse_filter(filter)
        if project is not None:
            init(project=project)
        found = [e for e in sy.list_endpoints() if _matches(terms, e.name, e.labels)]
        if order_by == "display_name":
            found.sort(key=lambda e: e.name)
        else:
            found.sort(key=lambda e: e.created_at, reverse=True)
        return [cls._wrap(e) for e in found]

    @property
    def name(self) -> str:
        return str(self._ep.name)

    @property
    def display_name(self) -> str:
        return str(self._ep.name)

    @property
    def resource_name(self) -> str:
        return f"projects/{self._ep.project}/locations/{_state['location']}/endpoints/" \
               f"{self._ep.name}"

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._ep.labels)

    @property
    def create_time(self) -> datetime:
        return self._ep.created_at  # type: ignore[no-any-return]

    @property
    def update_time(self) -> datetime:
        return self._ep.updated_at  # type: ignore[no-any-return]

    @property
    def traffic_split(self) -> dict[str, int]:
        return dict(self._ep.refresh().traffic)

    def monitoring_stats(self) -> dict[str, Any]:
        """The newest run of the endpoint's monitors: ``["feature_metrics"][feature]
        ["drift_score"]``, as seed 002 reads it (Shipyard's, not a Vertex API)."""
        return sy.monitoring_stats(self._ep.name)

    def list_models(self) -> builtins.list[DeployedModel]:
        return [DeployedModel(d.id, d.model, str(d.version), d.id, d.traffic_percentage)
                for d in self._ep.refresh().deployments]

    def predict(self, instances: builtins.list[Any], parameters: Any = None, timeout: Any = None,
                use_raw_predict: bool = False, *, use_dedicated_endpoint: bool = False
                ) -> Prediction:
        answer = self._ep.predict(instances)
        return Prediction(
            predictions=[_prediction_value(p) for p in answer.predictions],
            deployed_model_id=answer.deployed_model_id,
            model_version_id=str(answer.model_version),
            model_resource_name=_model_resource(answer.model))

    def explain(self, instances: builtins.list[Any], parameters: Any = None,
                deployed_model_id: str | None = None, timeout: Any = None,
                explanation_spec_override: Mapping[str, Any] | None = None) -> Prediction:
        method, path_count = _override(explanation_spec_override)
        answer = self._ep.explain(instances, method=method, path_count=path_count)
        explanations = [Explanation(attributions=[
            Attribution(
                baseline_output_value=float(a["baselineOutputValue"]),
                instance_output_value=float(a["instanceOutputValue"]),
                feature_attributions=dict(a["featureAttributions"]),
                output_index=list(a.get("outputIndex", [0])),
                approximation_error=float(a.get("approximationError", 0.0)))
            for a in item["attributions"]]) for item in answer.explanations]
        return Prediction(
            predictions=[_prediction_value(p) for p in answer.predictions],
            deployed_model_id=answer.deployed_model_id,
            model_version_id=str(answer.model_version),
            model_resource_name=_model_resource(answer.model),
            explanations=explanations)

    def __repr__(self) -> str:
        return f"<shipyard.aiplatform.Endpoint {self.resource_name}>"


def _override(spec: Mapping[str, Any] | None) -> tuple[str | None, int | None]:
    """Vertex's ``explanation_spec_override`` in snake or camel case -> (method, paths)."""
    if spec is None:
        return None, None
    params = spec.get("parameters") if isinstance(spec, Mapping) else None
    if not isinstance(params, Mapping):
        raise InvalidArgument("explanation_spec_override needs parameters",
                              field="explanation_spec_override")
    shapley = params.get("sampled_shapley_attribution", params.get("sampledShapleyAttribution"))
    if isinstance(shapley, Mapping):
        count = shapley.get("path_count", shapley.get("pathCount"))
        return "sampled_shapley", None if count is None else int(count)
    raise InvalidArgument("explanation_spec_override: only sampled_shapley_attribution is "
                          "supported", field="explanation_spec_override")


def _model_resource(model: str) -> str:
    return f"projects/{_project()}/locations/{_state['location']}/models/{model}"


# -- models ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """A registered model version, seen as a Vertex ``aiplatform.Model``."""

    display_name: str
    version_id: str
    labels: dict[str, str]
    version_aliases: list[str]
    uri: str
    description: str
    create_time: datetime
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.display_name

    @property
    def resource_name(self) -> str:
        return f"projects/{_project()}/locations/{_state['location']}/models/" \
               f"{self.display_name}@{self.version_id}"

    @property
    def versioned_resource_name(self) -> str:
        return self.resource_name

    @classmethod
    def list(cls, filter: str | None = None, order_by: str | None = None,
             project: str | None = None, location: str | None = None,
             credentials: Any = None) -> list[Model]:
        """Model versions matching ``filter``, newest first: ``display_name`` is the
        model's name; ``labels.k`` matches the labels the version was registered with
        (each Vertex model upload is one version here)."""
        terms = _parse_filter(filter)
        if project is not None:
            init(project=project)
        names = [value for key, value in terms if key == "display_name"]
        if names:
            try:
                models = [sy.get_model(names[0])]
            except NotFound:
                return []
        else:
            models = sy.list_models()
        found = []
        for registered in models:
            if not _matches([t for t in terms if t[0] == "display_name"], registered.name):
                continue
            for v in sy.list_model_versions(registered.name):
                if _matches(terms, v.name, v.labels):
                    found.append(Model(display_name=v.name, version_id=str(v.version),
                                       labels=dict(v.labels),
                                       version_aliases=list(v.aliases), uri=v.uri,
                                       description=v.description, create_time=v.created_at,
                                       metadata=dict(v.metadata)))
        if order_by == "display_name":
            found.sort(key=lambda m: (m.display_name, -int(m.version_id)))
        else:
            found.sort(key=lambda m: m.create_time, reverse=True)
        return found
