"""``sy.enable_retraining`` checks both actions before creating anything: bad input names
the recipe's argument (no session is needed to refuse it). Creating the triggers:
tests/contract/test_retraining.py; driving them end to end: tests/quickstart."""

from __future__ import annotations

import pytest

import shipyard as sy
from shipyard.errors import InvalidArgument
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


def test_the_recipe_checked_without_creating_anything() -> None:
    retrain, canary = retraining_triggers(endpoint="leads", monitor="m", pipeline="p",
                                          model="scorer", name="loop")
    assert (retrain.name, canary.name) == ("loop-retrain", "loop-canary")
    assert canary.action["percent"] == 10 and canary.action["after_requests"] == 100
    assert canary.action["promote_alias"] == "production"
