"""The event bus on SQLite and PostgreSQL, held to Pub/Sub's semantics: each subscription
its own copy, at-least-once under leases, exponential backoff from 10 s to 600 s, dead
letters after max_attempts with their history, ordering keys, seek, the outbox."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound, TooLarge
from shipyard.events import bus
from shipyard.store import Store
from shipyard.store.types import utcnow

CTX = RequestContext(project="default", actor="tester")
P = "default"


def test_each_subscription_gets_its_own_copy_of_later_messages(store: Store) -> None:
    bus.publish(store, CTX, "leads", {"n": 0})  # before any subscription: nobody gets it
    bus.create_subscription(store, CTX, "a", "leads")
    bus.create_subscription(store, CTX, "b", "leads")
    ids = [bus.publish(store, CTX, "leads", {"n": n}) for n in (1, 2)]
    for sub in ("a", "b"):
        got = bus.pull(store, P, sub, max_messages=10)
        assert [m.id for m in got] == ids and [m.data for m in got] == [{"n": 1}, {"n": 2}]
        assert all(m.attempt == 1 and m.topic == "leads" for m in got)
        assert bus.ack(store, P, sub, [m.lease_token for m in got]) == 2
        assert bus.pull(store, P, sub) == []


def test_an_expired_lease_is_delivered_again_and_its_old_token_is_void(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t", ack_deadline_seconds=30)
    bus.publish(store, CTX, "t", "hello")
    start = utcnow()
    (first,) = bus.pull(store, P, "s", now=start)
    assert bus.pull(store, P, "s", now=start + timedelta(seconds=29)) == []  # still leased
    (again,) = bus.pull(store, P, "s", now=start + timedelta(seconds=31))
    assert again.id == first.id and again.attempt == 2
    assert bus.ack(store, P, "s", [first.lease_token]) == 0  # redelivered since: void
    assert bus.ack(store, P, "s", [again.lease_token]) == 1


def test_nack_backs_off_exponentially_then_dead_letters_with_the_history(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t", max_attempts=3)  # backoff 10 s, 20 s
    bus.publish(store, CTX, "t", {"job": 1})
    now = utcnow()
    for attempt, wait in ((1, 10), (2, 20)):
        (m,) = bus.pull(store, P, "s", now=now)
        assert m.attempt == attempt
        assert bus.nack(store, P, "s", m.lease_token, error=f"boom {attempt}", now=now) == "pending"
        assert bus.pull(store, P, "s", now=now + timedelta(seconds=wait - 1)) == []
        now += timedelta(seconds=wait)
    (m,) = bus.pull(store, P, "s", now=now)
    assert m.attempt == 3
    assert bus.nack(store, P, "s", m.lease_token, error="boom 3", now=now) == "dead"
    assert bus.pull(store, P, "s", now=now + timedelta(days=1)) == []  # never again
    (dead,) = bus.dead_letters(store, P, "s")
    assert dead.data == {"job": 1} and dead.attempts == 3
    assert [h["outcome"] for h in dead.history] == ["nack: boom 1", "nack: boom 2",
                                                    "nack: boom 3"]


def test_backoff_doubles_from_10_to_at_most_600_seconds() -> None:
    assert [bus.backoff(n, 10, 600) for n in range(1, 9)] == [10, 20, 40, 80, 160, 320, 600,
                                                               600]


def test_a_lease_that_keeps_running_out_is_dead_lettered_too(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t", max_attempts=2, ack_deadline_seconds=5)
    bus.publish(store, CTX, "t", 1)
    now = utcnow()
    for _ in range(2):
        assert len(bus.pull(store, P, "s", now=now)) == 1
        now += timedelta(seconds=6)
    assert bus.pull(store, P, "s", now=now) == []
    (dead,) = bus.dead_letters(store, P, "s")
    assert [h["outcome"] for h in dead.history] == ["lease expired", "lease expired"]


def test_ordering_keys_hold_later_messages_of_a_key_but_never_other_keys(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t", max_attempts=2, min_backoff_seconds=0)
    k1, k2 = (bus.publish(store, CTX, "t", n, ordering_key="k") for n in (1, 2))
    j1 = bus.publish(store, CTX, "t", 3, ordering_key="j")
    free = bus.publish(store, CTX, "t", 4)
    got = bus.pull(store, P, "s", max_messages=10)
    assert [m.id for m in got] == [k1, j1, free]  # k2 waits for k1
    by_id = {m.id: m for m in got}
    bus.ack(store, P, "s", [by_id[j1].lease_token, by_id[free].lease_token])
    assert bus.nack(store, P, "s", by_id[k1].lease_token) == "pending"
    (retry,) = bus.pull(store, P, "s", max_messages=10)  # k1 again, still before k2
    assert retry.id == k1 and retry.attempt == 2
    assert bus.nack(store, P, "s", retry.lease_token) == "dead"
    (after,) = bus.pull(store, P, "s", max_messages=10)  # a dead k1 no longer holds k2
    assert after.id == k2


def test_the_outbox_commits_the_message_with_the_change_or_not_at_all(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t")

    def failing(conn: object) -> None:
        bus.publish_in(conn, CTX, "t", {"lost": True})  # type: ignore[arg-type]
        raise RuntimeError("the change fails after publishing")

    with pytest.raises(RuntimeError):
        store.retry_write(failing)
    assert bus.pull(store, P, "s") == []
    kept = store.retry_write(lambda conn: bus.publish_in(conn, CTX, "t", {"kept": True}))
    assert [m.id for m in bus.pull(store, P, "s")] == [kept]


def test_seek_replays_from_a_time_and_counts_earlier_ones_as_acked(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t")
    bus.publish(store, CTX, "t", "old")
    middle = utcnow()
    bus.publish(store, CTX, "t", "new")
    assert bus.ack(store, P, "s", [m.lease_token for m in bus.pull(store, P, "s")]) == 2
    assert bus.seek(store, CTX, "s", middle) == 1
    (again,) = bus.pull(store, P, "s")
    assert again.data == "new" and again.attempt == 1


def test_extend_lease_keeps_a_message_and_an_expired_one_cannot_be_extended(
        store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t", ack_deadline_seconds=10)
    bus.publish(store, CTX, "t", 1)
    now = utcnow()
    (m,) = bus.pull(store, P, "s", now=now)
    bus.extend_lease(store, P, "s", m.lease_token, 60, now=now + timedelta(seconds=5))
    assert bus.pull(store, P, "s", now=now + timedelta(seconds=30)) == []
    with pytest.raises(FailedPrecondition):
        bus.extend_lease(store, P, "s", m.lease_token, 60, now=now + timedelta(seconds=70))


def test_concurrent_pullers_never_get_the_same_message(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t")
    published = {bus.publish(store, CTX, "t", n) for n in range(60)}
    seen: list[str] = []
    lock = threading.Lock()

    def puller() -> None:
        while True:
            got = bus.pull(store, P, "s", max_messages=3)
            if not got:
                return
            with lock:
                seen.extend(m.id for m in got)
            bus.ack(store, P, "s", [m.lease_token for m in got])

    threads = [threading.Thread(target=puller) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(published)  # each once, none lost


def test_retention_drops_old_messages_with_their_copies(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t")
    bus.publish(store, CTX, "t", 1)
    assert bus.purge_expired(store, now=utcnow() + timedelta(days=8)) == 1
    assert bus.pull(store, P, "s") == []


@pytest.mark.parametrize(("call", "error", "field"), [
    (lambda s: bus.publish(s, CTX, "t", {1, 2}), InvalidArgument, "data"),
    (lambda s: bus.publish(s, CTX, "t", float("nan")), InvalidArgument, "data"),
    (lambda s: bus.publish(s, CTX, "t", "x" * 300_000), TooLarge, "data"),
    (lambda s: bus.publish(s, CTX, "../t", 1), InvalidArgument, "topic"),
    (lambda s: bus.publish(s, CTX, "t", 1, ordering_key=""), InvalidArgument, "ordering_key"),
    (lambda s: bus.publish(s, CTX, "t", 1, ordering_key="k\n"), InvalidArgument,
     "ordering_key"),
    (lambda s: bus.publish(s, CTX, "t", 1, attributes={"a": 1}), InvalidArgument,  # type: ignore[dict-item]
     "attributes.a"),
    (lambda s: bus.pull(s, P, "nope"), NotFound, "subscription"),
    (lambda s: bus.pull(s, P, "s", max_messages=0), InvalidArgument, "max_messages"),
    (lambda s: bus.pull(s, P, "s", max_messages=True), InvalidArgument, "max_messages"),
    (lambda s: bus.ack(s, P, "s", ["not-a-token"]), InvalidArgument, "lease_token"),
    (lambda s: bus.nack(s, P, "s", "0" * 32), InvalidArgument, "lease_token"),
    (lambda s: bus.nack(s, P, "s", "0" * 32 + ".1"), FailedPrecondition, "lease_token"),
    (lambda s: bus.create_subscription(s, CTX, "s2", "t", max_attempts=0), InvalidArgument,
     "max_attempts"),
    (lambda s: bus.create_subscription(s, CTX, "s2", "t", min_backoff_seconds=60,
                                       max_backoff_seconds=10), InvalidArgument,
     "min_backoff_seconds"),
    (lambda s: bus.create_subscription(s, CTX, "s", "t"), Exception, "name"),
])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
        store: Store, call: object, error: type[Exception], field: str) -> None:
    bus.create_subscription(store, CTX, "s", "t")
    with pytest.raises(error) as raised:
        call(store)  # type: ignore[operator]
    assert getattr(raised.value, "field", None) == field
    assert bus.pull(store, P, "s") == []  # nothing was published
