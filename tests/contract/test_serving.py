"""Serving through the public SDK, in local mode (predictions in this process) and remote
mode (a real server and its replica processes): the same answers and the same errors."""

from __future__ import annotations

from types import ModuleType

import pytest

from shipyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tests.serving.conftest import frame, linear


def test_endpoint_lifecycle(sy: ModuleType) -> None:
    for slope in (1.0, 2.0):
        sy.register_model("lead", linear(slope), input_example=frame(5),
                          aliases=["production"] if slope == 2.0 else None)
    ep = sy.create_endpoint("lead-ep", description="scores leads")
    assert (ep.name, ep.traffic, ep.deployments) == ("lead-ep", {}, [])
    with pytest.raises(AlreadyExists) as taken:
        sy.create_endpoint("lead-ep")
    assert taken.value.field == "name"
    with pytest.raises(FailedPrecondition):
        ep.predict([[1, 2.0]])

    first = ep.deploy("lead", version=1)
    assert first.id == "lead:1" and ep.traffic == {"lead:1": 100}
    assert sy.get_model_version("lead", version=1).status == "deployed"
    answer = ep.predict([{"visits": 3, "time_on_site": 1.0}, {"visits": 4, "time_on_site": 2.0}])
    assert answer.deployed_model_id == "lead:1" and answer.model_version == 1
    assert [round(p, 6) for p in answer.predictions] == [3.0, 4.0]
    assert round(ep.predict(frame(1)).predictions[0], 6) == float(frame(1)["visits"][0])

    with pytest.raises(InvalidArgument) as bad:
        ep.predict([{"visits": "many", "time_on_site": 1.0}])
    assert bad.value.field == "visits" and "row 0" in bad.value.message
    with pytest.raises(InvalidArgument) as short:
        ep.predict([[1, 2.0], [1]])
    assert short.value.field == "instances[1]"

    second = ep.deploy("lead", alias="production", traffic_percentage=100)
    assert second.id == "lead:2" and second.alias == "production"
    assert ep.traffic == {"lead:1": 0, "lead:2": 100}
    assert ep.predict([[1, 1.0]]).deployed_model_id == "lead:2"
    with pytest.raises(InvalidArgument) as split:
        ep.set_traffic({"lead:1": 50, "lead:2": 40})
    assert split.value.field == "traffic"
    with pytest.raises(InvalidArgument) as unknown:
        ep.set_traffic({"lead:9": 100})
    assert unknown.value.field == "traffic.lead:9"
    ep.set_traffic({"lead:1": 100})
    assert ep.predict([[1, 1.0]]).deployed_model_id == "lead:1"
    ep.undeploy("lead:1")
    assert ep.traffic == {"lead:2": 100}
    with pytest.raises(NotFound) as gone:
        ep.undeploy("lead:1")
    assert gone.value.field == "deployed_model_id"

    assert [e.name for e in sy.list_endpoints()] == ["lead-ep"]
    assert sy.get_endpoint("lead-ep").traffic == {"lead:2": 100}
    with pytest.raises(FailedPrecondition):
        sy.delete_endpoint("lead-ep")
    ep.undeploy("lead:2")
    assert sy.get_model_version("lead", version=2).status == "registered"
    sy.delete_endpoint("lead-ep")
    with pytest.raises(NotFound):
        sy.get_endpoint("lead-ep")


