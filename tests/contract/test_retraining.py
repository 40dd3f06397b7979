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


def test_enable_retraining_passes_the_error_rate_criteria(sy: ModuleType) -> None:
    _, canary = sy.enable_retraining(
        endpoint="leads", monitor="leads-drift", pipeline="train-leads", model="lead-scorer",
        error_rate_alpha=0.2, max_error_rate_increase=0.05)
    assert (canary.action.error_rate_alpha, canary.action.max_error_rate_increase) == (
        0.2, 0.05)
    stored = sy.get_trigger("leads-canary").action
    assert (stored.error_rate_alpha, stored.max_error_rate_increase) == (0.2, 0.05)
    # The defaults: level 0.05, no margin.
    _, plain = sy.enable_retraining(endpoint="leads", monitor="m", pipeline="p",
                                    model="lead-scorer", name="plain")
    assert (plain.action.error_rate_alpha, plain.action.max_error_rate_increase) == (
        0.05, 0.0)


def test_bad_error_rate_criteria_name_the_field(sy: ModuleType) -> None:
    import pytest

    from shipyard.errors import InvalidArgument
    from shipyard.sdk import session

    for given, field in (({"error_rate_alpha": 0}, "error_rate_alpha"),
                         ({"error_rate_alpha": 0.9}, "error_rate_alpha"),
                         ({"error_rate_alpha": "0.1"}, "error_rate_alpha"),
                         ({"max_error_rate_increase": -0.5}, "max_error_rate_increase"),
                         ({"max_error_rate_increase": 2}, "max_error_rate_increase")):
        with pytest.raises(InvalidArgument) as recipe:
            sy.enable_retraining(endpoint="leads", monitor="m", pipeline="p",
                                 model="lead-scorer", **given)
        assert recipe.value.field == field and field in recipe.value.message
        # The same action as JSON, as REST and the CLI take it: refused naming the field.
        with pytest.raises(InvalidArgument) as action:
            sy.create_trigger("t", topic="model-version-registered",
                              action={"type": "start_canary", "endpoint": "leads",
                                      "model": "lead-scorer", **given})
        assert action.value.field == f"action.{field}"
        port = session.current().automation
        if hasattr(port, "_c"):  # the server refuses it too, not only the client
            with pytest.raises(InvalidArgument) as served:
                port._c.json("POST", port._path("triggers"), json={
                    "name": "t", "topic": "model-version-registered",
                    "action": {"type": "start_canary", "endpoint": "leads",
                               "model": "lead-scorer", **given}})
            assert served.value.field == f"action.{field}"
    assert sy.list_triggers() == []
