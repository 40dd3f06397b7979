"""OIP model readiness with several replicas per deployment (no processes): a model is
ready when each deployment receiving traffic has at least one ready replica, whatever the
state of the others (a scale-up replica still starting, one being replaced)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from shipyard.config import Settings
from shipyard.server.api.dataplane.oip import _ready
from shipyard.serving.models import Deployment
from shipyard.serving.replicas import Pool, Replica, Route, Supervisor
from shipyard.serving.service import DeployedModel
from shipyard.serving.traffic import Router
from shipyard.store import Store


class Fake:
    """What readiness reads of a replica."""

    def __init__(self, target: DeployedModel, state: str, pid: int) -> None:
        self.target, self.state, self.pid = target, state, pid
        self.error, self.in_flight = "", 0


def deployed(key: str, version: int, share: int) -> DeployedModel:
    return DeployedModel(key, "p", "ep", Deployment(
        id=f"lead:{version}", model="lead", version=version, model_version_id=f"v{version}",
        alias=None, traffic_percentage=share, min_replicas=1, max_replicas=4,
        created_at=datetime.now(UTC), created_by=None), f"row{version}")


@pytest.fixture
def supervisor(tmp_path: Path) -> Supervisor:
    settings = Settings.resolve(home=tmp_path / "home", uri=f"sqlite:///{tmp_path / 'db'}",
                                artifacts=str(tmp_path / "blobs"), project="p")
    return Supervisor(store=cast(Store, None), settings=settings, request_log=None)


def serve(supervisor: Supervisor, states: dict[DeployedModel, list[str]]) -> None:
    pid = 100
    for target, found in states.items():
        replicas = []
        for state in found:
            pid += 1
            replicas.append(cast(Replica, Fake(target, state, pid)))
        supervisor.pools[target.key] = Pool(target, replicas)
    targets = {t.deployment.id: t for t in states}
    supervisor.routes[("p", "ep")] = Route(
        Router({t.deployment.id: t.deployment.traffic_percentage for t in states}), targets)


@pytest.mark.parametrize("order", [["ready", "starting"], ["starting", "ready"],
                                   ["dead", "ready", "starting"]])
def test_one_ready_replica_makes_the_model_ready(supervisor: Supervisor,
                                                 order: list[str]) -> None:
    one = deployed("k1", 1, 100)
    serve(supervisor, {one: order})
    assert _ready(supervisor, "p", "ep", None) is True
    assert _ready(supervisor, "p", "ep", "1") is True


def test_no_ready_replica_is_not_ready(supervisor: Supervisor) -> None:
    one = deployed("k1", 1, 100)
    serve(supervisor, {one: ["starting", "dead"]})
    assert _ready(supervisor, "p", "ep", None) is False
    assert _ready(supervisor, "p", "ep", "1") is False


def test_every_deployment_with_traffic_needs_a_ready_replica(supervisor: Supervisor) -> None:
    old, new, idle = deployed("k1", 1, 70), deployed("k2", 2, 30), deployed("k3", 3, 0)
    serve(supervisor, {old: ["ready", "starting"], new: ["starting"], idle: ["starting"]})
    assert _ready(supervisor, "p", "ep", None) is False  # version 2 takes 30% and has none
    assert _ready(supervisor, "p", "ep", "1") is True
    assert _ready(supervisor, "p", "ep", "2") is False
    supervisor.pools["k2"].replicas.append(cast(Replica, Fake(new, "ready", 999)))
    assert _ready(supervisor, "p", "ep", None) is True  # version 3 has no traffic
