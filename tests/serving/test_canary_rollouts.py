"""Durable canaries judged by the worker's job source, on SQLite and PostgreSQL: promoted
after N logged requests when the latency holds, rolled back when it does not, never decided
twice; bad input names the field."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import update

from shipyard import audit
from shipyard.artifacts import ArtifactStore
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.events import actions as act
from shipyard.events.acting import perform
from shipyard.registry import service as registry
from shipyard.serving import rollouts, service, verdicts
from shipyard.serving.requestlog import Logged, RequestLog
from shipyard.store import Store
from shipyard.store.schema import canary_rollouts
from shipyard.store.types import utcnow

# For what does not depend on the database (the decisions' race is in the tests above).
SQLITE_ONLY = pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)


def _log(root: Path, deployed: str, count: int, latency_ms: float,
         prediction: float = 1.0, *, shadow: bool = False, status: int = 200) -> None:
    """``count`` requests of ``deployed`` on endpoint 'ep' (answered, or failed with
    ``status``), logged now."""
    version = deployed.rpartition(":")[2]
    now = time.time()
    RequestLog(root=root).write([
        Logged(request_id=f"{deployed}-{i}-{now}", time=now, project="p1", endpoint="ep",
               deployed_model_id=deployed, model_version=int(version), protocol="json",
               latency_ms=latency_ms, rows=[[1, 2.0], [3, 4.0]],
               predictions=[prediction, prediction], names=None, shadow=shadow,
               status=status, error=None if status == 200 else "invalid_argument: no")
        for i in range(count)])


class _Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _source(store: Store, root: Path, clock: _Clock) -> tuple[rollouts.CanaryRollouts, Any]:
    runtime = SimpleNamespace(store=store, settings=SimpleNamespace(artifacts=str(root)))
    return rollouts.CanaryRollouts(clock=clock, check_every=5.0), runtime


def _canary(store: Store, ctx: RequestContext, **criteria: Any) -> rollouts.CanaryRollout:
    """lead:2 (the champion, 'production') serves 'ep'; lead:3 starts as a 10% canary."""
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=2)
    service.deploy(store, ctx, "ep", "lead", version=3, traffic_percentage=0)
    return rollouts.start_canary(store, ctx, "ep", "lead:3", after_requests=20, **criteria)


def test_a_canary_is_promoted_after_n_requests_once(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int],
        tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    rollout = _canary(store, ctx, max_latency_ratio=1.5)
    assert (rollout.state, rollout.percent, rollout.champions) == ("running", 10, ["lead:2"])
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:2": 90, "lead:3": 10}
    with pytest.raises(FailedPrecondition) as twice:  # one canary per endpoint at a time
        rollouts.start_canary(store, ctx, "ep", "lead:3")
    assert twice.value.field == "endpoint"

    clock = _Clock()
    source, runtime = _source(store, root, clock)
    assert source.name == "canaries"
    _log(root, "lead:3", 19, latency_ms=10.0)  # one short of N (a shadow's do not count)
    _log(root, "lead:3", 5, latency_ms=10.0, shadow=True)
    _log(root, "lead:2", 60, latency_ms=9.0)
    assert source.claim_and_run(runtime, "w1") is True
    assert rollouts.get_rollout(store, "p1", rollout.id).state == "running"
    assert source.claim_and_run(runtime, "w1") is False  # checked again 5 s later
    _log(root, "lead:3", 1, latency_ms=12.0)
    clock.advance(6)
    assert source.claim_and_run(runtime, "w2") is True

    done = rollouts.get_rollout(store, "p1", rollout.id)
    assert done.state == "promoted" and done.decided_at is not None
    assert done.decision is not None
    assert done.decision["candidate"]["requests"] == 20
    assert done.decision["champions"]["requests"] == 60
    assert "within 1.5 x" in done.decision["reasons"][0]
    ep = service.get_endpoint(store, "p1", "ep")
    assert ep.traffic == {"lead:3": 100} and [d.id for d in ep.deployments] == ["lead:3"]
    assert registry.get_model_version(store, "p1", "lead", alias="production").version == 3
    actions = [row["action"] for row in audit.query(store, project="p1")]
    assert actions.count("endpoint.canary.promote") == 1

    # Judged again (a redelivery, another worker, a stale claim): nothing more happens.
    clock.advance(600)
    assert source.claim_and_run(runtime, "w1") is False
    assert rollouts.decide(store, rollout.id, "w2", "roll_back", {}) is None
    assert rollouts.get_rollout(store, "p1", rollout.id).state == "promoted"
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:3": 100}
    assert len(audit.query(store, project="p1")) == len(actions)


def test_a_slower_canary_is_rolled_back(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int],
        tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    rollout = _canary(store, ctx, max_latency_ratio=1.2)
    clock = _Clock()
    source, runtime = _source(store, root, clock)
    _log(root, "lead:3", 25, latency_ms=30.0)  # p95 30 ms against the champion's 10 ms
    _log(root, "lead:2", 50, latency_ms=10.0)
    assert source.claim_and_run(runtime, "w1") is True
    done = rollouts.get_rollout(store, "p1", rollout.id)
    assert done.state == "rolled_back"
    assert done.decision is not None and done.decision["verdict"] == "roll_back"
    assert "above 1.2 x" in done.decision["reasons"][0]
    ep = service.get_endpoint(store, "p1", "ep")
    assert ep.traffic == {"lead:2": 100} and [d.id for d in ep.deployments] == ["lead:2"]
    assert registry.get_model_version(store, "p1", "lead", alias="production").version == 2
    clock.advance(600)
    assert source.claim_and_run(runtime, "w1") is False
    actions = [row["action"] for row in audit.query(store, project="p1")]
    assert actions.count("endpoint.canary.rollback") == 1


@SQLITE_ONLY
def test_a_worker_whose_lease_ran_out_decides_nothing(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int],
        tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    rollout = _canary(store, ctx)
    _log(root, "lead:3", 20, latency_ms=10.0)
    _log(root, "lead:2", 20, latency_ms=10.0)
    start = utcnow()
    # w1 claimed it and died before deciding; after its lease, w2 judges and promotes.
    store.retry_write(lambda conn: conn.execute(update(canary_rollouts).values(
        lease_owner="w1", lease_until=start + timedelta(seconds=60))))
    assert rollouts.judge_canaries(store, str(root), "w2", now=start) is False  # leased
    assert rollouts.judge_canaries(store, str(root), "w2",
                                   now=start + timedelta(seconds=61)) is True
    assert rollouts.decide(store, rollout.id, "w1", "roll_back", {}) is None  # w1 is late
    assert rollouts.get_rollout(store, "p1", rollout.id).state == "promoted"


@SQLITE_ONLY
def test_a_registered_version_starts_a_canary_through_the_action(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int]
) -> None:
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=2)
    action = act.StartCanary(endpoint="ep", model="lead", percent=20, after_requests=5)
    fired = {"event": {"event": "model-version-registered", "model": "lead", "version": 3}}
    made = perform(store, artifacts, None, ctx, action, fired)
    assert made["candidate"] == "lead:3" and made["state"] == "running"
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:2": 80, "lead:3": 20}
    again = perform(store, artifacts, None, ctx, action, fired)  # a redelivered event
    assert again["rollout"] == made["rollout"]
    assert len(rollouts.list_rollouts(store, "p1", "ep")) == 1
    with pytest.raises(FailedPrecondition) as other:
        perform(store, artifacts, None, ctx, action,
                {"event": {"model": "churn", "version": 1}})
    assert other.value.field == "action.model"


@pytest.mark.parametrize(("given", "field"), [
    ({"percent": 0}, "percent"), ({"percent": 100}, "percent"),
    ({"percent": True}, "percent"), ({"after_requests": 0}, "after_requests"),
    ({"max_latency_ratio": -1}, "max_latency_ratio"),
    ({"prediction_tolerance": "x"}, "prediction_tolerance"),
    ({"promote_alias": "a/b"}, "promote_alias")])
def test_bad_canary_input_names_the_field(given: dict[str, Any], field: str) -> None:
    defaults: dict[str, Any] = {"deployed_model_id": "lead:3", "percent": 10,
                                "after_requests": 10, "max_latency_ratio": 1.5,
                                "prediction_tolerance": None, "promote_alias": "production"}
    with pytest.raises(InvalidArgument) as info:
        rollouts.check_criteria(**{**defaults, **given})
    assert info.value.field == field
    action = {"type": "start_canary", "endpoint": "ep", "model": "lead", **given}
    with pytest.raises(InvalidArgument) as bad:
        act.check_action(action)
    assert bad.value.field == f"action.{field}"


@SQLITE_ONLY
def test_bad_deployed_model_id_and_missing_candidate(
        store: Store, ctx: RequestContext, versions: list[int]) -> None:
    with pytest.raises(InvalidArgument) as shape:
        rollouts.start_canary(store, ctx, "ep", "lead")
    assert shape.value.field == "deployed_model_id"
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=2)
    with pytest.raises(Exception) as missing:
        rollouts.start_canary(store, ctx, "ep", "lead:3")
    assert getattr(missing.value, "field", None) == "deployed_model_id"
    with pytest.raises(FailedPrecondition) as alone:
        rollouts.start_canary(store, ctx, "ep", "lead:2")
    assert alone.value.field == "deployed_model_id"


def test_the_prediction_criterion() -> None:
    close = verdicts.Figures(30, 10.0, 1.02)
    champion = verdicts.Figures(90, 10.0, 1.0)
    far = verdicts.Figures(30, 10.0, 1.5)
    criteria = {"max_latency_ratio": 1.5, "prediction_tolerance": 0.1}
    assert verdicts.compare(close, champion, criteria)[0] == "promote"
    verdict, reasons = verdicts.compare(far, champion, criteria)
    assert verdict == "roll_back" and "beyond 0.1" in reasons[1]
    assert verdicts.compare(close, verdicts.Figures(0, None, None), criteria)[0] is None


@SQLITE_ONLY
def test_the_loop_from_a_registered_version_to_its_promotion(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int],
        tmp_path: Path) -> None:
    from shipyard.events import triggers
    from tests.serving.conftest import frame, linear

    root = tmp_path / "artifacts"
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=2)
    triggers.create_trigger(store, ctx, "lead-canary", topic="model-version-registered",
                            filter={"model": "lead"},
                            action=act.StartCanary(endpoint="ep", model="lead",
                                                   after_requests=10))
    registry.register_model(store, artifacts, ctx, "lead", linear(4.0),
                            input_example=frame(5))

    def run(fired_ctx: RequestContext, action: Any, context: dict[str, Any]) -> Any:
        return perform(store, artifacts, None, fired_ctx, action, context)

    assert triggers.process_triggers(store, run) == 1
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:2": 90, "lead:4": 10}
    _log(root, "lead:4", 10, latency_ms=8.0)
    _log(root, "lead:2", 90, latency_ms=8.0)
    assert rollouts.judge_canaries(store, str(root), "w") is True
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:4": 100}
    assert registry.get_model_version(store, "p1", "lead", alias="production").version == 4


@pytest.mark.parametrize(("given", "field"), [
    ({"error_rate_alpha": 0}, "error_rate_alpha"), ({"error_rate_alpha": 0.6},
                                                     "error_rate_alpha"),
    ({"error_rate_alpha": True}, "error_rate_alpha"),
    ({"max_error_rate_increase": -0.1}, "max_error_rate_increase"),
    ({"max_error_rate_increase": "0.1"}, "max_error_rate_increase")])
def test_bad_error_rate_criteria_name_the_field(given: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        rollouts.check_criteria("lead:3", 10, 10, 1.5, None, None, **given)
    assert info.value.field == field


def test_the_error_rate_rule() -> None:
    # 10 of 40 against 0 of 60: pooled rate 0.1, z = 0.25 / sqrt(0.09 (1/40 + 1/60)) = 4.08.
    worse, why = verdicts.error_rate_worse(10, 40, 0, 60, 0.05, 0.0)
    assert worse and "z = 4.08 > 1.645" in why
    # 1 of 50 against 0 of 50: z = 0.02 / sqrt(0.0099 x 0.04) = 1.01, not significant.
    worse, why = verdicts.error_rate_worse(1, 50, 0, 50, 0.05, 0.0)
    assert not worse and "z = 1.01 <= 1.645" in why
    # ... but at alpha 0.2 (critical value 0.842) it is.
    assert verdicts.error_rate_worse(1, 50, 0, 50, 0.2, 0.0)[0]
    # A margin: 15 of 100 against 10 of 100 is within 0.05 more (z = 0).
    assert not verdicts.error_rate_worse(15, 100, 10, 100, 0.05, 0.05)[0]
    assert verdicts.error_rate_worse(40, 100, 10, 100, 0.05, 0.05)[0]
    # No errors anywhere, or all: the rates are compared as they are.
    assert not verdicts.error_rate_worse(0, 20, 0, 20, 0.05, 0.0)[0]
    assert not verdicts.error_rate_worse(20, 20, 20, 20, 0.05, 0.0)[0]
    # Fewer errors than the champions' is never worse.
    assert not verdicts.error_rate_worse(0, 100, 30, 100, 0.05, 0.0)[0]


@SQLITE_ONLY
def test_a_canary_that_fails_more_often_is_rolled_back(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int],
        tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    rollout = _canary(store, ctx, max_latency_ratio=1.5, error_rate_alpha=0.05)
    assert rollout.criteria["error_rate_alpha"] == 0.05
    assert rollout.criteria["max_error_rate_increase"] == 0.0
    _log(root, "lead:3", 20, latency_ms=10.0)
    _log(root, "lead:3", 10, latency_ms=1.0, status=400)  # fast failures: no latency sample
    _log(root, "lead:2", 60, latency_ms=10.0)
    _log(root, "lead:2", 1, latency_ms=1.0, status=503)
    assert rollouts.judge_canaries(store, str(root), "w") is True
    done = rollouts.get_rollout(store, "p1", rollout.id)
    assert done.state == "rolled_back" and done.decision is not None
    assert done.decision["candidate"]["requests"] == 30
    assert done.decision["candidate"]["errors"] == 10
    assert done.decision["champions"]["errors"] == 1
    assert done.decision["candidate"]["p95_ms"] == 10.0  # answered requests only
    assert "within 1.5 x" in done.decision["reasons"][0]
    assert "error rate 33.3% (10 of 30)" in done.decision["reasons"][-1]
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:2": 100}


@SQLITE_ONLY
def test_a_canary_that_fails_as_often_as_the_champion_is_promoted(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int],
        tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    rollout = _canary(store, ctx)
    _log(root, "lead:3", 18, latency_ms=10.0)
    _log(root, "lead:3", 2, latency_ms=10.0, status=400)
    _log(root, "lead:2", 54, latency_ms=10.0)
    _log(root, "lead:2", 6, latency_ms=10.0, status=400)
    assert rollouts.judge_canaries(store, str(root), "w") is True
    done = rollouts.get_rollout(store, "p1", rollout.id)
    assert done.state == "promoted", done.decision
    assert done.decision is not None and ": not worse" in done.decision["reasons"][-1]


@SQLITE_ONLY
def test_a_trigger_started_canary_is_judged_with_the_error_criteria_it_was_given(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int],
        tmp_path: Path) -> None:
    """1 failure in 50 against none in 50 gives z = 1.01: not significant at the default
    level 0.05 (critical value 1.645), significant at 0.2 (0.842), given by the trigger."""
    root = tmp_path / "artifacts"
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=2)
    action = act.check_action({"type": "start_canary", "endpoint": "ep", "model": "lead",
                               "after_requests": 50, "error_rate_alpha": 0.2,
                               "max_error_rate_increase": 0.001})
    made = perform(store, artifacts, None, ctx, action,
                   {"event": {"model": "lead", "version": 3}})
    rollout = rollouts.get_rollout(store, "p1", made["rollout"])
    assert rollout.criteria["error_rate_alpha"] == 0.2
    assert rollout.criteria["max_error_rate_increase"] == 0.001
    _log(root, "lead:3", 49, latency_ms=10.0)
    _log(root, "lead:3", 1, latency_ms=10.0, status=500)
    _log(root, "lead:2", 50, latency_ms=10.0)
    assert rollouts.judge_canaries(store, str(root), "w") is True
    done = rollouts.get_rollout(store, "p1", rollout.id)
    assert done.state == "rolled_back" and done.decision is not None
    assert "> 0.842, alpha 0.2, margin 0.001" in done.decision["reasons"][-1]
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:2": 100}
    # The same figures under the defaults would have promoted it.
    default = verdicts.compare(verdicts.Figures(50, 10.0, 1.0, 1),
                               verdicts.Figures(50, 10.0, 1.0, 0), {"max_latency_ratio": 1.5})
    assert default[0] == "promote"


@SQLITE_ONLY
def test_a_canary_candidate_runs_where_the_champion_runs(
        store: Store, artifacts: ArtifactStore, ctx: RequestContext, versions: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A champion on Ray gets its candidate on Ray unless the action names a runtime. The
    runtime check asks only that a Ray head accept connections at RAY_ADDRESS: a listening
    socket stands in for one (tests/ray/test_ray_serve.py runs a real cluster)."""
    import socket

    fired = {"event": {"model": "lead", "version": 3}}
    service.create_endpoint(store, ctx, "ep")
    service.create_endpoint(store, ctx, "told")
    with socket.socket() as head:
        head.bind(("127.0.0.1", 0))
        head.listen()
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{head.getsockname()[1]}")
        service.deploy(store, ctx, "ep", "lead", version=2, runtime="ray")
        service.deploy(store, ctx, "told", "lead", version=2, runtime="ray")
        perform(store, artifacts, None, ctx,
                act.StartCanary(endpoint="ep", model="lead", after_requests=5), fired)
        perform(store, artifacts, None, ctx,
                act.StartCanary(endpoint="told", model="lead", after_requests=5,
                                runtime="local"), fired)
    runtimes = {(e, d.id): d.runtime for e in ("ep", "told")
                for d in service.get_endpoint(store, "p1", e).deployments}
    assert runtimes == {("ep", "lead:2"): "ray", ("ep", "lead:3"): "ray",
                        ("told", "lead:2"): "ray", ("told", "lead:3"): "local"}
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:2": 90, "lead:3": 10}

    # A local champion keeps a local candidate; with no Ray head, a Ray canary is refused
    # naming the runtime, and nothing is deployed.
    service.create_endpoint(store, ctx, "plain")
    service.deploy(store, ctx, "plain", "lead", version=2)
    perform(store, artifacts, None, ctx,
            act.StartCanary(endpoint="plain", model="lead", after_requests=5), fired)
    assert [d.runtime for d in service.get_endpoint(store, "p1", "plain").deployments] == [
        "local", "local"]
    monkeypatch.delenv("RAY_ADDRESS")
    service.create_endpoint(store, ctx, "gone")
    service.deploy(store, ctx, "gone", "lead", version=2)
    with pytest.raises(FailedPrecondition) as refused:
        perform(store, artifacts, None, ctx,
                act.StartCanary(endpoint="gone", model="lead", runtime="ray"), fired)
    assert refused.value.field == "runtime"
    assert [d.id for d in service.get_endpoint(store, "p1", "gone").deployments] == ["lead:2"]
    with pytest.raises(InvalidArgument) as bad:
        act.check_action({"type": "start_canary", "endpoint": "ep", "model": "lead",
                          "runtime": "spark"})
    assert bad.value.field == "action.runtime"
