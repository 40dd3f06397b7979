"""GET /metrics: Prometheus text with requests, errors and latency histograms per endpoint
and model version, each caller seeing the projects it may read."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import assert_problem, make_user
from tests.serving.served import P, Served, xgb_served

__all__ = ["xgb_served"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return sum(v for (n, ls), v in found.items()
               if n == name and all((k, w) in ls for k, w in labels.items()))


def test_requests_errors_and_latency_per_endpoint_and_version(xgb_served: Served) -> None:
    http = xgb_served.http
    before = samples(http.get("/metrics").text)
    for _ in range(3):
        assert http.post(f"{P}/endpoints/xgb:predict",
                         json={"instances": [[0.0] * 10, [1.0] * 10]}).status_code == 200
    assert http.post("/v1/models/xgb:predict", json={"instances": [[0.0] * 9]}
                     ).status_code == 400
    scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    after = samples(scraped.text)
    ok = {"project": "p", "endpoint": "xgb", "model_version": "1",
          "deployed_model_id": "xgb:1"}

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("shipyard_prediction_requests_total", protocol="vertex", code="200",
                **ok) == 3
    assert grew("shipyard_prediction_instances_total", **ok) == 6
    # The latency of the version's requests, its one refusal included.
    assert grew("shipyard_prediction_latency_seconds_count", **ok) == 4
    assert grew("shipyard_prediction_latency_seconds_bucket", le="+Inf", **ok) == 4
    # The refusal came after routing: it counts against the version that was to answer.
    assert grew("shipyard_prediction_errors_total", protocol="kserve", code="400",
                **ok) == 1
    assert grew("shipyard_prediction_errors_total", code="200") == 0
    assert re.search(r'shipyard_replica_in_flight\{.*deployed_model_id="xgb:1".*\} 0',
                     scraped.text)


def test_each_caller_sees_the_projects_it_may_read(xgb_served: Served) -> None:
    http = xgb_served.http
    assert http.post(f"{P}/endpoints/xgb:predict",
                     json={"instances": [[0.0] * 10]}).status_code == 200
    outsider = make_user(http, "metrics-outsider", project="elsewhere", role="manager")
    reader = make_user(http, "metrics-reader", project="p", role="viewer")
    hidden = http.get("/metrics", headers={"Authorization": f"Bearer {outsider}"})
    assert hidden.status_code == 200 and 'endpoint="xgb"' not in hidden.text
    shown = http.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
    assert 'endpoint="xgb"' in shown.text
    assert_problem(http.get("/metrics", headers={"Authorization": ""}), 401)
