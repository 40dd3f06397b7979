"""The closed loop under SIGKILL (issue 20, Faults): a drift alert -> the retraining
trigger -> a pipeline run that registers a version -> the canary trigger -> the canary
judged by the workers -> promoted, on SQLite and on PostgreSQL. Worker processes are
killed at points drawn (seeded) from a fixed list along that path, several per alert, each
followed by a restart; then:

- every message published to the loop's subscriptions ends acknowledged or dead-lettered;
- one pipeline run per alert, one version registered per alert;
- no model promoted twice (one promotion per version, each moving the alias once);
- the loop completes after the restarts: each alert's version ends in production.

Each restarted worker's clock runs further ahead (more than the triggers' 600 s ack
deadline and the canaries' 120 s lease), as if it started after its predecessor's leases
ran out; the pipeline queue's lease is short instead (1 s). ``SHIPYARD_SOAK=1`` runs more
alerts and more kills; ``SHIPYARD_CRASH_SEED`` replays a draw.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import shipyard as sy
from shipyard.context import RequestContext
from shipyard.events import bus
from shipyard.pipelines.compiler import dump_spec, to_spec
from shipyard.sdk import session
from shipyard.serving import rollouts
from shipyard.serving import service as serving
from shipyard.serving.requestlog import Logged, RequestLog
from shipyard.store import Store
from shipyard.store.schema import audit_log, event_deliveries, pipeline_runs
from tests.crash.conftest import ROOT, worker_log
from tests.crash.loop_steps import retrain_lead

SOAK = bool(os.environ.get("SHIPYARD_SOAK"))
ALERTS, KILLS = (4, 3) if SOAK else (1, 2)
# Along the loop, in its order: module:function:before|after (the first call dies).
POINTS = [
    "shipyard.events.triggers:_begin:after",            # firing acting, action not run
    "shipyard.events.acting:_run_pipeline:after",       # run queued, firing not recorded
    "shipyard.events.triggers:_end:after",              # firing recorded, not committed
    "shipyard.events.bus:ack:before",                   # done, message not acknowledged
    "shipyard.pipelines.queue:_execute_claimed:before",  # run claimed, not started
    "shipyard.pipelines.runner:_end:before",            # the step registered, run not ended
    "shipyard.events.acting:_start_canary:after",       # canary started, firing not recorded
    "shipyard.serving.rollouts:read_figures:after",     # judging, nothing decided
    "shipyard.serving.rollouts:decide:after",           # promoted, worker gone
]
WAIT = 120.0


class Workers:
    def __init__(self, home: Path, logs: Path) -> None:
        self.home, self.logs, self.started = home, logs, 0

    def start(self, point: str, stop: Path) -> subprocess.Popen[bytes]:
        self.started += 1
        offset = str(self.started * 900)  # each one later than every lease before it
        with (self.logs / f"worker-{self.started}.log").open("ab") as stderr:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.crash.event_workers", "loop", str(self.home),
                 point, offset, str(stop)], cwd=ROOT, stderr=stderr)


def _seed() -> int:
    given = os.environ.get("SHIPYARD_CRASH_SEED")
    seed = int(given) if given else random.SystemRandom().randrange(2**32)
    print(f"crash seed {seed}: replay with SHIPYARD_CRASH_SEED={seed}")
    return seed


def _log_requests(root: Path, deployed: str, count: int) -> None:
    now = time.time()
    RequestLog(root=root).write([
        Logged(request_id=f"{deployed}-{i}-{now}", time=now, project="default",
               endpoint="leads", deployed_model_id=deployed,
               model_version=int(deployed.rpartition(":")[2]), protocol="json",
               latency_ms=5.0, rows=[[1.0]], predictions=[1.0], names=None, shadow=False)
        for i in range(count)])


def _versions_for(alert: str) -> list[int]:
    return [v.version for v in sy.list_model_versions("lead")
            if v.labels.get("alert") == alert]


def _version_for(alert: str) -> int | None:
    found = _versions_for(alert)
    return found[0] if found else None


def _done(store: Store, root: Path, alert: str, fed: set[str]) -> bool:
    """Has the loop for ``alert`` completed? Feeds its canary requests meanwhile."""
    version = _version_for(alert)
    if version is None:
        return False
    candidate = f"lead:{version}"
    for rollout in rollouts.list_rollouts(store, "default", "leads"):
        if rollout.candidate == candidate and rollout.state == "running" \
                and rollout.id not in fed:
            for champion in rollout.champions:
                _log_requests(root, champion, 5)
            _log_requests(root, candidate, 5)
            fed.add(rollout.id)
        if rollout.candidate == candidate and rollout.state == "promoted":
            return sy.get_model_version("lead", alias="production").version == version
    return False


def _settled(store: Store) -> bool:
    with store.read() as conn:
        states = set(conn.execute(select(event_deliveries.c.state)).scalars())
    return states <= {"acked", "dead"}


def test_sigkilled_workers_never_run_or_promote_twice_and_the_loop_completes(
        home: Path, store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(_seed())
    # The workers are started with the home alone: the store reaches them as SHIPYARD_URI.
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    settings = sy.init(home=home)
    assert settings.uri == store_uri
    try:
        _run(settings, rng, tmp_path)
    finally:
        session.reset()


def _run(settings: Any, rng: random.Random, tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    store = session.current().runtime.store
    root = Path(settings.artifacts)
    ctx = RequestContext(project="default", actor="tester")
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    sy.register_model("lead", LinearRegression().fit(x, [1.0, 2.0, 3.0]), input_example=x[:1])
    sy.set_alias("lead", "production", 1)
    serving.create_endpoint(store, ctx, "leads")
    serving.deploy(store, ctx, "leads", "lead", version=1)
    sy.enable_retraining(endpoint="leads", monitor="drift", pipeline="retrain-lead",
                         model="lead", spec=dump_spec(to_spec(retrain_lead)[0]),
                         arguments={"alert": "{{ event.alert_id }}", "lock_dir": str(home_of(
                             settings))}, after_requests=5)
    logs = tmp_path / "logs"
    logs.mkdir()
    workers = Workers(home_of(settings), logs)
    kills = 0
    for n in range(ALERTS):
        alert = f"alert-{n}"
        bus.publish(store, ctx, "monitor-alert-raised",
                    {"event": "monitor-alert-raised", "monitor": "drift", "endpoint": "leads",
                     "alert_id": alert, "severity": "high"}, ordering_key="drift")
        fed: set[str] = set()
        points = sorted(rng.sample(POINTS, KILLS), key=POINTS.index)
        for point in [*points, "none"]:
            stop = tmp_path / f"stop-{workers.started + 1}"
            worker = workers.start(point, stop)
            deadline = time.monotonic() + WAIT
            while worker.poll() is None and time.monotonic() < deadline:
                if _done(store, root, alert, fed) and _settled(store):
                    break
                time.sleep(0.1)
            if worker.poll() is None:  # its point was not on the rest of the path: stop it
                stop.touch()
                worker.wait(timeout=60)
            log = worker_log(logs / f"worker-{workers.started}.log")
            if worker.returncode == -signal.SIGKILL:
                kills += 1
            else:
                assert worker.returncode == 0, f"{point}: exit {worker.returncode}\n{log}"
            if point == "none":
                assert _done(store, root, alert, fed), f"the loop did not complete\n{log}"
                assert _settled(store), f"messages left unacknowledged\n{log}"

    assert kills >= 1  # the first point of the draw is always on the path
    with store.read() as conn:
        runs = conn.execute(select(pipeline_runs.c.arguments, pipeline_runs.c.state)).all()
        promotions = conn.execute(select(audit_log.c.detail).where(
            audit_log.c.action == "endpoint.canary.promote")).scalars().all()
    for n in range(ALERTS):
        alert = f"alert-{n}"
        mine = [r.state for r in runs if (r.arguments or {}).get("alert") == alert]
        assert mine == ["SUCCEEDED"], (alert, mine)  # one run per alert
        assert len(_versions_for(alert)) == 1, _versions_for(alert)  # one version per alert
    started = {r.id: r for r in rollouts.list_rollouts(store, "default", "leads")}
    promoted = sorted(started[p["rollout"]].candidate for p in promotions)
    # One rollout per version, each promoted once.
    assert promoted == sorted(f"lead:{v}" for v in range(2, ALERTS + 2))
    assert sorted(r.candidate for r in started.values()) == promoted
    assert all(r.state == "promoted" for r in started.values())
    assert sy.get_model_version("lead", alias="production").version == ALERTS + 1


def home_of(settings: Any) -> Path:
    return Path(settings.home)
