"""Events: a project's schedules (with their next runs and latest ticks) and triggers
(with their latest firings), from ``events.scheduler`` and ``events.triggers``; its topics,
its subscriptions with their backlogs, the newest messages and the dead letters, from the
bus (``shipyard.events.bus``). An action is shown by its type and what it names (pipeline,
endpoint, model, topic, a webhook's host and path), never its headers or body.

Topics, subscriptions and dead letters come from the bus's own functions; the counts per
subscription (waiting, leased, dead) and the newest messages are read here, in one read
transaction each, with aggregate queries over the bus's tables (the bus has no listing of
them: it hands messages out by leasing them, which a page must not do).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shipyard.errors import InvalidArgument, ShipyardError
from shipyard.events import builtin, bus, scheduler, triggers
from shipyard.events.automation import Schedule
from shipyard.pipelines import list_pipeline_runs
from shipyard.security.roles import Permission
from shipyard.server.api import params
from shipyard.server.console.forms import checked_form, json_field, text
from shipyard.server.console.rendering import render
from shipyard.server.console.session import may
from shipyard.server.state import ServerState, request_context, server_state
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
NEXT_RUNS = 3  # upcoming ticks shown per schedule
MAX_AUTOMATIONS = 100  # schedules and triggers shown (each reads its latest tick/firing)


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
    schedules = scheduler.list_schedules(store, project)[:MAX_AUTOMATIONS]
    found_triggers = triggers.list_triggers(store, project)[:MAX_AUTOMATIONS]
    return render(request, "events.html", {
        "section": "events",
        "schedules": schedules,
        "next_runs": {s.name: _next_runs(s) for s in schedules},
        "ticks": {s.name: scheduler.list_ticks(store, project, s.name, limit=1)
                  for s in schedules},
        "triggers": found_triggers,
        "firings": {t.name: triggers.list_firings(store, project, t.name, limit=1)
                    for t in found_triggers},
        "action": _action, "topics": topics, "subscriptions": subscriptions,
        "backlog": backlog, "per_topic": per_topic,
        "messages": messages[:limit], "more": len(messages) > limit, "limit": limit,
        "next_limit": next((n for n in LIMITS if n > limit), None), "topic": topic,
        "dead": dead, "dead_shown": DEAD_SHOWN, "shown": _shown,
        "may_write": may(request, Permission.WRITE),
        "known_topics": sorted({*builtin.BUILTIN_TOPICS, *(t.name for t in topics)}),
        "example_action": _example_action(store, project),
    })


def _example_action(store: Store, project: str) -> str:
    """The create forms' starting action: run the pipeline that last succeeded again."""
    newest = (list_pipeline_runs(store, project, state="SUCCEEDED", limit=1)
              or list_pipeline_runs(store, project, limit=1))
    name = newest[0].pipeline_name if newest else "my-pipeline"
    return json.dumps({"type": "run_pipeline", "pipeline": name})


def _back(project: str, card: str) -> RedirectResponse:
    return RedirectResponse(f"/console/projects/{project}/events#{card}", status_code=303)


@router.post(PAGE + "/schedules")
async def create_schedule(request: Request, project: str, state: State) -> Response:
    """The create form, as ``POST .../events/schedules`` (the role editor)."""
    form = await checked_form(request)
    await run_in_threadpool(
        scheduler.create_schedule, state.store, request_context(request),
        text(form, "name", max_length=128), cron=text(form, "cron", max_length=128),
        timezone=text(form, "timezone", max_length=64, required=False, default="UTC"),
        action=json_field(form, "action"))
    return _back(project, "schedules-card")


@router.post(PAGE + "/schedules/{name}/pause")
async def pause_schedule(request: Request, project: str, name: params.Name, state: State
                         ) -> Response:
    await checked_form(request)
    await run_in_threadpool(scheduler.pause_schedule, state.store, request_context(request),
                            name)
    return _back(project, "schedules-card")


@router.post(PAGE + "/schedules/{name}/resume")
async def resume_schedule(request: Request, project: str, name: params.Name, state: State
                          ) -> Response:
    await checked_form(request)
    await run_in_threadpool(scheduler.resume_schedule, state.store, request_context(request),
                            name)
    return _back(project, "schedules-card")


@router.post(PAGE + "/triggers")
async def create_trigger(request: Request, project: str, state: State) -> Response:
    """The create form, as ``POST .../events/triggers`` (the role editor)."""
    form = await checked_form(request)
    cooldown = text(form, "cooldown_seconds", max_length=10, required=False, default="0")
    if not cooldown.isdigit():
        raise InvalidArgument(f"cooldown_seconds must be a whole number, got {cooldown!r}",
                              field="cooldown_seconds")
    await run_in_threadpool(
        partial(triggers.create_trigger, state.store, request_context(request),
                text(form, "name", max_length=triggers.MAX_NAME),
                topic=text(form, "topic", max_length=128),
                action=json_field(form, "action"),
                filter=json_field(form, "filter", required=False),
                cooldown_seconds=int(cooldown)))
    return _back(project, "triggers-card")


@router.post(PAGE + "/triggers/{name}/pause")
async def disable_trigger(request: Request, project: str, name: params.Name, state: State
                          ) -> Response:
    await checked_form(request)
    await run_in_threadpool(triggers.pause_trigger, state.store, request_context(request),
                            name)
    return _back(project, "triggers-card")


@router.post(PAGE + "/triggers/{name}/resume")
async def enable_trigger(request: Request, project: str, name: params.Name, state: State
                         ) -> Response:
    await checked_form(request)
    await run_in_threadpool(triggers.resume_trigger, state.store, request_context(request),
                            name)
    return _back(project, "triggers-card")


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


def _next_runs(schedule: Schedule) -> list[datetime]:
    """The schedule's next tick and the ones after it (none while it is paused)."""
    if schedule.paused:
        return []
    runs = [schedule.next_tick_at]
    try:
        zone = ZoneInfo(schedule.timezone)
        while len(runs) < NEXT_RUNS:
            runs.append(scheduler.next_tick(schedule.cron, zone, runs[-1]))
    except (ShipyardError, ValueError, KeyError):
        pass  # a cron or zone this release cannot read: its stored next tick only
    return runs


def _action(action: Any) -> str:
    """What an action does, in a few words, without its secrets (headers, bodies)."""
    data = action.model_dump(mode="json") if hasattr(action, "model_dump") else dict(action)
    kind = str(data.get("type", "?"))
    if kind == "webhook":
        url = urlsplit(str(data.get("url", "")))
        return f"webhook {url.scheme}://{url.hostname or ''}{url.path}"
    if kind == "run_pipeline":
        return f"run pipeline {data.get('pipeline', '')}"
    if kind == "publish":
        return f"publish to {data.get('topic', '')}"
    named = [f"{key} {data[key]}" for key in ("endpoint", "model", "alias", "version",
                                              "function")
             if data.get(key) not in (None, "")]
    return " · ".join([kind.replace("_", " "), *named])


def _shown(data: Any) -> str:
    """A message's data as compact JSON, cut to ``MAX_DATA`` characters."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= MAX_DATA else text[:MAX_DATA - 1] + "…"
