"""``sy.enable_retraining`` checks both actions before creating anything: bad input names
the recipe's argument (no session is needed to refuse it); it creates the loop's two
triggers (tests/quickstart drives them end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard as sy
from shipyard.errors import AlreadyExists, InvalidArgument
from shipyard.events.automation import retraining_triggers


@pytest.mark.parametrize(("given", "field"), [
    ({"canary_percent": 0}, "canary_percent"), ({"canary_percent": 100}, "canary_percent"),
    ({"after_requests": -1}, "after_requests"), ({"model": "a b"}, "model"),
    ({"pipeline": ""}, "pipeline"), ({"max_latency_ratio": 0}, "max_latency_ratio"),
    ({"promote_alias": "a/b"}, "promote_alias")])
def test_enable_retraining_names_the_bad_argument(given: dict[str, object], field: str
                                                  ) -> None:
    values: dict[str, object] = {"endpoint": "leads", "monitor": "m", "pipeline": "p",
                                 "model": "lead-scorer", **given}
    with pytest.raises(InvalidArgument) as caught:
        sy.enable_retraining(**values)
    assert caught.value.field == field
    assert "action." not in caught.value.message


def test_enable_retraining_creates_the_two_triggers(home: Path) -> None:
    retrain, canary = sy.enable_retraining(
        endpoint="leads", monitor="leads-monitor", pipeline="train-leads", model="scorer",
        arguments={"champion": "{{ event.version }}"}, canary_percent=10, after_requests=7)
    assert (retrain.name, retrain.topic, retrain.filter) == (
        "leads-retrain", "monitor-alert-raised", {"monitor": "leads-monitor"})
    assert retrain.action.type == "run_pipeline"
    assert retrain.action.pipeline == "train-leads"
    assert retrain.action.arguments == {"champion": "{{ event.version }}"}
    assert (canary.name, canary.topic, canary.filter) == (
        "leads-canary", "model-version-registered", {"model": "scorer"})
    assert canary.action.type == "start_canary"
    assert (canary.action.endpoint, canary.action.model, canary.action.version_from) == (
        "leads", "scorer", "event")
    assert (canary.action.percent, canary.action.after_requests) == (10, 7)
    assert {t.name for t in sy.list_triggers()} == {"leads-retrain", "leads-canary"}
    # The same recipe again names the trigger that exists; nothing else is created.
    with pytest.raises(AlreadyExists):
        sy.enable_retraining(endpoint="leads", monitor="leads-monitor",
                             pipeline="train-leads", model="scorer")
    assert len(sy.list_triggers()) == 2


def test_the_recipe_checked_without_creating_anything() -> None:
    retrain, canary = retraining_triggers(endpoint="leads", monitor="m", pipeline="p",
                                          model="scorer", name="loop")
    assert (retrain.name, canary.name) == ("loop-retrain", "loop-canary")
    assert canary.action["percent"] == 10 and canary.action["after_requests"] == 100
    assert canary.action["promote_alias"] == "production"