def test_rollouts(sy: ModuleType) -> None:
    for slope in (1.0, 2.0, 3.0):
        sy.register_model("lead", linear(slope), input_example=frame(5))
    sy.set_alias("lead", "production", 1)
    ep = sy.create_endpoint("lead-ep")
    followed = ep.deploy("lead", alias="production", follow_alias=True)
    assert followed.id == "lead:1" and followed.follow_alias and not followed.shadow
    ep.deploy("lead", version=2, traffic_percentage=0)
    assert ep.shift_traffic("lead:2", 30).traffic == {"lead:1": 70, "lead:2": 30}
    with pytest.raises(InvalidArgument) as bad:
        ep.shift_traffic("lead:2", 101)
    assert bad.value.field == "traffic_percentage"
    with pytest.raises(NotFound) as missing:
        ep.shift_traffic("lead:9", 10)
    assert missing.value.field == "deployed_model_id"

    rollout = ep.canary("lead:2", steps=(50, 100), interval=0,
                        check=lambda e: e.predict([[1, 1.0]]).deployed_model_id.startswith("lead"))
    assert (rollout.rolled_back, rollout.steps) == (False, [50, 100])
    assert ep.traffic == {"lead:1": 0, "lead:2": 100}
    failed = ep.canary("lead:1", steps=(10,), interval=0, check=lambda e: False)
    assert failed.rolled_back and ep.refresh().traffic == {"lead:1": 0, "lead:2": 100}

    shadow = ep.deploy("lead", version=3, shadow=True)
    assert shadow.shadow and ep.shadows == ["lead:3"]
    assert ep.traffic == {"lead:1": 0, "lead:2": 100}
    assert ep.predict([[1, 1.0]]).deployed_model_id == "lead:2"  # never the shadow's answer
    with pytest.raises(InvalidArgument) as share:
        ep.set_traffic({"lead:2": 50, "lead:3": 50})
    assert share.value.field == "traffic.lead:3"
    ep.undeploy("lead:3")

    # The alias moves: the deployment that follows it moves with it (its share joins
    # lead:2's, which is deployed already).
    sy.set_alias("lead", "production", 2)
    assert ep.refresh().traffic == {"lead:2": 100}
    assert ep.deployments[0].follow_alias


def test_durable_rollouts_start_list_and_show(sy: ModuleType) -> None:
    """A canary rollout judged by the workers, started and read through the SDK in both
    modes (its verdicts: tests/serving/test_canary_rollouts.py); bad settings name the
    field, locally and over REST alike."""
    for slope in (1.0, 2.0):
        sy.register_model("lead", linear(slope), input_example=frame(5))
    sy.set_alias("lead", "production", 1)
    ep = sy.create_endpoint("lead-ep")
    ep.deploy("lead", version=1)
    ep.deploy("lead", version=2, traffic_percentage=0)
    assert ep.rollouts() == []

    for settings, field in [({"percent": 0}, "percent"), ({"percent": 100}, "percent"),
                            ({"after_requests": True}, "after_requests"),
                            ({"after_requests": 0}, "after_requests"),
                            ({"max_latency_ratio": -1.0}, "max_latency_ratio"),
                            ({"prediction_tolerance": float("inf")}, "prediction_tolerance"),
                            ({"promote_alias": "../x"}, "promote_alias"),
                            ({"error_rate_alpha": 0.9}, "error_rate_alpha"),
                            ({"max_error_rate_increase": 2.0}, "max_error_rate_increase")]:
        with pytest.raises(InvalidArgument) as bad:
            ep.start_rollout("lead:2", **settings)
        assert bad.value.field == field, (settings, bad.value)
    with pytest.raises(NotFound) as missing:
        ep.start_rollout("lead:9")
    assert missing.value.field == "deployed_model_id"
    with pytest.raises(InvalidArgument) as malformed:
        ep.start_rollout("lead")
    assert malformed.value.field == "deployed_model_id"
    assert ep.rollouts() == [] and ep.refresh().traffic == {"lead:1": 100, "lead:2": 0}

    started = ep.start_rollout("lead:2", percent=20, after_requests=50,
                               max_latency_ratio=2.0, error_rate_alpha=0.1)
    assert (started.state, started.candidate, started.champions, started.percent) == (
        "running", "lead:2", ["lead:1"], 20)
    assert started.criteria["max_latency_ratio"] == 2.0
    assert started.criteria["error_rate_alpha"] == 0.1
    assert started.promote_alias == "production" and started.decision is None
    assert ep.traffic == {"lead:1": 80, "lead:2": 20}  # the endpoint object is refreshed
    with pytest.raises(FailedPrecondition) as twice:
        ep.start_rollout("lead:2")
    assert twice.value.field == "endpoint"
    assert [r.id for r in ep.rollouts()] == [started.id]
    assert ep.get_rollout(started.id) == started

    other = sy.create_endpoint("other-ep")
    with pytest.raises(NotFound):  # another endpoint's rollout
        other.get_rollout(started.id)
    with pytest.raises(NotFound):
        ep.get_rollout("0" * 32)
    assert other.rollouts() == []
    other.delete()
    with pytest.raises(NotFound):  # an endpoint that is gone has no rollouts to list
        other.rollouts()
