"""Rollouts in the control plane, on each backend: shadow deployments, one model's share
moved (a canary's step), the SDK's canary with its rollback, deployments that follow an
alias when the registry moves it, and the built-in events each change publishes in its
own transaction (a refused change publishes nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import shipyard as sy
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.events import bus
from shipyard.events.builtin import (
    ENDPOINT_DEPLOYED,
    ENDPOINT_TRAFFIC_CHANGED,
    ENDPOINT_UNDEPLOYED,
)
from shipyard.registry import aliases
from shipyard.registry import service as registry
from shipyard.sdk import session
from shipyard.sdk.serving import Endpoint
from shipyard.serving import service
from shipyard.store import Store
from tests.serving.conftest import frame, linear


def drain(store: Store, subscription: str) -> list[dict[str, Any]]:
    """Every message waiting on ``subscription``, acknowledged, in order."""
    out: list[dict[str, Any]] = []
    while True:
        got = bus.pull(store, "p1", subscription, max_messages=100)
        if not got:
            return out
        out += [m.data for m in got]
        bus.ack(store, "p1", subscription, [m.lease_token for m in got])


def test_shadow_deployments(store: Store, ctx: RequestContext, versions: list[int]) -> None:
    service.create_endpoint(store, ctx, "ep")
    with pytest.raises(FailedPrecondition) as first:  # nothing to copy the traffic of
        service.deploy(store, ctx, "ep", "lead", version=2, shadow=True)
    assert first.value.field == "shadow"
    service.deploy(store, ctx, "ep", "lead", version=1)
    with pytest.raises(InvalidArgument) as share:
        service.deploy(store, ctx, "ep", "lead", version=2, shadow=True, traffic_percentage=10)
    assert share.value.field == "traffic_percentage"
    with pytest.raises(InvalidArgument) as flag:
        service.deploy(store, ctx, "ep", "lead", version=2, shadow="yes")  # type: ignore[arg-type]
    assert flag.value.field == "shadow"
    shadowed = service.deploy(store, ctx, "ep", "lead", version=2, shadow=True)
    assert shadowed.traffic == {"lead:1": 100}  # a shadow is never in the split
    assert shadowed.shadows == ["lead:2"]
    assert [d.shadow for d in shadowed.deployments] == [False, True]
    # A split that gives the shadow a share is refused, naming it.
    with pytest.raises(InvalidArgument) as named:
        service.set_traffic(store, ctx, "ep", {"lead:1": 50, "lead:2": 50})
    assert named.value.field == "traffic.lead:2" and "shadow" in named.value.message
    with pytest.raises(InvalidArgument):
        service.shift_traffic(store, ctx, "ep", "lead:2", 10)
    # A model deployed after the shadow shares the split with lead:1 only.
    third = service.deploy(store, ctx, "ep", "lead", version=3, traffic_percentage=20)
    assert third.traffic == {"lead:1": 80, "lead:3": 20}
    # The last model that answers cannot leave while a shadow copies it.
    service.undeploy(store, ctx, "ep", "lead:3")
    with pytest.raises(FailedPrecondition) as last:
        service.undeploy(store, ctx, "ep", "lead:1")
    assert last.value.field == "deployed_model_id"
    gone = service.undeploy(store, ctx, "ep", "lead:2")  # the shadow leaves; the split stays
    assert gone.traffic == {"lead:1": 100} and gone.shadows == []
    # The registry shows a shadow's version deployed too (it runs).
    service.deploy(store, ctx, "ep", "lead", version=2, shadow=True)
    assert registry.get_model_version(
        store, "p1", "lead", 2, deployments=service.deployed_versions).status == "deployed"


def test_shift_traffic_moves_one_share(store: Store, ctx: RequestContext,
                                       versions: list[int]) -> None:
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=1)
    service.deploy(store, ctx, "ep", "lead", version=2, traffic_percentage=0)
    service.deploy(store, ctx, "ep", "lead", version=3, traffic_percentage=0)
    service.set_traffic(store, ctx, "ep", {"lead:1": 75, "lead:2": 25})
    # lead:3 takes 20; lead:1 and lead:2 keep their 3:1 proportions of the other 80.
    assert service.shift_traffic(store, ctx, "ep", "lead:3", 20).traffic == {
        "lead:1": 60, "lead:2": 20, "lead:3": 20}
    assert service.shift_traffic(store, ctx, "ep", "lead:3", 100).traffic == {
        "lead:1": 0, "lead:2": 0, "lead:3": 100}
    for bad, field in ((101, "traffic_percentage"), (-1, "traffic_percentage"),
                       (True, "traffic_percentage"), ("50", "traffic_percentage")):
        with pytest.raises(InvalidArgument) as info:
            service.shift_traffic(store, ctx, "ep", "lead:3", bad)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(NotFound) as missing:
        service.shift_traffic(store, ctx, "ep", "lead:9", 10)
    assert missing.value.field == "deployed_model_id"


def test_follow_alias_moves_with_the_alias(store: Store, ctx: RequestContext,
                                           versions: list[int]) -> None:
    service.create_endpoint(store, ctx, "ep")
    service.create_endpoint(store, ctx, "pinned")
    with pytest.raises(InvalidArgument) as no_alias:
        service.deploy(store, ctx, "ep", "lead", version=2, follow_alias=True)
    assert no_alias.value.field == "follow_alias"
    followed = service.deploy(store, ctx, "ep", "lead", alias="production", follow_alias=True)
    assert followed.traffic == {"lead:2": 100} and followed.deployments[0].follow_alias
    # 'pinned' was deployed by the alias but does not follow it.
    service.deploy(store, ctx, "pinned", "lead", alias="production")
    bus.create_subscription(store, ctx, "watch-deploys", ENDPOINT_DEPLOYED)
    bus.create_subscription(store, ctx, "watch-undeploys", ENDPOINT_UNDEPLOYED)

    aliases.set_alias(store, ctx, "lead", "production", 3)
    moved = service.get_endpoint(store, "p1", "ep")
    assert moved.traffic == {"lead:3": 100}
    assert moved.deployments[0].alias == "production" and moved.deployments[0].follow_alias
    assert service.get_endpoint(store, "p1", "pinned").traffic == {"lead:2": 100}
    assert [(m["endpoint"], m["deployment"]) for m in drain(store, "watch-deploys")] == [
        ("ep", "lead:3")]
    assert [(m["endpoint"], m["deployment"]) for m in drain(store, "watch-undeploys")] == [
        ("ep", "lead:2")]
    # A rollback of the alias moves it back; so does promotion's or any other move.
    aliases.rollback(store, ctx, "lead", "production")
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:2": 100}
    # Where the new version is deployed already, the follower's share joins it.
    service.deploy(store, ctx, "ep", "lead", version=1, traffic_percentage=30)
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:2": 70, "lead:1": 30}
    aliases.set_alias(store, ctx, "lead", "production", 1)
    merged = service.get_endpoint(store, "p1", "ep")
    assert merged.traffic == {"lead:1": 100}
    assert merged.deployments[0].follow_alias and merged.deployments[0].alias == "production"
    # Deleting the alias leaves the deployment where it is.
    aliases.delete_alias(store, ctx, "lead", "production")
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:1": 100}
    # A move to a retired version is refused by the registry, and nothing follows.
    registry.set_status(store, ctx, "lead", 3, "retired")
    with pytest.raises(FailedPrecondition):
        aliases.set_alias(store, ctx, "lead", "production", 3)
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:1": 100}


def test_each_change_publishes_its_event_and_a_refused_one_nothing(
        store: Store, ctx: RequestContext, versions: list[int]) -> None:
    for topic in (ENDPOINT_DEPLOYED, ENDPOINT_UNDEPLOYED, ENDPOINT_TRAFFIC_CHANGED):
        bus.create_subscription(store, ctx, f"sub-{topic}", topic)
    service.create_endpoint(store, ctx, "ep")
    service.deploy(store, ctx, "ep", "lead", version=1)
    service.deploy(store, ctx, "ep", "lead", version=2, traffic_percentage=10)
    service.set_traffic(store, ctx, "ep", {"lead:1": 50, "lead:2": 50})
    service.shift_traffic(store, ctx, "ep", "lead:2", 100)
    service.undeploy(store, ctx, "ep", "lead:1")
    assert drain(store, f"sub-{ENDPOINT_DEPLOYED}") == [
        {"event": ENDPOINT_DEPLOYED, "endpoint": "ep", "deployment": "lead:1",
         "model": "lead", "version": 1, "traffic": {"lead:1": 100}},
        {"event": ENDPOINT_DEPLOYED, "endpoint": "ep", "deployment": "lead:2",
         "model": "lead", "version": 2, "traffic": {"lead:1": 90, "lead:2": 10}},
    ]
    assert drain(store, f"sub-{ENDPOINT_TRAFFIC_CHANGED}") == [
        {"event": ENDPOINT_TRAFFIC_CHANGED, "endpoint": "ep",
         "traffic": {"lead:1": 50, "lead:2": 50}},
        {"event": ENDPOINT_TRAFFIC_CHANGED, "endpoint": "ep",
         "traffic": {"lead:1": 0, "lead:2": 100}},
    ]
    assert drain(store, f"sub-{ENDPOINT_UNDEPLOYED}") == [
        {"event": ENDPOINT_UNDEPLOYED, "endpoint": "ep", "deployment": "lead:1",
         "model": "lead", "version": 1}]
    # Refused changes publish nothing.
    with pytest.raises(InvalidArgument):
        service.set_traffic(store, ctx, "ep", {"lead:2": 99})
    with pytest.raises(InvalidArgument):
        service.deploy(store, ctx, "ep", "lead", version=3, traffic_percentage=101)
    with pytest.raises(NotFound):
        service.undeploy(store, ctx, "ep", "lead:7")
    with pytest.raises(InvalidArgument):
        service.shift_traffic(store, ctx, "ep", "lead:2", 50)  # the only model keeps 100
    for topic in (ENDPOINT_DEPLOYED, ENDPOINT_UNDEPLOYED, ENDPOINT_TRAFFIC_CHANGED):
        assert drain(store, f"sub-{topic}") == [], topic


def test_the_sdk_canary_steps_and_rolls_back(store_uri: str, home: Path, tmp_path: Path
                                             ) -> None:
    sy.init(home=home, uri=store_uri, artifacts=str(tmp_path / "blobs"), project="p1")
    try:
        for slope in (1.0, 2.0):
            sy.register_model("lead", linear(slope), input_example=frame(5))
        ep = sy.create_endpoint("ep")
        ep.deploy("lead", version=1)
        ep.deploy("lead", version=2, traffic_percentage=0)
        seen: list[dict[str, int]] = []
        waited: list[float] = []

        def healthy(endpoint: Endpoint) -> bool:
            seen.append(dict(endpoint.traffic))
            return True

        done = ep.canary("lead:2", steps=(10, 50, 100), interval=0.25, check=healthy,
                         sleep=waited.append)
        assert (done.rolled_back, done.steps) == (False, [10, 50, 100])
        assert seen == [{"lead:1": 90, "lead:2": 10}, {"lead:1": 50, "lead:2": 50},
                        {"lead:1": 0, "lead:2": 100}]
        assert waited == [0.25] * 3 and ep.traffic == {"lead:1": 0, "lead:2": 100}

        # A check that fails at 50% puts the split back as it was before the canary.
        ep.set_traffic({"lead:1": 100})
        failing = ep.canary("lead:2", steps=(10, 50, 100), interval=0, sleep=waited.append,
                            check=lambda e: e.traffic["lead:2"] < 50)
        assert failing.rolled_back and failing.steps == [10, 50]
        assert failing.reason.startswith("at 50%") and failing.traffic == {"lead:1": 100,
                                                                           "lead:2": 0}
        assert ep.refresh().traffic == {"lead:1": 100, "lead:2": 0}

        def broken(endpoint: Endpoint) -> bool:
            raise RuntimeError("error rate 7%")

        crashed = ep.canary("lead:2", steps=[25], interval=0, check=broken, sleep=waited.append)
        assert crashed.rolled_back and "error rate 7%" in crashed.reason
        assert ep.refresh().traffic == {"lead:1": 100, "lead:2": 0}
        for steps in ((50, 10), (), (10, 101), (True,)):
            with pytest.raises(InvalidArgument) as info:
                ep.canary("lead:2", steps=steps, interval=0)
            assert info.value.field == "steps"
        with pytest.raises(InvalidArgument) as unknown:
            ep.canary("lead:9", interval=0)
        assert unknown.value.field == "deployed_model_id"
    finally:
        session.reset()
