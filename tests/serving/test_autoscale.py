"""The autoscaler's decisions on a virtual clock (no processes): how many replicas a
deployment's load asks for, the cool-down before each step down, the bounds, and a dead
replica (a model that cannot load) not being started again on every tick."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from shipyard.config import Settings
from shipyard.serving.models import Deployment
from shipyard.serving.replicas import Pool, Replica, Supervisor
from shipyard.serving.service import DeployedModel
from shipyard.store import Store


class Fake:
    """What the autoscaler reads of a replica."""

    def __init__(self, state: str = "ready", in_flight: int = 0) -> None:
        self.state, self.in_flight = state, in_flight


class Scaler(Supervisor):
    def _start(self, pool: Pool) -> Replica:
        replica = cast(Replica, Fake("starting"))
        pool.replicas.append(replica)
        return replica


def deployment(low: int, high: int) -> DeployedModel:
    return DeployedModel("k", "p", "ep", Deployment(
        id="lead:1", model="lead", version=1, model_version_id="v", alias=None,
        traffic_percentage=100, min_replicas=low, max_replicas=high,
        created_at=datetime.now(UTC), created_by=None), "row")


@pytest.fixture
def scaler(tmp_path: Path) -> Scaler:
    settings = Settings.resolve(home=tmp_path / "home", uri=f"sqlite:///{tmp_path / 'db'}",
                                artifacts=str(tmp_path / "blobs"), project="p")
    found = Scaler(store=cast(Store, None), settings=settings, target_in_flight=2.0,
                   scale_window=1.0, scale_down_seconds=10.0, request_log=None)
    return found


def states(pool: Pool) -> list[str]:
    return [r.state for r in pool.replicas]


def load(pool: Pool, *counts: int) -> None:
    for replica, count in zip(pool.replicas, counts, strict=False):
        cast(Any, replica).in_flight = count


def test_scale_up_to_what_the_load_needs_within_the_bounds(scaler: Scaler) -> None:
    pool = scaler.pools["k"] = Pool(deployment(1, 4), [cast(Replica, Fake())], calm_since=0.0)
    load(pool, 5)  # 5 in flight, 2 per replica wanted: 3 replicas
    scaler._autoscale(100.0)
    assert states(pool) == ["ready", "starting", "starting"]
    # Starting replicas count: the next tick starts none.
    scaler._autoscale(100.05)
    assert len(pool.replicas) == 3
    load(pool, 20)  # far more than 4 replicas could take: the maximum, no more
    for tick in range(30):
        scaler._autoscale(101.0 + tick * 0.05)
    assert len(pool.replicas) == 4


def test_scale_down_one_step_per_cool_down_and_never_below_the_minimum(scaler: Scaler
                                                                     ) -> None:
    pool = scaler.pools["k"] = Pool(
        deployment(2, 4), [cast(Replica, Fake()) for _ in range(4)], calm_since=0.0)
    retired: list[int] = []
    now = 0.0
    while now < 60:
        before = len(pool.replicas)
        scaler._autoscale(now)
        if len(pool.replicas) < before:
            retired.append(round(now))
        now += 0.05
    # Idle from the start: one replica retired at 10 s, one more 10 s later, then the
    # minimum of 2 holds.
    assert retired == [10, 20] and len(pool.replicas) == 2
    assert [r.state for _, r in scaler.draining] == ["draining", "draining"]
    # While the load needs every replica there is no step down; the cool-down starts when
    # it no longer does.
    pool.replicas.append(cast(Replica, Fake()))
    load(pool, 5)  # 3 replicas wanted, 3 there
    for tick in range(400):
        scaler._autoscale(60 + tick * 0.05)
    assert len(pool.replicas) == 3
    load(pool, 0)
    for tick in range(196):  # to 89.75 s: a cool-down has not passed since 80.2 s
        scaler._autoscale(80 + tick * 0.05)
    assert len(pool.replicas) == 3
    for tick in range(40):
        scaler._autoscale(90 + tick * 0.05)
    assert len(pool.replicas) == 2


def test_a_dead_replica_is_not_started_again_every_tick(scaler: Scaler) -> None:
    pool = scaler.pools["k"] = Pool(deployment(1, 3), [cast(Replica, Fake("failed"))],
                                    calm_since=0.0)
    for tick in range(100):
        scaler._autoscale(tick * 0.05)
    assert states(pool) == ["failed"]  # the watcher's backoff replaces it, not the scaler
