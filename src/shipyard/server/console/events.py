"""Events: a project's topics, its subscriptions with their backlogs, the newest messages
and the dead letters, from the bus (``shipyard.events.bus``).

Topics, subscriptions and dead letters come from the bus's own functions; the counts per
subscription (waiting, leased, dead) and the newest messages are read here, in one read
transaction each, with aggregate queries over the bus's tables (the bus has no listing of
them: it hands messages out by leasing them, which a page must not do).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.events import bus
from shipyard.server.console.rendering import render
from shipyard.server.state import ServerState, server_state
from shipyard.store import Store
from shipyard.store.schema import (
    event_deliveries,
    event_messages,
    event_subscriptions,
    event_topics,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
State = Annotated[ServerState, Depends(server_state)]
PAGE = "/console/projects/{project}/events"
LIMITS = (25, 100, 500)
DEAD_SHOWN = 20  # dead letters per subscription
MAX_DATA = 300  # characters of a message's data shown


@router.get(PAGE)
def events_page(
    request: Request, project: str, state: State,
    topic: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=LIMITS[-1])] = LIMITS[0],
) -> HTMLResponse:
    store = state.store
    topics = bus.list_topics(store, project)
    subscriptions = bus.list_subscriptions(store, project)
    backlog = _backlog(store, project)
    per_topic = _topic_counts(store, project)
    messages = _recent(store, project, topic or None, limit + 1)
    dead = {s.name: bus.dead_letters(store, project, s.name, limit=DEAD_SHOWN)
            for s in subscriptions if backlog.get(s.id, {}).get(bus.DEAD)}
    return render(request, "events.html", {
        "section": "events", "topics": topics, "subscriptions": subscriptions,
        "backlog": backlog, "per_topic": per_topic,
        "messages": messages[:limit], "more": len(messages) > limit, "limit": limit,
        "next_limit": next((n for n in LIMITS if n > limit), None), "topic": topic,
        "dead": dead, "dead_shown": DEAD_SHOWN, "shown": _shown,
    })


def _backlog(store: Store, project: str) -> dict[str, dict[str, int]]:
    """Deliveries per subscription id and state (pending, leased, dead; acked ones are
    done and not counted)."""
    query = (select(event_deliveries.c.subscription_id, event_deliveries.c.state,
                    func.count().label("n"))
             .join(event_subscriptions,
                   event_subscriptions.c.id == event_deliveries.c.subscription_id)
             .where(event_subscriptions.c.project == project,
                    event_deliveries.c.state != bus.ACKED)
             .group_by(event_deliveries.c.subscription_id, event_deliveries.c.state))
    found: dict[str, dict[str, int]] = {}
    with store.read() as conn:
        for row in conn.execute(query):
            found.setdefault(row.subscription_id, {})[row.state] = int(row.n)
    return found


def _topic_counts(store: Store, project: str) -> dict[str, dict[str, Any]]:
    """Messages kept and the newest one's time, per topic id."""
    query = (select(event_messages.c.topic_id, func.count().label("n"),
                    func.max(event_messages.c.published_at).label("last"))
             .join(event_topics, event_topics.c.id == event_messages.c.topic_id)
             .where(event_topics.c.project == project)
             .group_by(event_messages.c.topic_id))
    with store.read() as conn:
        return {row.topic_id: {"messages": int(row.n), "last": row.last}
                for row in conn.execute(query)}


def _recent(store: Store, project: str, topic: str | None, limit: int
            ) -> list[dict[str, Any]]:
    query = (select(event_messages.c.id, event_messages.c.data, event_messages.c.attributes,
                    event_messages.c.ordering_key, event_messages.c.published_at,
                    event_messages.c.published_by, event_topics.c.name.label("topic"))
             .join(event_topics, event_topics.c.id == event_messages.c.topic_id)
             .where(event_topics.c.project == project)
             .order_by(event_messages.c.seq.desc()).limit(limit))
    if topic is not None:
        query = query.where(event_topics.c.name == topic)
    with store.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _shown(data: Any) -> str:
    """A message's data as compact JSON, cut to ``MAX_DATA`` characters."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= MAX_DATA else text[:MAX_DATA - 1] + "…"
