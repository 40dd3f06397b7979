"""``sy.enable_retraining``: the closed loop's two triggers, in local mode and through a real
server; bad input names the recipe's argument."""

from __future__ import annotations

from types import ModuleType

import pytest

from shipyard.errors import InvalidArgument


def test_enable_retraining_creates_the_two_triggers(sy: ModuleType) -> None:
    retrain, canary = sy.enable_retraining(
        endpoint="leads", monitor="leads-drift", pipeline="train-leads", model="lead-scorer",
        arguments={"alert": "{{ event.alert_id }}"}, canary_percent=20, after_requests=50)
    assert (retrain.name, retrain.topic, retrain.filter) == (
        "leads-retrain", "monitor-alert-raised", {"monitor": "leads-drift"})
    assert retrain.action == sy.actions.RunPipeline(
        pipeline="train-leads", arguments={"alert": "{{ event.alert_id }}"})
    assert (canary.name, canary.topic, canary.filter) == (
        "leads-canary", "model-version-registered", {"model": "lead-scorer"})
    assert canary.action == sy.actions.StartCanary(
        endpoint="leads", model="lead-scorer", percent=20, after_requests=50)
    assert canary.action.promote_alias == "production"
    assert {t.name for t in sy.list_triggers()} == {"leads-retrain", "leads-canary"}


def test_enable_retraining_names_the_bad_argument(sy: ModuleType) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"canary_percent": 0}, "canary_percent"), ({"after_requests": -1}, "after_requests"),
        ({"model": "a b"}, "model"), ({"pipeline": ""}, "pipeline")]
    for given, field in cases:
        values: dict[str, object] = {"endpoint": "leads", "monitor": "m", "pipeline": "p",
                                     "model": "lead-scorer", **given}
        with pytest.raises(InvalidArgument) as caught:
            sy.enable_retraining(**values)
        assert caught.value.field == field, given
    assert sy.list_triggers() == []
