"""``sy.enable_retraining``: the closed loop's two triggers, in local mode and through a real
server (bad input: tests/events/test_retraining_recipe.py)."""

from __future__ import annotations

from types import ModuleType


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
