"""Triggers: "on a message of TOPIC whose data matches FILTER, run ACTION".

A trigger reads its own subscription (``trigger.<name>``, created with it in one
transaction), so it sees every message published to its topic after it was created, at
least once. For each message it acts on, one firing row keyed by (trigger, message id) —
the idempotency key — records what happened:

* a message delivered again after its firing is ``done`` (or ``skipped``) is acknowledged
  without acting again;
* within ``cooldown_seconds`` of the trigger's last firing a message is ``skipped``;
* a failing action is recorded ``failed`` and the message is nacked (one transaction):
  the subscription delivers it again after its backoff (10 s doubling to 600 s by default)
  and after ``max_attempts`` dead-letters it, with every attempt's error; the firing is
  then ``dead`` and the bus raises its alert (``message-dead-lettered``, an audit row, a
  warning on the ``shipyard.events.alerts`` logger). Built-in events carry their
  subject (the model, the endpoint) as ordering key, so a failing message holds back only
  later messages about the same subject, never the others.

Every action taken is audited (``events.trigger.fire``), next to the audit row of the
change it made. An action runs as the trigger's creator; a worker killed while an action
runs leaves its firing ``acting``, and the redelivered message acts again (at least once).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ShipyardError,
)
from shipyard.events import bus
from shipyard.events.acting import CreatorCannotAct, check_allowed
from shipyard.events.actions import check_action
from shipyard.events.automation import Trigger, TriggerFiring
from shipyard.events.models import Message
from shipyard.events.scheduler import Perform
from shipyard.ids import new_id
from shipyard.store import Store
from shipyard.store.projects import ensure_project
from shipyard.store.schema.events import event_deliveries, event_subscriptions
from shipyard.store.schema.events import event_trigger_firings as firings
from shipyard.store.schema.events import event_triggers as triggers
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = ["create_trigger", "delete_trigger", "get_trigger", "list_firings", "list_triggers",
           "matches", "pause_trigger", "process_triggers", "resume_trigger"]

PREFIX = "trigger."
MAX_NAME = 128 - len(PREFIX)
MAX_FILTER = 32
MAX_COOLDOWN = 30 * 86400


def check_filter(value: Any) -> dict[str, Any]:
    """``{key: value}`` (or ``{key: [values]}``, any of them): each key a field of the
    message data, dotted for nested fields."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_FILTER:
        raise InvalidArgument(f"filter must map at most {MAX_FILTER} fields of the event to "
                              "values ({'model': 'churn', 'severity': ['high', 'critical']})",
                              field="filter")
    clean: dict[str, Any] = {}
    for key, wanted in value.items():
        if not isinstance(key, str) or not key or len(key) > 128 or not all(
                part and (part.replace("_", "").replace("-", "").isalnum())
                for part in key.split(".")):
            raise InvalidArgument(f"filter key {str(key)[:80]!r} must be a field name, dotted "
                                  "for nested fields", field="filter")
        options = wanted if isinstance(wanted, list) else [wanted]
        if not options or len(options) > 100 or not all(
                o is None or isinstance(o, str | int | float | bool) for o in options):
            raise InvalidArgument(f"filter.{key} must be a string, number, boolean or null, "
                                  "or a list of them", field=f"filter.{key}")
        clean[key] = wanted
    return clean


def matches(filter_: Mapping[str, Any], data: Any) -> bool:
    """Does message ``data`` hold every field of ``filter_`` (one of the values, for a
    list)?"""
    for key, wanted in filter_.items():
        value: Any = data
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return False
            value = value[part]
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any((value == o and type(value) is type(o)) or (
                isinstance(value, int | float) and isinstance(o, int | float)
                and not isinstance(value, bool) and not isinstance(o, bool) and value == o)
                for o in options):
            return False
    return True


# -- managing triggers -----------------------------------------------------------------------


def create_trigger(store: Store, ctx: RequestContext, name: str, *, topic: str, action: Any,
                   filter: Mapping[str, Any] | None = None,
                   cooldown_seconds: int = 0, max_attempts: int = 5,
                   min_backoff_seconds: int = 10, max_backoff_seconds: int = 600,
                   paused: bool = False) -> Trigger:
    check_name(name, "name")
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"a trigger name has at most {MAX_NAME} characters",
                              field="name")
    check_name(topic, "topic")
    typed = check_action(action)
    check_allowed(ctx, typed)
    clean = check_filter(filter)
    if isinstance(cooldown_seconds, bool) or not isinstance(cooldown_seconds, int) or not \
            0 <= cooldown_seconds <= MAX_COOLDOWN:
        raise InvalidArgument(f"cooldown_seconds must be a whole number from 0 to "
                              f"{MAX_COOLDOWN}", field="cooldown_seconds")
    if not isinstance(paused, bool):
        raise InvalidArgument("paused must be true or false", field="paused")
    values = {k: bus._bounded(k, v) for k, v in (
        ("max_attempts", max_attempts), ("min_backoff_seconds", min_backoff_seconds),
        ("max_backoff_seconds", max_backoff_seconds))}
    if values["min_backoff_seconds"] > values["max_backoff_seconds"]:
        raise InvalidArgument("min_backoff_seconds must not exceed max_backoff_seconds",
                              field="min_backoff_seconds")

    def work(conn: Connection) -> Trigger:
        ensure_project(conn, ctx.project)
        if _row(conn, ctx.project, name, missing_ok=True) is not None:
            raise AlreadyExists(f"trigger {name!r} already exists", field="name")
        sub = bus.subscribe_in(conn, ctx, PREFIX + name, topic,
                               {**values, "ack_deadline_seconds": 600})
        now = utcnow()
        row = conn.execute(insert(triggers).values(
            id=new_id(), project=ctx.project, name=name, topic=topic, subscription_id=sub.id,
            filter=clean, action=typed.model_dump(mode="json"),
            cooldown_seconds=cooldown_seconds, paused=paused, last_fired_at=None,
            created_at=now, created_by=ctx.actor, created_token=ctx.token_id,
        ).returning(*triggers.c)).one()
        audit.record(conn, ctx, "events.trigger.create", f"triggers/{name}",
                     detail={"topic": topic, "filter": clean, "action": typed.type,
                             "cooldown_seconds": cooldown_seconds})
        return _trigger(row)

    return store.retry_write(work)


