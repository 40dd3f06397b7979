"""Events through the public SDK, in local mode and through a real server: the same
messages, the same acknowledgements and the same errors."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType

import pytest

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound


def test_publish_subscribe_pull_ack_nack_and_dead_letters(sy: ModuleType) -> None:
    before = sy.publish("retrain-requests", {"reason": "nobody hears this"})
    sub = sy.subscribe("retrain-requests", name="trainer", max_attempts=2,
                       min_backoff_seconds=0)
    assert sy.subscribe("retrain-requests", name="trainer").name == "trainer"  # idempotent
    first = sy.publish("retrain-requests", {"reason": "manual"}, attributes={"by": "ops"})
    second = sy.publish("retrain-requests", {"reason": "drift"}, ordering_key="lead")
    assert before != first != second

    got = sub.pull(max_messages=10)
    assert [m.id for m in got] == [first, second]
    assert got[0].data == {"reason": "manual"} and got[0].attributes == {"by": "ops"}
    assert got[1].ordering_key == "lead" and all(m.attempt == 1 for m in got)
    assert got[0].ack() is True and got[0].ack() is False  # twice: the second is void
    assert got[1].nack("not now") == "pending"
    (again,) = sub.pull()
    assert again.id == second and again.attempt == 2
    assert again.nack("still not") == "dead"
    assert sub.pull() == []
    (dead,) = sub.dead_letters()
    assert dead.id == second and dead.attempts == 2
    assert [h["outcome"] for h in dead.history] == ["nack: not now", "nack: still not"]

    assert {t.name for t in sy.list_topics()} == {"retrain-requests"}
    assert [s.name for s in sy.list_subscriptions()] == ["trainer"]
    assert sub.seek(datetime(2000, 1, 1, tzinfo=UTC)) == 2  # both published after it
    assert {m.id for m in sub.pull()} == {first, second}


def test_bad_input_names_the_field_in_both_modes(sy: ModuleType) -> None:
    with pytest.raises(InvalidArgument) as data:
        sy.publish("t", {"when": datetime.now(UTC)})
    assert data.value.field == "data"
    with pytest.raises(InvalidArgument) as topic:
        sy.publish("../etc", 1)
    assert topic.value.field == "topic"
    with pytest.raises(InvalidArgument) as attempts:
        sy.subscribe("t", name="s", max_attempts=0)
    assert attempts.value.field == "max_attempts"
    with pytest.raises(NotFound):
        sy.dead_letters("nope")
    sub = sy.subscribe("t", name="s")
    with pytest.raises(FailedPrecondition) as other:
        sy.subscribe("u", name="s")
    assert other.value.field == "name"
    with pytest.raises(InvalidArgument) as many:
        sub.pull(max_messages=0)
    assert many.value.field == "max_messages"
