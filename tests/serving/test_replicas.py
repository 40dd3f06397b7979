"""Replica processes behind a real server: predictions, bad input, the traffic split,
a replica killed with SIGKILL, and a model its replica cannot load."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.sdk import session
from tests.server.live import LiveServer, live_server
from tests.serving.conftest import frame, linear

P = "/api/v1/projects/p"


def register(home: Path, settings: Settings) -> None:
    """'lead' versions 1 and 2 (slopes 1 and 2), registered in local mode."""
    shipyard.init(home=home, uri=settings.uri, artifacts=settings.artifacts, project="p")
    try:
        for slope in (1.0, 2.0):
            shipyard.register_model("lead", linear(slope), input_example=frame(5))
    finally:
        session.reset()


@pytest.fixture
def served(store_uri: str, home: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, httpx.Client]]:
    settings = Settings.resolve(home=home, uri=store_uri, artifacts=str(tmp_path / "blobs"),
                                project="p")
    register(home, settings)
    with live_server(settings, worker=False) as server, httpx.Client(
            base_url=server.url, timeout=120,
            headers={"Authorization": f"Bearer {server.token}"}) as http:
        assert http.post(f"{P}/endpoints", json={"name": "ep"}).status_code == 200
        deployed = http.post(f"{P}/endpoints/ep/deployments",
                             json={"model": "lead", "version": 1})
        assert deployed.status_code == 200, deployed.text
        yield server, http


def replicas(http: httpx.Client) -> list[dict[str, object]]:
    found: list[dict[str, object]] = http.get(f"{P}/endpoints/ep/replicas").json()
    return found


def test_predict_split_and_undeploy(served: tuple[LiveServer, httpx.Client]) -> None:
    _, http = served
    rows = [{"visits": 10, "time_on_site": 100.0}, {"time_on_site": 50.0, "visits": 20}]
    answer = http.post(f"{P}/endpoints/ep:predict", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["deployedModelId"] == "lead:1" and body["model"] == "lead"
    assert body["modelVersionId"] == "1"
    assert [round(p, 6) for p in body["predictions"]] == [10.0, 20.0]
    arrays = http.post(f"{P}/endpoints/ep:predict", json={"instances": [[20, 50.0], [1, 2]]})
    assert [round(p, 6) for p in arrays.json()["predictions"]] == [20.0, 1.0]
    vertex = http.post("/v1/projects/p/locations/europe-west4/endpoints/ep:predict",
                       json={"instances": [[5, 1.0]], "parameters": {}})
    assert vertex.status_code == 200 and round(vertex.json()["predictions"][0], 6) == 5.0
    # The registry shows where versions run.
    versions = {v["version"]: v["status"] for v in http.get(f"{P}/models/lead/versions").json()}
    assert versions == {1: "deployed", 2: "registered"}

    # A second version at 50%: both answer, each with its own predictions.
    second = http.post(f"{P}/endpoints/ep/deployments",
                       json={"model": "lead", "version": 2, "traffic_percentage": 50})
    assert second.status_code == 200, second.text
    seen: dict[str, float] = {}
    for _ in range(40):
        got = http.post(f"{P}/endpoints/ep:predict", json={"instances": [[10, 1.0]]}).json()
        seen[got["deployedModelId"]] = round(got["predictions"][0], 6)
    assert seen == {"lead:1": 10.0, "lead:2": 20.0}
    moved = http.put(f"{P}/endpoints/ep/traffic", json={"traffic": {"lead:2": 100}})
    assert moved.json()["deployments"][0]["traffic_percentage"] == 0
    assert {http.post(f"{P}/endpoints/ep:predict", json={"instances": [[1, 1.0]]}
                      ).json()["deployedModelId"] for _ in range(10)} == {"lead:2"}
    # Undeploying stops its replica process (once drained).
    old = next(r for r in replicas(http) if r["deployed_model_id"] == "lead:1")
    left = http.post(f"{P}/endpoints/ep/undeploy", json={"deployed_model_id": "lead:1"})
    assert left.status_code == 200 and [d["id"] for d in left.json()["deployments"]] == ["lead:2"]
    assert [r["deployed_model_id"] for r in replicas(http)] == ["lead:2"]
    # It is drained: stopped once it has answered what it held (at once here: nothing).
    stopped = time.monotonic() + 30
    while Path(f"/proc/{old['pid']}").exists():
        assert time.monotonic() < stopped, "the undeployed replica still runs"
        time.sleep(0.05)


BAD: list[tuple[object, int, str]] = [
    ({}, 400, "instances"),
    ({"instances": []}, 400, "instances"),
    ({"instances": "rows"}, 400, "instances"),
    ({"instances": [{"visits": 1}]}, 400, "instances[0].time_on_site"),
    ({"instances": [{"visits": "ten", "time_on_site": 1.0}]}, 400, "visits"),
    ({"instances": [[1, 2.0], [1, 2.0, 3.0]]}, 400, "instances[1]"),
    ({"instances": [[1, 2.0], {"visits": 1, "time_on_site": 2.0}]}, 400, "instances[1]"),
    ({"instances": [{"visits": 1, "time_on_site": 2.0, "../../etc": 1}]}, 400,
     "instances[0].../../etc"),
    ({"instances": [[1, None]]}, 400, "time_on_site"),
    ({"instances": [[1, 2.0]], "extra": 1}, 400, "extra"),
    ({"instances": [[1, 2.0]] * 10_001}, 400, "instances"),
    ({"instances": [[[[[1]]], 2.0]]}, 400, "visits"),
]


def test_bad_input_is_a_clear_400(served: tuple[LiveServer, httpx.Client]) -> None:
    _, http = served
    for body, status, field in BAD:
        answer = http.post(f"{P}/endpoints/ep:predict", json=body)
        assert answer.status_code == status, (body if len(repr(body)) < 200 else field,
                                              answer.text)
        problem = answer.json()
        assert problem["field"] == field, (field, problem)
    hostile: list[tuple[bytes, str | None]] = [
        (b"{not json", "body"),
        (b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", None),
        (b'{"instances": [[NaN, 1.0]]}', "instances"),
        (b'{"instances": [[1e999, 1.0]]}', "instances"),
    ]
    for raw, named in hostile:
        answer = http.post(f"{P}/endpoints/ep:predict", content=raw,
                           headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (raw[:40], answer.text)
        if named is not None:
            assert answer.json()["field"] == named
    huge = http.post(f"{P}/endpoints/ep:predict", content=b" " * (17 * 1024 * 1024),
                     headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    missing = http.post(f"{P}/endpoints/nope:predict", json={"instances": [[1, 2.0]]})
    assert missing.status_code == 404 and missing.json()["field"] == "name"
    # The replica is the one it was: nothing above crashed it.
    assert [r["state"] for r in replicas(http)] == ["ready"]
    assert replicas(http)[0]["restarts"] == 0


def test_a_killed_replica_is_replaced_and_requests_fail_fast(
        served: tuple[LiveServer, httpx.Client]) -> None:
    _, http = served
    (before,) = replicas(http)
    assert isinstance(before["pid"], int)
    os.kill(before["pid"], signal.SIGKILL)
    killed = time.monotonic()
    statuses: list[int] = []
    while time.monotonic() - killed < 120:
        started = time.monotonic()
        answer = http.post(f"{P}/endpoints/ep:predict", json={"instances": [[3, 1.0]]})
        assert time.monotonic() - started < 2, "a request to a dead replica must not hang"
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            break
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"]
        assert "lead:1" in answer.json()["detail"]
        time.sleep(0.05)
    replaced = time.monotonic() - killed
    assert statuses[-1] == 200, statuses[-5:]
    assert 503 in statuses
    (after,) = replicas(http)
    assert after["pid"] != before["pid"] and after["restarts"] == 1
    print(f"replica replaced and answering {replaced:.2f} s after SIGKILL")


def test_a_model_its_replica_cannot_load_is_not_deployed(
        served: tuple[LiveServer, httpx.Client], tmp_path: Path) -> None:
    server, http = served
    # A pickle the registrant vouched for, but that this server's settings do not trust:
    # its replica refuses to load it, so the deployment is undone.
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    settings = server.settings
    shipyard.init(home=settings.home, uri=settings.uri, artifacts=settings.artifacts,
                  project="p")
    try:
        shipyard.register_model("pickled", path, trusted_digest=digest)
    finally:
        session.reset()
    answer = http.post(f"{P}/endpoints/ep/deployments",
                       json={"model": "pickled", "version": 1, "traffic_percentage": 50})
    assert answer.status_code == 412, answer.text
    assert answer.json()["field"] == "model" and "pickled:1" in answer.json()["detail"]
    assert http.get(f"{P}/endpoints/ep").json()["deployments"][0]["traffic_percentage"] == 100
    assert [r["deployed_model_id"] for r in replicas(http)] == ["lead:1"]


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_rollout_routes_refuse_hostile_input_naming_the_field(
        served: tuple[LiveServer, httpx.Client]) -> None:
    _, http = served
    second = http.post(f"{P}/endpoints/ep/deployments",
                       json={"model": "lead", "version": 2, "traffic_percentage": 0})
    assert second.status_code == 200, second.text
    for body, field in [({"deployed_model_id": "lead:2", "percent": "10"}, "percent"),
                        ({"deployed_model_id": "lead:2", "percent": True}, "percent"),
                        ({"deployed_model_id": "lead:2", "after_requests": 2.5},
                         "after_requests"),
                        ({"deployed_model_id": "lead:2", "max_latency_ratio": "1.5"},
                         "max_latency_ratio"),
                        ({"deployed_model_id": "lead:2", "error_rate_alpha": 0.75},
                         "error_rate_alpha"),
                        ({"deployed_model_id": "lead:2", "bogus": 1}, "bogus"),
                        ({"percent": 10}, "deployed_model_id"),
                        ({"deployed_model_id": "x" * 500}, "deployed_model_id")]:
        refused = http.post(f"{P}/endpoints/ep/rollouts", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert field in refused.json().get("field", ""), (body, refused.json())
    assert http.get(f"{P}/endpoints/ep/rollouts").json() == []
    bad_id = http.get(f"{P}/endpoints/ep/rollouts/..%2Fetc")
    assert bad_id.status_code in (400, 404) and "Traceback" not in bad_id.text
    assert http.get(f"{P}/endpoints/ep/rollouts/{'0' * 32}").status_code == 404
    assert http.get(f"{P}/endpoints/nope/rollouts").status_code == 404

    started = http.post(f"{P}/endpoints/ep/rollouts",
                        json={"deployed_model_id": "lead:2", "percent": 30})
    assert started.status_code == 200, started.text
    rollout = started.json()
    assert (rollout["state"], rollout["percent"], rollout["champions"]) == (
        "running", 30, ["lead:1"])
    assert http.get(f"{P}/endpoints/ep/rollouts/{rollout['id']}").json() == rollout
    split = {d["id"]: d["traffic_percentage"]
             for d in http.get(f"{P}/endpoints/ep").json()["deployments"]}
    assert split == {"lead:1": 70, "lead:2": 30}
