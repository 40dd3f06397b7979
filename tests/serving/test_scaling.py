"""Rollouts and autoscaling behind a real server (one per module and test worker, SQLite):
a canary 0 -> 10 -> 50 -> 100, its rollback, an undeploy and an alias move under steady
load with zero failed requests; shadows whose answers are logged and never returned;
replicas scaling up on load and back down when idle; the traffic split's accuracy.

Starting a replica costs seconds, so each test walks one endpoint through several steps
rather than starting new ones. The autoscaler's windows are shortened here (0.5 s of load,
a 1 s cool-down); in production they are settings (docs/serving.md)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.sdk import session
from shipyard.serving.replicas import Supervisor
from tests.server.live import LiveServer, live_server
from tests.serving.conftest import frame, linear

P = "/api/v1/projects/p"
ROW = [[10, 1.0]]  # lead:1 answers 10, lead:2 20, lead:3 30
SOAK = os.environ.get("SHIPYARD_SOAK") == "1"


@dataclass
class Live:
    server: LiveServer
    http: httpx.Client
    supervisor: Supervisor


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("SHIPYARD_")}
    for key in saved:
        if key != "SHIPYARD_TEST_POSTGRES":
            del os.environ[key]
    root = tmp_path_factory.mktemp("scaling")
    settings = Settings.resolve(home=root / "home", uri=f"sqlite:///{root / 'db'}",
                                artifacts=str(root / "blobs"), project="p")
    shipyard.init(home=settings.home, uri=settings.uri, artifacts=settings.artifacts,
                  project="p")
    try:
        for slope in (1.0, 2.0, 3.0):
            shipyard.register_model("lead", linear(slope), input_example=frame(5))
        shipyard.set_alias("lead", "production", 1)
    finally:
        session.reset()
    try:
        with live_server(settings, worker=False) as server, httpx.Client(
                base_url=server.url, timeout=60,
                headers={"Authorization": f"Bearer {server.token}"}) as http:
            supervisor: Supervisor = server.app.state.serving
            yield Live(server, http, supervisor)
    finally:
        os.environ.update(saved)


def ok(answer: httpx.Response) -> httpx.Response:
    assert answer.status_code == 200, answer.text
    return answer


def create(live: Live, name: str, **deploy: object) -> None:
    ok(live.http.post(f"{P}/endpoints", json={"name": name}))
    ok(live.http.post(f"{P}/endpoints/{name}/deployments", json={"model": "lead", **deploy}))


def replicas(live: Live, name: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = ok(live.http.get(f"{P}/endpoints/{name}/replicas")).json()
    return found


def wait_for(what: Callable[[], bool], seconds: float, message: str) -> float:
    started = time.monotonic()
    while not what():
        assert time.monotonic() - started < seconds, message
        time.sleep(0.05)
    return time.monotonic() - started


@dataclass
class Load:
    """Threads sending predictions until stopped; every answer counted by its version."""

    live: Live
    endpoint: str
    threads: int = 4
    rows: list[list[float]] = field(default_factory=lambda: ROW)
    pause: float = 0.01  # steady load, leaving the CPU for replicas starting meanwhile
    answered: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    phase: str = "start"
    wrong: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    def _run(self) -> None:
        url = f"{P}/endpoints/{self.endpoint}:predict"
        with httpx.Client(base_url=self.live.server.url, timeout=60, headers={
                "Authorization": f"Bearer {self.live.server.token}"}) as http:
            while not self._stop.is_set():
                try:
                    answer = http.post(url, json={"instances": self.rows})
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    self.failed.append(f"{self.phase}: {answer.status_code} {answer.text[:200]}")
                    continue
                time.sleep(self.pause)
                body = answer.json()
                version = body["deployedModelId"]
                self.answered[version] += 1
                slope = int(version.rpartition(":")[2])
                if round(body["predictions"][0], 6) != slope * self.rows[0][0]:
                    self.wrong.append(f"{version} answered {body['predictions'][0]}")

    def total(self) -> int:
        return sum(self.answered.values())

    def wait_more(self, version: str, count: int, message: str) -> None:
        wait_for(lambda: self.answered[version] >= count, 30, message)


def test_canary_rollback_and_alias_move_under_load_lose_no_request(live: Live) -> None:
    http = live.http
    create(live, "canary", alias="production", follow_alias=True)  # lead:1
    started = time.monotonic()
    with Load(live, "canary") as load:
        wait_for(lambda: load.total() >= 20, 30, "no answers under load")
        # The candidate deployed at 0% (returns once its replica is ready), then 10 -> 50
        # -> 100.
        ok(http.post(f"{P}/endpoints/canary/deployments",
                     json={"model": "lead", "version": 2, "traffic_percentage": 0}))
        for step in (10, 50, 100):
            load.phase = f"step {step}"
            before = load.answered["lead:2"]
            moved = ok(http.post(f"{P}/endpoints/canary/shift",
                                 json={"deployed_model_id": "lead:2", "traffic_percentage": step}))
            assert {d["id"]: d["traffic_percentage"] for d in moved.json()["deployments"]} == {
                "lead:1": 100 - step, "lead:2": step}
            load.wait_more("lead:2", before + 10, f"lead:2 got no traffic at {step}%")
        # The rollback: all traffic back to lead:1, then lead:2 undeployed, under load.
        load.phase = "rollback"
        ok(http.put(f"{P}/endpoints/canary/traffic", json={"traffic": {"lead:1": 100}}))
        load.wait_more("lead:1", load.answered["lead:1"] + 20, "no answers after rollback")
        load.phase = "undeploy"
        ok(http.post(f"{P}/endpoints/canary/undeploy", json={"deployed_model_id": "lead:2"}))
        load.wait_more("lead:1", load.answered["lead:1"] + 20, "no answers after undeploy")
        # The registry moves 'production' to version 3: the deployment follows it; lead:1
        # answers until lead:3's replica is ready.
        # The move wakes the supervisor: its periodic refresh is pushed out of reach here,
        # so lead:3 answering at all shows it; its replica is started by the time the
        # move returns.
        (old,) = replicas(live, "canary")
        load.phase = "alias"
        every = live.supervisor.refresh_seconds
        live.supervisor.refresh_seconds = 3600.0
        try:
            assert ok(http.put(f"{P}/models/lead/aliases/production",
                               json={"version": 3})).json()["version"] == 3
            assert "lead:3" in [r["deployed_model_id"] for r in replicas(live, "canary")]
            assert [d["id"] for d in ok(http.get(f"{P}/endpoints/canary")).json()[
                "deployments"]] == ["lead:3"]
            moved_at = time.monotonic()
            load.wait_more("lead:3", 20, "the alias's new version never answered")
            rolled = time.monotonic() - moved_at
        finally:
            live.supervisor.refresh_seconds = every
    assert load.failed == [], (len(load.failed), load.failed[:3], load.failed[-3:])
    assert load.wrong == [], load.wrong[:5]
    assert set(load.answered) == {"lead:1", "lead:2", "lead:3"}
    print(f"canary, rollback, undeploy and alias move under load: {load.total()} requests, "
          f"0 failed, {time.monotonic() - started:.1f} s; lead:3 answered {rolled:.1f} s "
          f"after the alias moved; {dict(load.answered)}")
    wait_for(lambda: [r["deployed_model_id"] for r in replicas(live, "canary")] == ["lead:3"],
             30, "the old replica is still listed")
    wait_for(lambda: not Path(f"/proc/{old['pid']}").exists(), 30, "the old replica lives")


def all_rows(live: Live, endpoint: str) -> list[dict[str, object]]:
    """The request log's rows for ``endpoint`` written so far (flushed now)."""
    assert live.supervisor.request_log is not None
    live.supervisor.request_log.flush()
    folder = (Path(live.server.settings.artifacts) / "request-logs" / "predictions"
              / "project=p" / f"endpoint={endpoint}")
    files = sorted(folder.rglob("*.parquet"))
    return pq.read_table(files).to_pylist() if files else []


