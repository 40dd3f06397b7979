"""Bounds and overload on the data plane: request size and batch size are bounded, a
replica that does not answer in time is a 503, a replica at its in-flight limit sheds
requests at once with 503 and Retry-After instead of queueing them, and nothing hangs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shipyard.serving.replicas import Supervisor
from tests.server.conftest import assert_problem
from tests.serving.served import P, Served, xgb_served

__all__ = ["xgb_served"]

BIG = [[1, 2.0]] * 10_000  # the most one request may hold, to the linear model


@pytest.fixture
def supervisor(xgb_served: Served) -> Iterator[Supervisor]:
    found: Supervisor = xgb_served.server.app.state.serving
    before = (found.max_in_flight, found.request_timeout)
    yield found
    found.max_in_flight, found.request_timeout = before


def test_size_and_batch_bounds(xgb_served: Served) -> None:
    http = xgb_served.http
    for url in (f"{P}/endpoints/linear:predict", "/v1/models/linear:predict"):
        assert http.post(url, json={"instances": BIG}).status_code == 200
        assert_problem(http.post(url, json={"instances": [*BIG, [1, 2.0]]}), 400, "instances")
        huge = http.post(url, content=b" " * (17 * 1024 * 1024),
                         headers={"Content-Type": "application/json"})
        assert_problem(huge, 413, "body")
    rows = {"inputs": [{"name": "x", "shape": [10_001, 2], "datatype": "FP64",
                        "data": [1.0] * 20_002}]}
    assert_problem(http.post("/v2/models/linear/infer", json=rows), 400, "inputs[0].shape")


def test_a_replica_that_does_not_answer_in_time_is_a_503(xgb_served: Served,
                                                        supervisor: Supervisor) -> None:
    supervisor.request_timeout = 0.0005  # no replica answers 10,000 rows that fast
    started = time.monotonic()
    answer = xgb_served.http.post(f"{P}/endpoints/linear:predict", json={"instances": BIG})
    assert_problem(answer, 503)
    assert "did not answer within" in answer.json()["detail"]
    assert answer.headers["retry-after"] == "1"
    assert time.monotonic() - started < 5
    supervisor.request_timeout = 30
    # The replica is still there and answers the next request.
    assert xgb_served.http.post(f"{P}/endpoints/linear:predict",
                                json={"instances": [[1, 2.0]]}).status_code == 200


def test_overload_sheds_at_once_with_retry_after(xgb_served: Served,
                                                 supervisor: Supervisor) -> None:
    supervisor.max_in_flight = 1
    server = xgb_served.server

    def call(_: int) -> tuple[int, float, str | None]:
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {server.token}"}) as http:
            started = time.monotonic()
            answer = http.post(f"{P}/endpoints/linear:predict", json={"instances": BIG})
            return answer.status_code, time.monotonic() - started, answer.headers.get(
                "retry-after")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(16)))
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) == {200, 503}, statuses
    assert all(retry == "1" for status, _, retry in results if status == 503)
    # Shed requests were answered at once, not after waiting their turn.
    shed = [seconds for status, seconds, _ in results if status == 503]
    served = [seconds for status, seconds, _ in results if status == 200]
    assert min(shed) < max(served)
    supervisor.max_in_flight = 64
    assert [r["state"] for r in xgb_served.http.get(
        f"{P}/endpoints/linear/replicas").json()] == ["ready"]
