"""runtime="ray": a deployment's replicas as a Ray Serve application on a real Ray head
(``ray start --head`` on 127.0.0.1), behind the server's own routes, split and request log.

One live server (in this process, which never imports Ray: its bridge process is Ray's
driver) serves endpoint ``lead`` with version 1 in a local replica and version 2 (twice
its predictions) on Ray, half the traffic each.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.sdk import session
from shipyard.serving.requestlog import predictions_sql
from tests.ray.heads import Head
from tests.server.conftest import assert_problem
from tests.server.live import LiveServer, free_port, live_server
from tests.serving.conftest import frame, linear

P = "/api/v1/projects/p"
REQUESTS = 100

# Lists the cluster's Ray Serve applications on each line it reads (one driver for the
# whole test: connecting takes seconds).
APPS = """
import json, sys
import ray
from ray import serve
ray.init(address=sys.argv[1], log_to_driver=False)
for _ in sys.stdin:
    print(json.dumps(sorted(serve.status().applications)), flush=True)
"""


class Apps:
    def __init__(self, address: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", APPS, address], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def __call__(self) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return list(json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@dataclasses.dataclass
class Served:
    http: httpx.Client
    root: Path
    server: LiveServer

    def log(self, request_ids: list[str]) -> list[tuple[str, str, str]]:
        """The logged rows (request id, deployed model, prediction) of ``request_ids``."""
        self.server.app.state.serving.request_log.flush()
        files = [str(f) for f in self.root.glob("blobs/request-logs/predictions/**/*.parquet")]
        rows = duckdb.sql(
            f"SELECT request_id, deployed_model_id, prediction FROM {predictions_sql(files)}"
        ).fetchall()
        wanted = set(request_ids)
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows if r[0] in wanted]


@pytest.fixture
def served(ray_head: Head, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    for key in [k for k in os.environ if k.startswith("SHIPYARD_")]:
        if key != "SHIPYARD_TEST_POSTGRES":
            monkeypatch.delenv(key)
    with tempfile.TemporaryDirectory(prefix="shipyard-ray-serve-") as tmp:
        root = Path(tmp)
        settings = Settings.resolve(home=root / "home", uri=f"sqlite:///{root / 'db'}",
                                    artifacts=str(root / "blobs"), project="p")
        # Half a CPU per Ray Serve replica: the test head has one; every request logged.
        settings = dataclasses.replace(settings, extra={"serving_ray_cpus": "0.5",
                                                        "serving_log_rate": "1"})
        shipyard.init(home=settings.home, uri=settings.uri, artifacts=settings.artifacts,
                      project="p")
        try:
            for slope in (1.0, 2.0):
                shipyard.register_model("lead", linear(slope), input_example=frame(5))
        finally:
            session.reset()
        with live_server(settings, worker=False) as server, httpx.Client(
                base_url=server.url, timeout=120,
                headers={"Authorization": f"Bearer {server.token}"}) as http:
            assert http.post(f"{P}/endpoints", json={"name": "lead"}).status_code == 200
            local = http.post(f"{P}/endpoints/lead/deployments",
                              json={"model": "lead", "version": 1})
            assert local.status_code == 200, local.text
            yield Served(http, root, server)


def test_a_ray_deployment_serves_behind_the_same_routes_split_and_log(
        served: Served, ray_head: Head, monkeypatch: pytest.MonkeyPatch) -> None:
    http = served.http
    deploy = {"model": "lead", "version": 2, "traffic_percentage": 50, "runtime": "ray"}

    # Refused, naming RAY_ADDRESS, when no cluster answers there; and an unknown runtime.
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    refused = http.post(f"{P}/endpoints/lead/deployments", json=deploy)
    assert_problem(refused, 412, "runtime")
    assert "RAY_ADDRESS=127.0.0.1:" in refused.json()["detail"]
    assert_problem(http.post(f"{P}/endpoints/lead/deployments",
                             json={**deploy, "runtime": "spark"}), 400, "runtime")
    assert http.get(f"{P}/endpoints/lead").json()["deployments"][0]["runtime"] == "local"

    monkeypatch.setenv("RAY_ADDRESS", ray_head.address)
    apps = Apps(ray_head.address)
    # The SDK through the server (the HTTP session), as users deploy.
    shipyard.init(uri=served.server.url, token=served.server.token, project="p")
    try:
        started = time.monotonic()
        deployed = shipyard.get_endpoint("lead").deploy("lead", version=2,
                                                         traffic_percentage=50, runtime="ray")
        deploy_seconds = time.monotonic() - started
        assert (deployed.id, deployed.runtime) == ("lead:2", "ray")
        runtimes = {d["id"]: d["runtime"] for d in http.get(f"{P}/endpoints/lead").json()[
            "deployments"]}
        assert runtimes == {"lead:1": "local", "lead:2": "ray"}
        ours = [name for name in apps() if name.startswith("shipyard-")]
        assert len(ours) == 1, ours
        replicas = http.get(f"{P}/endpoints/lead/replicas").json()
        assert {(r["deployed_model_id"], r["runtime"], r["state"]) for r in replicas} == {
            ("lead:1", "local", "ready"), ("lead:2", "ray", "ready")}

        # Vertex route, through the split: version 2 (on Ray) answers 2 * visits.
        visits = list(range(REQUESTS))
        answered: dict[str, int] = {}
        ids = []
        for n in visits:
            answer = http.post(f"{P}/endpoints/lead:predict",
                               json={"instances": [{"visits": n, "time_on_site": 100.0}]})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            version = body["deployedModelId"]
            answered[version] = answered.get(version, 0) + 1
            assert body["predictions"][0] == pytest.approx(n * (2.0 if version == "lead:2"
                                                                else 1.0), abs=1e-6)
            ids.append((answer.headers["x-request-id"], version, n))
        assert set(answered) == {"lead:1", "lead:2"}
        assert 0.3 <= answered["lead:2"] / REQUESTS <= 0.7, answered  # 50% +- 4 sd

        # Open Inference Protocol, pinned to the Ray deployment's version.
        oip = http.post("/v2/models/lead/versions/2/infer", json={"inputs": [
            {"name": "x", "shape": [2, 2], "datatype": "FP64",
             "data": [7.0, 100.0, 11.0, 90.0]}]})
        assert oip.status_code == 200, oip.text
        assert oip.json()["outputs"][0]["data"] == pytest.approx([14.0, 22.0])
        assert oip.headers["x-model-version"] == "2"
        # A model error on Ray is the same 400 naming the field and row as a local one's.
        bad = {"instances": [{"visits": 1, "time_on_site": 1.0},
                             {"visits": "many", "time_on_site": 1.0}]}
        answers = {}
        for version in ("lead:2", "lead:1"):
            shipyard.get_endpoint("lead").set_traffic({version: 100})
            answers[version] = http.post(f"{P}/endpoints/lead:predict", json=bad)
            assert_problem(answers[version], 400)
            if version == "lead:2":  # explanations come from the Ray replica too
                explained = http.post(f"{P}/endpoints/lead:explain", json={"instances": [
                    {"visits": 5, "time_on_site": 100.0}]})
                assert explained.status_code == 200, explained.text
                assert explained.json()["deployedModelId"] == "lead:2"
                (attribution,) = explained.json()["explanations"][0]["attributions"]
                assert attribution["instanceOutputValue"] == pytest.approx(10.0, abs=1e-6)
                assert attribution["baselineOutputValue"] + sum(
                    attribution["featureAttributions"].values()) == pytest.approx(10.0, abs=1e-4)
        assert answers["lead:2"].json()["field"] == answers["lead:1"].json()["field"]
        assert answers["lead:2"].json()["detail"] == answers["lead:1"].json()["detail"]
        assert "visits" in answers["lead:2"].json()["field"]

        # Every request is in the request log, under the deployment that answered it.
        log = served.log([i for i, _, _ in ids])
        assert {(i, v) for i, v, _ in ids} == {(r[0], r[1]) for r in log}
        for request_id, version, n in ids:
            row = next(r for r in log if r[0] == request_id)
            assert json.loads(row[2]) == pytest.approx(n * (2.0 if version == "lead:2"
                                                            else 1.0), abs=1e-6)

        # Undeploying removes the Ray Serve application.
        gone = http.post(f"{P}/endpoints/lead/undeploy", json={"deployed_model_id": "lead:2"})
        assert gone.status_code == 200, gone.text
        assert [(d["id"], d["traffic_percentage"]) for d in gone.json()["deployments"]] == [
            ("lead:1", 100)]
        deadline = time.monotonic() + 30
        while ours[0] in apps():
            assert time.monotonic() < deadline, "the Ray Serve application was not deleted"
            time.sleep(0.5)
        print(f"deploy on ray: {deploy_seconds:.1f} s")
    finally:
        session.reset()
        apps.close()


def test_the_runtime_is_checked_and_kept_in_the_store(
        store_uri: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode, on both backends: the runtime is refused without a cluster, recorded
    with one (here a socket that accepts connections, all the check asks of a head) and
    read back by a new session, as a restarted server reads it."""
    shipyard.init(home=home, uri=store_uri, artifacts=str(tmp_path / "blobs"), project="p")
    try:
        shipyard.register_model("lead", linear(1.0), input_example=frame(5))
        ep = shipyard.create_endpoint("lead")
        for runtime in ("spark", "", None, 1):
            with pytest.raises(InvalidArgument) as invalid:
                ep.deploy("lead", version=1, runtime=runtime)  # type: ignore[arg-type]
            assert invalid.value.field == "runtime"
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        with pytest.raises(FailedPrecondition) as unset:
            ep.deploy("lead", version=1, runtime="ray")
        assert unset.value.field == "runtime" and "RAY_ADDRESS" in unset.value.message
        with socket.socket() as head:
            head.bind(("127.0.0.1", 0))
            head.listen()
            address = f"127.0.0.1:{head.getsockname()[1]}"
            head.close()
            monkeypatch.setenv("RAY_ADDRESS", address)  # nothing listens there now
            with pytest.raises(FailedPrecondition) as silent:
                ep.deploy("lead", version=1, runtime="ray")
            assert silent.value.field == "runtime"
            assert f"RAY_ADDRESS={address}" in silent.value.message
        assert ep.refresh().deployments == []
        with socket.socket() as head:
            head.bind(("127.0.0.1", 0))
            head.listen()
            monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{head.getsockname()[1]}")
            assert ep.deploy("lead", version=1, runtime="ray").runtime == "ray"
        # Local mode predicts in this process whatever the runtime.
        assert ep.predict([{"visits": 4, "time_on_site": 1.0}]).predictions == \
            pytest.approx([4.0])
    finally:
        session.reset()
    shipyard.init(home=home, uri=store_uri, artifacts=str(tmp_path / "blobs"), project="p")
    try:
        assert [(d.id, d.runtime) for d in shipyard.get_endpoint("lead").deployments] == [
            ("lead:1", "ray")]
    finally:
        session.reset()

