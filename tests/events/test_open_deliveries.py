"""A pull finds the next messages through the partial index of open deliveries
(ix_event_deliveries_open, migration 0015), not by walking every delivery a subscription
ever had: acked and dead ones stay until retention, so without it the bus slowed down as
it was used (bench/events.py's rate fell by a quarter every thousand messages)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from shipyard.context import RequestContext
from shipyard.events import bus, delivery, waiting
from shipyard.store import Store

CTX = RequestContext(project="default", actor="tester")


def _plan(store: Store, statement: Any, params: dict[str, Any]) -> str:
    compiled = statement.compile(dialect=store.engine.dialect)
    values = {**compiled.construct_params(params), **params}
    with store.read() as conn:
        if store.is_sqlite:
            rows = conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}",
                tuple(values[name] for name in compiled.positiontup or [])).all()
            return "\n".join(str(row[-1]) for row in rows)
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: scans are cheap
        conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", {
            name: values[name] for name in compiled.params}).all()
        return "\n".join(str(row[0]) for row in rows)


def test_pull_reads_the_open_deliveries_only(store: Store) -> None:
    bus.create_subscription(store, CTX, "s", "t", min_backoff_seconds=0)
    for n in range(30):  # a history of acknowledged deliveries, then one open
        bus.publish(store, CTX, "t", n, ordering_key="k" if n % 2 else None)
        (message,) = bus.pull(store, "default", "s", max_messages=1)
        assert bus.ack(store, "default", "s", [message.lease_token]) == 1
    bus.publish(store, CTX, "t", "open", ordering_key="k")
    with store.read() as conn:
        sub_id = conn.execute(text("SELECT id FROM event_subscriptions")).scalar_one()
        at = conn.execute(text("SELECT max(published_at) FROM event_messages")).scalar_one()
    params = {"sub": sub_id, "at": str(at), "n": 10}

    plan = _plan(store, delivery._READY, params)
    assert "ix_event_deliveries_open" in plan, plan
    if store.is_sqlite:  # neither the query nor the ordering key's check walks the history
        assert "pk_event_deliveries" not in plan and "autoindex" not in plan, plan
    assert "ix_event_deliveries_open" in _plan(store, waiting._NEXT_DUE, {"sub": sub_id})

    # What the index serves is still right: the open message, and nothing once it is acked.
    (message,) = bus.pull(store, "default", "s", max_messages=10)
    assert message.data == "open"
    assert bus.ack(store, "default", "s", [message.lease_token]) == 1
    assert bus.pull(store, "default", "s") == []
