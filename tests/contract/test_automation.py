"""Schedules and triggers through the public SDK, in local mode and through a real server:
the same values and the same errors, naming the field."""

from __future__ import annotations

from types import ModuleType

import pytest

from shipyard.errors import AlreadyExists, InvalidArgument, NotFound


def test_schedules_create_list_pause_resume_delete(sy: ModuleType) -> None:
    made = sy.create_schedule(
        "nightly", cron="0 2 * * *", timezone="Europe/Berlin", misfire="catch_up(3)",
        action=sy.actions.Promote(model="churn", alias="production", version=3))
    assert (made.cron, made.timezone, made.misfire, made.catch_up_max) == (
        "0 2 * * *", "Europe/Berlin", "catch_up", 3)
    assert made.action == sy.actions.Promote(model="churn", alias="production", version=3)
    assert made.next_tick_at.hour in (0, 1) and made.next_tick_at.minute == 0  # 02:00 local
    assert [s.name for s in sy.list_schedules()] == ["nightly"]
    assert sy.pause_schedule("nightly").paused is True
    assert sy.resume_schedule("nightly").paused is False
    assert sy.schedule_ticks("nightly") == []
    with pytest.raises(AlreadyExists):
        sy.create_schedule("nightly", cron="0 2 * * *", action=sy.actions.Publish(topic="t"))
    sy.delete_schedule("nightly")
    with pytest.raises(NotFound):
        sy.get_schedule("nightly")


def test_bad_schedules_are_refused_naming_the_field(sy: ModuleType) -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"cron": "0 2 * *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"misfire": "later"}, "misfire"),
        ({"action": {"type": "publish", "topic": "t", "priority": 1}}, "action.priority"),
        ({"action": {"type": "teleport"}}, "action.type"),
    ]
    for arguments, field in cases:
        values: dict[str, object] = {"cron": "* * * * *",
                                     "action": {"type": "publish", "topic": "t"}, **arguments}
        with pytest.raises(InvalidArgument) as caught:
            sy.create_schedule("s", **values)
        assert caught.value.field == field, arguments
    assert sy.list_schedules() == []


def test_triggers_create_list_pause_delete(sy: ModuleType) -> None:
    action = sy.actions.Deploy(endpoint="leads", model="{{ event.model }}",
                               version="{{ event.version }}", traffic_percentage=10)
    made = sy.create_trigger("canary", topic="model-version-registered",
                             filter={"model": ["churn", "fraud"]}, action=action,
                             cooldown_seconds=600)
    assert made.subscription == "trigger.canary" and made.action == action
    assert [t.name for t in sy.list_triggers(topic="model-version-registered")] == ["canary"]
    assert sy.list_triggers(topic="other") == []
    assert sy.pause_trigger("canary").paused is True
    assert sy.resume_trigger("canary").paused is False
    assert sy.trigger_firings("canary") == []
    assert "trigger.canary" in {s.name for s in sy.list_subscriptions()}
    with pytest.raises(InvalidArgument) as caught:
        sy.create_trigger("bad", topic="t", filter={"model": {"a": 1}}, action=action)
    assert caught.value.field == "filter.model"
    sy.delete_trigger("canary")
    with pytest.raises(NotFound):
        sy.get_trigger("canary")
    assert "trigger.canary" not in {s.name for s in sy.list_subscriptions()}
