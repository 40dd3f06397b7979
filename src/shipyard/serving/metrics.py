"""Prometheus metrics of the data plane: requests, errors and latency per endpoint and model
version.

One ``ServingMetrics`` per server (its own ``CollectorRegistry``, so several servers in one
process, as in tests, keep their own counts). The data plane records every prediction
request once it is answered (``observe``); ``exposition`` renders the text format for
``GET /metrics``, limited to the projects the caller may read.

Series (labels ``project``, ``endpoint``, ``deployed_model_id``, ``model_version``; the last
two are empty for a request refused before a model was chosen):

- ``shipyard_prediction_requests_total`` (also ``protocol``, ``code``): every answer;
- ``shipyard_prediction_errors_total`` (also ``protocol``, ``code``): answers of 400 and up;
- ``shipyard_prediction_latency_seconds``: a histogram of the server's time per request,
  from the first byte of the request to the answer (authorization, body, replica);
- ``shipyard_prediction_instances_total``: instances predicted (a batch counts its rows);
- ``shipyard_replica_in_flight``: requests a deployment's replicas hold right now.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Sub-millisecond to tens of seconds: a one-row answer takes about a millisecond here.
BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.125, 0.25, 0.5, 1.0,
           2.0, 4.0, 8.0, 16.0, 32.0)
MODEL_LABELS = ("project", "endpoint", "deployed_model_id", "model_version")


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("shipyard_prediction_requests", "Prediction requests answered",
                                [*MODEL_LABELS, "protocol", "code"], registry=self.registry)
        self.errors = Counter("shipyard_prediction_errors", "Prediction requests answered "
                              "with an error (status 400 and up)",
                              [*MODEL_LABELS, "protocol", "code"], registry=self.registry)
        self.latency = Histogram("shipyard_prediction_latency_seconds", "Server time per "
                                 "prediction request", MODEL_LABELS, buckets=BUCKETS,
                                 registry=self.registry)
        self.instances = Counter("shipyard_prediction_instances", "Instances predicted",
                                 MODEL_LABELS, registry=self.registry)
        self.registry.register(_InFlight(self))  # type: ignore[arg-type]
        # (project, endpoint, deployed model id, requests held), read at each scrape.
        self.in_flight_source: Callable[[], list[tuple[str, str, str, int]]] = list
        # labels() looks its child up under a lock each time; the hot path keeps them.
        self._children: dict[tuple[str, ...], tuple[Any, ...]] = {}

    def observe(self, project: str, endpoint: str, deployed_model_id: str,
                model_version: str, protocol: str, code: int, seconds: float,
                instances: int = 0) -> None:
        key = (project, endpoint, deployed_model_id, model_version, protocol, str(code))
        children = self._children.get(key)
        if children is None:
            model = key[:4]
            children = (self.requests.labels(*key), self.latency.labels(*model),
                        self.instances.labels(*model),
                        self.errors.labels(*key) if code >= 400 else None)
            if len(self._children) < 100_000:  # bounded whatever names callers send
                self._children[key] = children
        requests, latency, counted, errors = children
        requests.inc()
        latency.observe(seconds)
        if instances:
            counted.inc(instances)
        if errors is not None:
            errors.inc()

    def projects(self) -> set[str]:
        """The projects some series is about."""
        found = set()
        for family in self.registry.collect():
            for sample in family.samples:
                project = sample.labels.get("project")
                if project is not None:
                    found.add(project)
        return found

    def exposition(self, visible: Collection[str] | Callable[[str], bool]) -> bytes:
        """The text format, with the series of the projects in ``visible`` only."""
        allowed = visible if callable(visible) else visible.__contains__
        view = CollectorRegistry(auto_describe=False)
        view.register(_Filtered(self.registry, allowed))  # type: ignore[arg-type]
        return generate_latest(view)


class _Filtered:
    def __init__(self, source: CollectorRegistry, allowed: Callable[[str], bool]) -> None:
        self.source = source
        self.allowed = allowed

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            out.samples = [s for s in family.samples
                           if self.allowed(str(s.labels.get("project", "")))]
            yield out


class _InFlight:
    def __init__(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("shipyard_replica_in_flight", "Requests a deployment's "
                                   "replicas hold now",
                                   labels=["project", "endpoint", "deployed_model_id"])
        for project, endpoint, deployed, count in self.metrics.in_flight_source():
            family.add_metric([project, endpoint, deployed], count)
        yield family