def shadow_rows(live: Live, endpoint: str) -> list[dict[str, object]]:
    """The request log's shadow rows for ``endpoint`` written so far."""
    return [r for r in all_rows(live, endpoint) if r["shadow"]]


def test_shadows_autoscaling_and_the_split(live: Live) -> None:
    http, supervisor = live.http, live.supervisor
    create(live, "auto", version=1, min_replicas=1, max_replicas=2)

    # A shadow: a copy of each request; its answers are logged, never returned.
    ok(http.post(f"{P}/endpoints/auto/deployments",
                 json={"model": "lead", "version": 3, "shadow": True}))
    shown = ok(http.get(f"{P}/endpoints/auto")).json()["deployments"]
    assert [(d["id"], d["shadow"], d["traffic_percentage"]) for d in shown] == [
        ("lead:1", False, 100), ("lead:3", True, 0)]
    before = supervisor.shadow_answers
    callers = set()
    for i in range(20):
        # Through each protocol: the shadow's rows carry the caller's request id.
        answer = ok(http.post("/v1/models/auto:predict", json={"instances": ROW}) if i % 2
                    else http.post(f"{P}/endpoints/auto:predict", json={"instances": ROW}))
        assert answer.headers["x-deployed-model-id"] == "lead:1"
        assert answer.json()["predictions"] == [pytest.approx(10.0)]
        callers.add(answer.headers["x-request-id"])
    wait_for(lambda: supervisor.shadow_answers >= before + 20, 30, "the shadow got no copy")
    wait_for(lambda: len(shadow_rows(live, "auto")) >= 20, 30, "no shadow rows logged")
    logged = shadow_rows(live, "auto")
    assert {(r["deployed_model_id"], r["protocol"]) for r in logged} == {("lead:3", "shadow")}
    assert all(abs(float(str(r["prediction"])) - 30.0) < 1e-6 for r in logged)
    assert {r["request_id"] for r in logged} == callers  # paired with the champion's rows
    champion = {r["request_id"]: r for r in all_rows(live, "auto") if not r["shadow"]}
    assert callers <= set(champion)
    assert {champion[r]["deployed_model_id"] for r in callers} == {"lead:1"}
    # A shadow that dies costs callers nothing.
    (dead,) = [r for r in replicas(live, "auto") if r["shadow"]]
    assert isinstance(dead["pid"], int)
    failures = supervisor.shadow_failures
    os.kill(dead["pid"], signal.SIGKILL)
    for _ in range(30):
        answer = ok(http.post(f"{P}/endpoints/auto:predict", json={"instances": ROW}))
        assert answer.json()["deployedModelId"] == "lead:1"
    assert supervisor.shadow_failures > failures
    left = ok(http.post(f"{P}/endpoints/auto/undeploy",
                        json={"deployed_model_id": "lead:3"})).json()
    assert [(d["id"], d["traffic_percentage"]) for d in left["deployments"]] == [("lead:1", 100)]
    bad = http.post(f"{P}/endpoints/auto/deployments",
                    json={"model": "lead", "version": 2, "shadow": "yes"})
    assert bad.status_code == 400 and bad.json()["field"] == "shadow"

    # Autoscaling: up to max_replicas under load, back to min_replicas when idle.
    saved = (supervisor.target_in_flight, supervisor.scale_window,
             supervisor.scale_down_seconds)
    supervisor.target_in_flight, supervisor.scale_window = 1.0, 0.5
    supervisor.scale_down_seconds = 1.0
    try:
        assert len(replicas(live, "auto")) == 1
        with Load(live, "auto", threads=4, rows=[[10, 1.0]] * 2_000, pause=0) as load:
            up = wait_for(lambda: sum(r["state"] == "ready" for r in replicas(live, "auto")) == 2,
                          90, "no scale-up to 2 replicas under load")
            load.wait_more("lead:1", load.answered["lead:1"] + 20, "no answers at 2 replicas")
            assert len(replicas(live, "auto")) == 2  # never above max_replicas
        assert load.failed == [], load.failed[:5]
        pids = [r["pid"] for r in replicas(live, "auto")]
        down = wait_for(lambda: len(replicas(live, "auto")) == 1, 30,
                        "no scale-down to 1 replica when idle")
        (kept,) = replicas(live, "auto")
        wait_for(lambda: all(not Path(f"/proc/{pid}").exists() for pid in pids
                             if pid != kept["pid"]), 30, "retired replicas still run")
        print(f"autoscaling: 1 -> 2 replicas {up:.1f} s into the load, back to 1 "
              f"{down:.1f} s after it ended")
    finally:
        (supervisor.target_in_flight, supervisor.scale_window,
         supervisor.scale_down_seconds) = saved

    # The split: 90/10 over 10,000 choices of the server's router (the path every request
    # takes), and over HTTP with the server's draws seeded so the check is repeatable.
    ok(http.post(f"{P}/endpoints/auto/deployments",
                 json={"model": "lead", "version": 2, "traffic_percentage": 10}))
    split = {"lead:1": 90, "lead:2": 10}
    picks = Counter(supervisor.pick("p", "auto").deployment.id for _ in range(10_000))
    for key, percent in split.items():
        assert abs(picks[key] / 100 - percent) <= 2, picks
    supervisor.draw = random.Random(18).random
    requests = 10_000 if SOAK else 1_000
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(
                lambda _: ok(http.post(f"{P}/endpoints/auto:predict",
                                       json={"instances": ROW})).json()["deployedModelId"],
                range(requests)))
    finally:
        supervisor.draw = random.random
    counts = Counter(answers)
    for key, percent in split.items():
        assert abs(100 * counts[key] / requests - percent) <= 2, counts