def get_trigger(store: Store, project: str, name: str) -> Trigger:
    check_name(name, "trigger")
    with store.read() as conn:
        return _trigger(_row(conn, project, name))


def list_triggers(store: Store, project: str, topic: str | None = None) -> list[Trigger]:
    query = select(triggers).where(triggers.c.project == project).order_by(triggers.c.name)
    if topic is not None:
        query = query.where(triggers.c.topic == check_name(topic, "topic"))
    with store.read() as conn:
        return [_trigger(r) for r in conn.execute(query).all()]


def pause_trigger(store: Store, ctx: RequestContext, name: str) -> Trigger:
    """Stop acting; messages wait in its subscription (for the topic's retention)."""
    return _set_paused(store, ctx, name, True)


def resume_trigger(store: Store, ctx: RequestContext, name: str) -> Trigger:
    return _set_paused(store, ctx, name, False)


def _set_paused(store: Store, ctx: RequestContext, name: str, paused: bool) -> Trigger:
    check_name(name, "trigger")

    def work(conn: Connection) -> Trigger:
        row = _row(conn, ctx.project, name)
        conn.execute(update(triggers).where(triggers.c.id == row.id).values(paused=paused))
        audit.record(conn, ctx, "events.trigger.pause" if paused else "events.trigger.resume",
                     f"triggers/{name}")
        return _trigger(_row(conn, ctx.project, name))

    return store.retry_write(work)


def delete_trigger(store: Store, ctx: RequestContext, name: str) -> None:
    """Delete a trigger, its firings and its subscription (with what it had not read)."""
    check_name(name, "trigger")

    def work(conn: Connection) -> None:
        row = _row(conn, ctx.project, name)
        conn.execute(delete(firings).where(firings.c.trigger_id == row.id))
        conn.execute(delete(triggers).where(triggers.c.id == row.id))
        conn.execute(delete(event_deliveries).where(
            event_deliveries.c.subscription_id == row.subscription_id))
        conn.execute(delete(event_subscriptions).where(
            event_subscriptions.c.id == row.subscription_id))
        audit.record(conn, ctx, "events.trigger.delete", f"triggers/{name}")

    store.retry_write(work)


def list_firings(store: Store, project: str, name: str, *, limit: int = 100
                 ) -> list[TriggerFiring]:
    """The trigger's latest firings, newest first."""
    check_name(name, "trigger")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidArgument("limit must be from 1 to 10000", field="limit")
    with store.read() as conn:
        row = _row(conn, project, name)
        found = conn.execute(select(firings).where(firings.c.trigger_id == row.id)
                             .order_by(firings.c.started_at.desc()).limit(limit)).all()
    return [TriggerFiring(trigger=name, idempotency_key=f.idempotency_key, state=f.state,
                          attempts=f.attempts, started_at=f.started_at,
                          finished_at=f.finished_at, result=f.result, error=f.error)
            for f in found]


# -- acting ----------------------------------------------------------------------------------


def process_triggers(store: Store, perform: Perform, *, max_messages: int = 10,
                     now: datetime | None = None) -> int:
    """Pull up to ``max_messages`` from every active trigger's subscription and act on
    them (``perform(ctx, action, context)`` runs an action); how many messages were
    handled."""
    with store.read() as conn:
        active = conn.execute(
            select(triggers, event_subscriptions.c.name.label("subscription_name"))
            .join(event_subscriptions, event_subscriptions.c.id == triggers.c.subscription_id)
            .where(triggers.c.paused.is_(False)).order_by(triggers.c.created_at)).all()
    handled = 0
    for row in active:
        try:
            messages = bus.pull(store, row.project, row.subscription_name,
                                max_messages=max_messages, now=now)
        except NotFound:  # deleted since
            continue
        for message in messages:
            _handle(store, perform, row, message, now)
            handled += 1
    return handled


