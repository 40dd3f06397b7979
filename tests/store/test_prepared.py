"""``Store.prepared``: a Core statement compiled once and run on ``driver_write``'s cursor
writes and reads exactly what the same statement through SQLAlchemy would (UTC timestamps,
JSON, expanding IN lists), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select

from shipyard.store import Store
from shipyard.store.schema import event_messages, event_topics

_TOPIC = insert(event_topics).values(
    id=bindparam("id"), project=bindparam("project"), name=bindparam("name"),
    retention_seconds=bindparam("retention"),
    created_at=bindparam("created_at", type_=event_topics.c.created_at.type),
    created_by=bindparam("by"))
_MESSAGE = insert(event_messages).values(
    {c.name: bindparam(c.name, type_=c.type) for c in event_messages.c if c.name != "seq"}
).returning(event_messages.c.seq)
_BY_SEQ = select(event_messages.c.seq, event_messages.c.data,
                 event_messages.c.published_at).where(
    event_messages.c.seq.in_(bindparam("seqs", expanding=True))).order_by(
    event_messages.c.seq)


def test_prepared_statements_round_trip_through_the_column_types(store: Store) -> None:
    berlin = timezone(timedelta(hours=2))
    created = datetime(2026, 3, 4, 12, 30, 15, 123456, tzinfo=berlin)  # 10:30:15 UTC

    def write(cursor: Any) -> list[int]:
        store.prepared(_TOPIC).execute(cursor, {
            "id": "t" * 32, "project": "p1", "name": "leads", "retention": 60,
            "created_at": created, "by": "alice"})
        seqs = []
        for n in (1, 2, 3):
            statement = store.prepared(_MESSAGE)
            ((seq,),) = statement.rows(statement.execute(cursor, {
                "id": f"{n:032d}", "topic_id": "t" * 32, "data": {"n": n, "tags": ["a", n]},
                "attributes": {"k": "v"}, "ordering_key": None, "published_at": created,
                "published_by": "alice"}))
            seqs.append(seq)
        return seqs

    seqs = store.driver_write(write)
    with store.read() as conn:  # what SQLAlchemy reads back from what the driver wrote
        topic = conn.execute(select(event_topics)).one()
        messages = conn.execute(select(event_messages).order_by(event_messages.c.seq)).all()
    assert topic.created_at == datetime(2026, 3, 4, 10, 30, 15, 123456, tzinfo=UTC)
    assert [m.data for m in messages] == [{"n": n, "tags": ["a", n]} for n in (1, 2, 3)]
    assert [m.attributes for m in messages] == [{"k": "v"}] * 3

    def read(cursor: Any) -> tuple[list[Any], list[Any]]:
        statement = store.prepared(_BY_SEQ)
        two = statement.rows(statement.execute(cursor, {"seqs": [seqs[2], seqs[0]]}))
        one = statement.rows(statement.execute(cursor, {"seqs": [seqs[1]]}))
        return two, one

    two, one = store.driver_write(read)
    at = datetime(2026, 3, 4, 10, 30, 15, 123456, tzinfo=UTC)
    assert two == [(seqs[0], {"n": 1, "tags": ["a", 1]}, at),
                   (seqs[2], {"n": 3, "tags": ["a", 3]}, at)]
    assert one == [(seqs[1], {"n": 2, "tags": ["a", 2]}, at)]
    assert store.prepared(_BY_SEQ) is store.prepared(_BY_SEQ)  # compiled once

    with pytest.raises(ValueError, match="seqs"):
        store.driver_write(lambda cursor: store.prepared(_BY_SEQ).execute(
            cursor, {"seqs": []}))
