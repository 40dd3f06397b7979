"""Schedules and triggers act as their creator: once the creator's token is revoked, the
creator disabled or their role in the project taken away, a rule created through the
server (with a token) acts no more. A trigger's message is dead-lettered at once, saying
why (no retries: they cannot help), a schedule's tick is recorded failed, and both are
audited with outcome ``denied``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.events import actions, bus, scheduler, triggers
from shipyard.events.acting import perform
from shipyard.security import authn, authz, principals
from shipyard.store import Store
from shipyard.store.types import utcnow

P = "default"
ADMIN = RequestContext(project=P, actor="admin")


def _alice(store: Store) -> RequestContext:
    principals.create_principal(store, ADMIN, "alice")
    authz.grant(store, ADMIN, "alice", P, "editor")
    token = authn.create_token(store, ADMIN, "alice", name="rules")
    return RequestContext(project=P, actor="alice", token_id=token.id)


def _take_away(store: Store, how: str, alice: RequestContext) -> str:
    """Take alice's power away; what the refusal must say."""
    if how == "revoked":
        authn.revoke_token(store, ADMIN, alice.token_id or "")
        return "was revoked"
    if how == "disabled":
        principals.disable_principal(store, ADMIN, "alice")
        return "who is disabled"
    authz.revoke_grant(store, ADMIN, "alice", P)
    return "may no longer change project 'default'"


def _run(store: Store) -> Any:
    def run(ctx: RequestContext, action: Any, context: dict[str, Any]) -> dict[str, Any]:
        return perform(store, None, None, ctx, action, context)

    return run


def _seen(store: Store) -> list[Any]:
    got = bus.pull(store, P, "seen", max_messages=100)
    bus.ack(store, P, "seen", [m.lease_token for m in got])
    return [m.data for m in got]


@pytest.mark.parametrize("how", ["revoked", "disabled", "ungranted"])
def test_a_trigger_stops_acting_for_a_creator_who_lost_their_power(store: Store, how: str
                                                                   ) -> None:
    alice = _alice(store)
    bus.create_subscription(store, ADMIN, "seen", "out")
    bus.create_subscription(store, ADMIN, "ops", "message-dead-lettered")
    triggers.create_trigger(store, alice, "relay", topic="in", cooldown_seconds=0,
                            action=actions.Publish(topic="out", data="{{ event.n }}"))
    bus.publish(store, ADMIN, "in", {"n": 1})
    assert triggers.process_triggers(store, _run(store)) == 1
    assert _seen(store) == [1]  # alice may: it acts as her

    reason = _take_away(store, how, alice)
    bus.publish(store, ADMIN, "in", {"n": 2})
    assert triggers.process_triggers(store, _run(store)) == 1
    assert _seen(store) == []  # refused
    (dead,) = bus.dead_letters(store, P, "trigger.relay")
    assert dead.data == {"n": 2} and dead.attempts == 1  # at once, not after 5 attempts
    assert reason in dead.history[-1]["outcome"] and "'alice'" in dead.history[-1]["outcome"]
    states = sorted(f.state for f in triggers.list_firings(store, P, "relay"))
    assert states == ["dead", "done"]
    (denied,) = audit.query(store, action="events.trigger.fire", outcome="denied")
    assert denied["actor"] == "alice" and reason in denied["detail"]["error"]
    (alert,) = bus.pull(store, P, "ops")
    assert alert.data["subscription"] == "trigger.relay"
    assert triggers.process_triggers(store, _run(store), now=utcnow() + timedelta(hours=1)) == 0


@pytest.mark.parametrize("how", ["revoked", "ungranted"])
def test_a_schedule_stops_acting_for_a_creator_who_lost_their_power(store: Store, how: str
                                                                    ) -> None:
    alice = _alice(store)
    bus.create_subscription(store, ADMIN, "seen", "out")
    start = utcnow().replace(second=0, microsecond=0)
    scheduler.create_schedule(store, alice, "minutely", cron="* * * * *",
                              action=actions.Publish(topic="out", data="{{ tick }}"), now=start)
    first = start + timedelta(minutes=1)
    assert scheduler.fire_due(store, "w", _run(store), now=first + timedelta(seconds=1)) == 1
    assert _seen(store) == [first.isoformat()]

    reason = _take_away(store, how, alice)
    second = first + timedelta(minutes=1)
    assert scheduler.fire_due(store, "w", _run(store), now=second + timedelta(seconds=1)) == 1
    assert _seen(store) == []
    latest = scheduler.list_ticks(store, P, "minutely")[0]
    assert latest.tick_at == second and latest.state == "failed"
    assert (latest.error or "").startswith("refused: ") and reason in (latest.error or "")
    (denied,) = audit.query(store, action="events.schedule.fire", outcome="denied")
    assert denied["actor"] == "alice"


def test_a_rule_created_in_local_mode_acts_as_the_local_user(store: Store) -> None:
    local = RequestContext(project=P, actor="someone")  # no token: local mode
    bus.create_subscription(store, local, "seen", "out")
    triggers.create_trigger(store, local, "relay", topic="in",
                            action=actions.Publish(topic="out", data="{{ event.n }}"))
    bus.publish(store, local, "in", {"n": 1})
    assert triggers.process_triggers(store, _run(store)) == 1
    assert _seen(store) == [1]