def _handle(store: Store, perform: Perform, row: Any, message: Message,
            now: datetime | None) -> None:
    sub = row.subscription_name
    if not matches(row.filter or {}, message.data):
        bus.ack(store, row.project, sub, [message.lease_token], now=now)
        return
    ctx = RequestContext(project=row.project, actor=row.created_by or "trigger",
                         token_id=row.created_token, client=f"trigger:{row.name}")
    decision = store.retry_write(lambda conn: _begin(conn, row.id, message.id, now))
    if decision is None:  # done before, or cooling down
        bus.ack(store, row.project, sub, [message.lease_token], now=now)
        return
    firing_id = decision
    context = {"event": message.data, "trigger": row.name,
               "idempotency_key": f"trigger:{row.id}:{message.id}",
               "message": {"id": message.id, "topic": message.topic,
                           "published_at": message.published_at.isoformat(),
                           "attributes": message.attributes, "attempt": message.attempt}}
    refused = False
    try:
        result: dict[str, Any] | None = perform(ctx, check_action(row.action), context)
        error = None
    except CreatorCannotAct as exc:  # retrying cannot help: dead-lettered at once
        result, error, refused = None, exc.message, True
    except ShipyardError as exc:
        result, error = None, exc.message
    except Exception as exc:  # the action's own failure: recorded, retried, dead-lettered
        result, error = None, f"{type(exc).__name__}: {exc}"
    store.retry_write(lambda conn: _end(conn, ctx, row.name, firing_id, message, result,
                                        error, now, refused=refused))
    if error is None:
        bus.ack(store, row.project, sub, [message.lease_token], now=now)


def _begin(conn: Connection, trigger_id: str, key: str, now: datetime | None) -> str | None:
    """The firing id to act under, or None when this message must not act."""
    at = now or utcnow()
    lock = select(triggers).where(triggers.c.id == trigger_id)
    if conn.dialect.name != "sqlite":
        lock = lock.with_for_update()
    trigger = conn.execute(lock).one()
    firing = conn.execute(select(firings).where(
        firings.c.trigger_id == trigger_id, firings.c.idempotency_key == key)).first()
    if firing is not None:
        if firing.state in ("done", "skipped"):
            return None
        conn.execute(update(firings).where(firings.c.id == firing.id).values(
            state="acting", attempts=firing.attempts + 1, started_at=at))
        return str(firing.id)
    cooling = (trigger.cooldown_seconds and trigger.last_fired_at is not None
               and at - trigger.last_fired_at < timedelta(seconds=trigger.cooldown_seconds))
    firing_id = new_id()
    conn.execute(insert(firings).values(
        id=firing_id, trigger_id=trigger_id, idempotency_key=key,
        state="skipped" if cooling else "acting", attempts=0 if cooling else 1,
        started_at=at, finished_at=at if cooling else None,
        error=f"cooldown: fired less than {trigger.cooldown_seconds}s ago" if cooling
        else None))
    if cooling:
        return None
    conn.execute(update(triggers).where(triggers.c.id == trigger_id).values(last_fired_at=at))
    return firing_id


def _end(conn: Connection, ctx: RequestContext, name: str, firing_id: str, message: Message,
         result: dict[str, Any] | None, error: str | None, now: datetime | None, *,
         refused: bool = False) -> None:
    """Record the firing's outcome; a failure also gives the message back in the same
    transaction: ``failed`` (it comes back after the backoff) or, after the subscription's
    ``max_attempts``, ``dead`` (dead-lettered, with the alert the bus raises for it)."""
    state = "done"
    if error is not None:
        try:
            given_back = bus.nack_in(conn, ctx.project, PREFIX + name, message.lease_token,
                                     error=error[:1000], now=now, final=refused)
        except FailedPrecondition:  # the lease ran out meanwhile: delivered again anyway
            given_back = bus.PENDING
        state = "dead" if given_back == bus.DEAD else "failed"
    conn.execute(update(firings).where(firings.c.id == firing_id).values(
        state=state, finished_at=now or utcnow(), result=result, error=error))
    audit.record(conn, ctx, "events.trigger.fire", f"triggers/{name}",
                 outcome="denied" if refused else "error" if error else "ok",
                 detail={"message": message.id, "topic": message.topic,
                         "attempt": message.attempt, "result": result, "error": error,
                         **({"dead_lettered": True} if state == "dead" else {})})


# -- helpers ---------------------------------------------------------------------------------


def _row(conn: Connection, project: str, name: str, *, missing_ok: bool = False) -> Any:
    row = conn.execute(select(triggers).where(triggers.c.project == project,
                                              triggers.c.name == name)).first()
    if row is None and not missing_ok:
        raise NotFound(f"no trigger {name!r} in project {project!r}", field="trigger")
    return row


def _trigger(row: Any) -> Trigger:
    return Trigger(id=row.id, project=row.project, name=row.name, topic=row.topic,
                   subscription=PREFIX + row.name, filter=row.filter or {},
                   action=check_action(row.action), cooldown_seconds=row.cooldown_seconds,
                   paused=row.paused, last_fired_at=row.last_fired_at,
                   created_at=row.created_at, created_by=row.created_by)
