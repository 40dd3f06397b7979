"""Schedules: an action (``events.actions``) run on a cron in a time zone.

Cron arithmetic is ``croniter``'s, in the schedule's time zone (``zoneinfo``), so a daily
``0 9 * * *`` in ``Europe/Berlin`` fires at 09:00 local time in winter and in summer. When
clocks go forward, a wall time that does not exist fires at the first time after it
(``30 2 * * *`` fires at 03:00 that day); when they go back, a wall time that happens
twice fires once, the first time.

A worker (``fire_due``) claims a schedule whose ``next_tick_at`` has come (on PostgreSQL
with ``FOR UPDATE SKIP LOCKED``, on SQLite in the write transaction), writes one row per
tick it fires and moves ``next_tick_at`` past now, in one transaction; then it runs the
actions and records each outcome. The unique key (schedule, tick time) of the tick rows
means no tick is ever handled twice, however many workers run.

Ticks missed while no worker ran are handled by the misfire policy: ``skip`` (fire only a
tick that is at most ``MISFIRE_GRACE`` late), ``run_once`` (fire the latest missed tick
once) or ``catch_up(n)`` (fire the latest n, oldest first). ``max_concurrent`` caps the
actions in flight (running, or a pipeline run they queued that has not ended); a tick
beyond the cap is recorded ``skipped``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, InvalidArgument, NotFound, ShipyardError
from shipyard.events.acting import CreatorCannotAct, check_allowed
from shipyard.events.actions import check_action
from shipyard.events.automation import Schedule, ScheduleTick
from shipyard.ids import new_id
from shipyard.store import Store
from shipyard.store.projects import ensure_project
from shipyard.store.schema.events import event_schedule_ticks as ticks
from shipyard.store.schema.events import event_schedules as schedules
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = [
    "MISFIRE_GRACE", "create_schedule", "delete_schedule", "fire_due", "get_schedule",
    "list_schedules", "list_ticks", "next_tick", "parse_misfire", "pause_schedule",
    "resume_schedule",
]

MISFIRE_GRACE = timedelta(seconds=60)  # later than this, a tick counts as missed
# A tick claimed longer ago than this and not started: its worker died, another claims it.
CLAIM_LEASE = timedelta(seconds=60)
# A tick acting longer than this: its worker died while acting; failed, not counted in flight.
STALE_CLAIM = timedelta(minutes=15)
REFUSED = "refused: "  # a tick's error when its schedule's creator may no longer act
MAX_CATCH_UP = 1000
MAX_CONCURRENT = 1000
_MISFIRE = re.compile(r"(skip|run_once|catch_up)(?:\((\d{1,4})\))?")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,\-?LW#]{1,64}")


# -- checks and cron arithmetic --------------------------------------------------------------


def check_cron(cron: Any) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week), or
    ``InvalidArgument`` naming ``cron``."""
    fields = cron.split() if isinstance(cron, str) else []
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields) or not \
            croniter.is_valid(" ".join(fields)):
        raise InvalidArgument(f"cron {str(cron)[:80]!r} is not a cron expression: five fields, "
                              "minute hour day-of-month month day-of-week ('0 9 * * 1-5')",
                              field="cron")
    return " ".join(fields)


def check_timezone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64 or ".." in name \
            or name.startswith("/"):
        raise InvalidArgument(f"timezone {str(name)[:80]!r} is not an IANA time zone name "
                              "('UTC', 'Europe/Berlin')", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgument(f"unknown timezone {name[:64]!r}: use an IANA name ('UTC', "
                              "'Europe/Berlin', 'America/New_York')", field="timezone") from None


def parse_misfire(misfire: Any) -> tuple[str, int]:
    """``skip``, ``run_once``, ``catch_up`` (10) or ``catch_up(n)`` as (policy, n)."""
    found = _MISFIRE.fullmatch(misfire) if isinstance(misfire, str) else None
    if found is None or (found.group(2) and found.group(1) != "catch_up"):
        raise InvalidArgument(f"misfire must be 'skip', 'run_once' or 'catch_up(n)', got "
                              f"{str(misfire)[:40]!r}", field="misfire")
    n = int(found.group(2) or 10) if found.group(1) == "catch_up" else 1
    if not 1 <= n <= MAX_CATCH_UP:
        raise InvalidArgument(f"catch_up(n) takes n from 1 to {MAX_CATCH_UP}", field="misfire")
    return found.group(1), n


def next_tick(cron: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first tick of ``cron`` in ``zone`` strictly after ``after``, in UTC."""
    at = after.astimezone(zone)
    while True:
        local: datetime = croniter(cron, at).get_next(datetime)
        tick = local.astimezone(UTC)
        first = local.replace(fold=0).astimezone(UTC)
        if first < tick and first.astimezone(zone).replace(tzinfo=None) == \
                local.replace(tzinfo=None):
            at = local  # the second time a wall time happens (clocks went back): once only
            continue
        return tick


def _latest_ticks(cron: str, zone: ZoneInfo, since: datetime, now: datetime, n: int
                  ) -> list[datetime]:
    """Up to ``n`` ticks in [since, now], the latest ones, oldest first."""
    found: list[datetime] = []
    at = (now + timedelta(seconds=1)).astimezone(zone)
    iterator = croniter(cron, at)
    while len(found) < n:
        local: datetime = iterator.get_prev(datetime)
        tick = local.astimezone(UTC)
        if tick < since:
            break
        if tick <= now and (not found or tick != found[-1]):
            first = local.replace(fold=0).astimezone(UTC)
            if not (first < tick and first.astimezone(zone).replace(tzinfo=None)
                    == local.replace(tzinfo=None)):
                found.append(tick)
    return found[::-1]


# -- managing schedules ----------------------------------------------------------------------


def create_schedule(store: Store, ctx: RequestContext, name: str, *, cron: str,
                    action: Any, timezone: str = "UTC", misfire: str = "skip",
                    max_concurrent: int = 1, paused: bool = False,
                    now: datetime | None = None) -> Schedule:
    """A schedule running ``action`` on ``cron`` in ``timezone``; its first tick is the
    first one after now."""
    check_name(name, "name")
    expr = check_cron(cron)
    zone = check_timezone(timezone)
    policy, n = parse_misfire(misfire)
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or not \
            1 <= max_concurrent <= MAX_CONCURRENT:
        raise InvalidArgument(f"max_concurrent must be a whole number from 1 to "
                              f"{MAX_CONCURRENT}", field="max_concurrent")
    if not isinstance(paused, bool):
        raise InvalidArgument("paused must be true or false", field="paused")
    typed = check_action(action)
    check_allowed(ctx, typed)
    at = now or utcnow()

    def work(conn: Connection) -> Schedule:
        ensure_project(conn, ctx.project)
        if _row(conn, ctx.project, name, missing_ok=True) is not None:
            raise AlreadyExists(f"schedule {name!r} already exists", field="name")
        row = conn.execute(insert(schedules).values(
            id=new_id(), project=ctx.project, name=name, cron=expr, timezone=timezone,
            misfire=policy, catch_up_max=n, max_concurrent=max_concurrent,
            action=typed.model_dump(mode="json"), paused=paused,
            next_tick_at=next_tick(expr, zone, at), last_tick_at=None, created_at=at,
            created_by=ctx.actor, created_token=ctx.token_id,
        ).returning(*schedules.c)).one()
        audit.record(conn, ctx, "events.schedule.create", f"schedules/{name}",
                     detail={"cron": expr, "timezone": timezone, "misfire": misfire,
                             "action": typed.type})
        return _schedule(row)

    return store.retry_write(work)


def get_schedule(store: Store, project: str, name: str) -> Schedule:
    check_name(name, "schedule")
    with store.read() as conn:
        return _schedule(_row(conn, project, name))


def list_schedules(store: Store, project: str) -> list[Schedule]:
    with store.read() as conn:
        rows = conn.execute(select(schedules).where(schedules.c.project == project)
                            .order_by(schedules.c.name)).all()
    return [_schedule(r) for r in rows]


def pause_schedule(store: Store, ctx: RequestContext, name: str) -> Schedule:
    """Stop firing (ticks while paused are not caught up)."""
    return _set_paused(store, ctx, name, True, None)


def resume_schedule(store: Store, ctx: RequestContext, name: str, *,
                    now: datetime | None = None) -> Schedule:
    """Fire again from the next tick after now."""
    return _set_paused(store, ctx, name, False, now or utcnow())


def _set_paused(store: Store, ctx: RequestContext, name: str, paused: bool,
                now: datetime | None) -> Schedule:
    check_name(name, "schedule")

    def work(conn: Connection) -> Schedule:
        row = _row(conn, ctx.project, name)
        values: dict[str, Any] = {"paused": paused}
        if now is not None and row.paused:
            values["next_tick_at"] = next_tick(row.cron, ZoneInfo(row.timezone), now)
        conn.execute(update(schedules).where(schedules.c.id == row.id).values(**values))
        audit.record(conn, ctx, "events.schedule.pause" if paused else "events.schedule.resume",
                     f"schedules/{name}")
        return _schedule(_row(conn, ctx.project, name))

    return store.retry_write(work)


def delete_schedule(store: Store, ctx: RequestContext, name: str) -> None:
    """Delete a schedule and its ticks (pipeline runs it queued stay)."""
    check_name(name, "schedule")

    def work(conn: Connection) -> None:
        row = _row(conn, ctx.project, name)
        conn.execute(delete(ticks).where(ticks.c.schedule_id == row.id))
        conn.execute(delete(schedules).where(schedules.c.id == row.id))
        audit.record(conn, ctx, "events.schedule.delete", f"schedules/{name}")

    store.retry_write(work)


def list_ticks(store: Store, project: str, name: str, *, limit: int = 100
               ) -> list[ScheduleTick]:
    """The schedule's latest ticks, newest first."""
    check_name(name, "schedule")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidArgument("limit must be from 1 to 10000", field="limit")
    with store.read() as conn:
        row = _row(conn, project, name)
        found = conn.execute(select(ticks).where(ticks.c.schedule_id == row.id)
                             .order_by(ticks.c.tick_at.desc()).limit(limit)).all()
    return [ScheduleTick(schedule=name, tick_at=t.tick_at, state=t.state, worker=t.worker,
                         claimed_at=t.claimed_at, finished_at=t.finished_at,
                         result=t.result, error=t.error) for t in found]


# -- firing ----------------------------------------------------------------------------------

Perform = Callable[[RequestContext, Any, dict[str, Any]], dict[str, Any]]


def fire_due(store: Store, worker: str, perform: Perform, *, now: datetime | None = None,
             claim_lease: timedelta = CLAIM_LEASE) -> int:
    """Fire due ticks (``perform(ctx, action, context)`` runs an action) and record each
    outcome; how many ticks were claimed (0: nothing was due).

    First, ticks another worker claimed more than ``claim_lease`` ago and never started
    (it died between its claim and the run) are claimed again and run; otherwise one due
    schedule is claimed. A tick's action starts only through ``_start``, which moves the
    tick from ``claimed`` by this worker to ``acting`` (compare-and-set), so however often
    a tick is claimed, its action starts once."""
    at = now or utcnow()
    claimed = store.retry_write(lambda conn: _reclaim(conn, worker, at, claim_lease))
    if claimed is None:
        claimed = store.retry_write(lambda conn: _claim(conn, worker, at))
    if claimed is None:
        return 0
    row, fired = claimed
    ctx = RequestContext(project=row.project, actor=row.created_by or "scheduler",
                         token_id=row.created_token, client=f"schedule:{row.name}")
    outcomes: list[tuple[str, datetime, dict[str, Any] | None, str | None]] = []
    for tick_id, tick_at in fired:
        if not store.retry_write(partial(_start, tick_id=tick_id, worker=worker, now=now)):
            continue  # claimed again by another worker since (this one was slow): theirs
        context = {"schedule": row.name, "tick": tick_at.isoformat(),
                   "idempotency_key": f"schedule:{tick_id}",
                   "event": {"schedule": row.name, "tick": tick_at.isoformat()}}
        try:
            result: dict[str, Any] | None = perform(ctx, check_action(row.action), context)
            error = None
        except CreatorCannotAct as exc:
            result, error = None, REFUSED + exc.message
        except ShipyardError as exc:
            result, error = None, exc.message
        except Exception as exc:  # an action's own failure is recorded on its tick
            result, error = None, f"{type(exc).__name__}: {exc}"
        outcomes.append((tick_id, tick_at, result, error))
    if outcomes:  # one transaction for a claim's ticks (one tick, unless catching up)
        store.retry_write(lambda conn: _finish(conn, ctx, row.name, outcomes))
    return max(len(fired), 1)


def _reclaim(conn: Connection, worker: str, now: datetime, lease: timedelta
             ) -> tuple[Any, list[tuple[str, datetime]]] | None:
    """Claim the ticks of one schedule that a worker claimed more than ``lease`` ago and
    never started; mark ``failed`` the ticks whose action started more than
    ``STALE_CLAIM`` ago and never ended (their worker died while acting: whether the
    action took effect is unknown, and it is not run again)."""
    conn.execute(update(ticks).where(
        ticks.c.state == "acting", ticks.c.claimed_at <= now - STALE_CLAIM,
    ).values(state="failed", finished_at=now, error="the worker running this tick's action "
             "stopped before recording its outcome (whether it took effect is unknown; it "
             "is not run again)"))
    query = (select(ticks.c.id, ticks.c.schedule_id).where(
        ticks.c.state == "claimed", ticks.c.claimed_at <= now - lease)
        .order_by(ticks.c.claimed_at).limit(1))
    if conn.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    first = conn.execute(query).first()
    if first is None:
        return None
    row = conn.execute(select(schedules).where(schedules.c.id == first.schedule_id)).one()
    stale = conn.execute(select(ticks.c.id, ticks.c.tick_at).where(
        ticks.c.schedule_id == first.schedule_id, ticks.c.state == "claimed",
        ticks.c.claimed_at <= now - lease).order_by(ticks.c.tick_at)).all()
    conn.execute(update(ticks).where(ticks.c.id.in_([t.id for t in stale]),
                                     ticks.c.state == "claimed")
                 .values(worker=worker, claimed_at=now))
    return row, [(t.id, t.tick_at) for t in stale]


def _start(conn: Connection, tick_id: str, worker: str, now: datetime | None) -> bool:
    """``claimed`` by ``worker`` -> ``acting``: True when this worker is to run the tick's
    action (exactly one caller ever gets True for a tick)."""
    done = conn.execute(update(ticks).where(
        ticks.c.id == tick_id, ticks.c.state == "claimed", ticks.c.worker == worker,
    ).values(state="acting", claimed_at=now or utcnow()))
    return bool(done.rowcount)


def _claim(conn: Connection, worker: str, now: datetime
           ) -> tuple[Any, list[tuple[str, datetime]]] | None:
    query = (select(schedules).where(schedules.c.paused.is_(False),
                                     schedules.c.next_tick_at <= now)
             .order_by(schedules.c.next_tick_at).limit(1))
    if conn.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    if row is None:
        return None
    zone = ZoneInfo(row.timezone)
    if row.misfire == "catch_up":
        due = _latest_ticks(row.cron, zone, row.next_tick_at, now, row.catch_up_max)
    else:
        due = _latest_ticks(row.cron, zone, row.next_tick_at, now, 1)
        if row.misfire == "skip":
            due = [t for t in due if now - t <= MISFIRE_GRACE]
    in_flight = _in_flight(conn, row.id, now)
    fired: list[tuple[str, datetime]] = []
    if due:
        free = max(row.max_concurrent - in_flight, 0)
        full = f"{row.max_concurrent} action(s) still in flight (max_concurrent)"
        rows = [{"id": new_id(), "schedule_id": row.id, "tick_at": tick_at,
                 "state": "claimed" if i < free else "skipped", "worker": worker,
                 "claimed_at": now, "finished_at": None if i < free else now,
                 "error": None if i < free else full}
                for i, tick_at in enumerate(due)]
        # One statement; the unique key (schedule_id, tick_at) keeps a tick from ever
        # being claimed twice, whatever else went wrong.
        stmt = (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(ticks)
        inserted = set(conn.execute(stmt.values(rows).on_conflict_do_nothing(
            index_elements=["schedule_id", "tick_at"]).returning(ticks.c.id)).scalars())
        fired = [(r["id"], r["tick_at"]) for r in rows
                 if r["id"] in inserted and r["state"] == "claimed"]
    conn.execute(update(schedules).where(schedules.c.id == row.id).values(
        next_tick_at=next_tick(row.cron, zone, now),
        last_tick_at=due[-1] if due else row.last_tick_at))
    return row, fired


def _in_flight(conn: Connection, schedule_id: str, now: datetime) -> int:
    from shipyard.store.schema import pipeline_runs

    running = conn.execute(select(func.count()).select_from(ticks).where(
        ticks.c.schedule_id == schedule_id,
        or_(ticks.c.state == "claimed",
            and_(ticks.c.state == "acting", ticks.c.claimed_at > now - STALE_CLAIM),
            and_(ticks.c.state == "done", ticks.c.pipeline_run_id.in_(
                select(pipeline_runs.c.id).where(
                    pipeline_runs.c.state.in_(("QUEUED", "RUNNING")))))))).scalar_one()
    return int(running)


def _finish(conn: Connection, ctx: RequestContext, name: str,
            outcomes: list[tuple[str, datetime, dict[str, Any] | None, str | None]]) -> None:
    """Record a claim's outcomes: each tick's row (one statement), and one audit row for
    the claim's actions (one tick's, unless the claim caught up several)."""
    done = utcnow()
    conn.execute(update(ticks).where(ticks.c.id == bindparam("tick_id")).values(
        state=bindparam("new_state"), finished_at=done, result=bindparam("new_result"),
        error=bindparam("new_error"), pipeline_run_id=bindparam("run_id")), [
        {"tick_id": tick_id, "new_state": "failed" if error else "done",
         "new_result": result, "new_error": error,
         "run_id": _run_id(result)} for tick_id, _, result, error in outcomes])
    failed = [o for o in outcomes if o[3]]
    detail: dict[str, Any] = {"ticks": [{"tick": t.isoformat(), "result": r, "error": e}
                                        for _, t, r, e in outcomes[:100]]}
    if len(outcomes) > 100:
        detail["more_ticks"] = len(outcomes) - 100
    refused = any(e and e.startswith(REFUSED) for _, _, _, e in outcomes)
    audit.record(conn, ctx, "events.schedule.fire", f"schedules/{name}",
                 outcome="denied" if refused else "error" if failed else "ok", detail=detail)


def _run_id(result: dict[str, Any] | None) -> str | None:
    run_id = (result or {}).get("pipeline_run_id")
    return run_id if isinstance(run_id, str) else None


# -- helpers ---------------------------------------------------------------------------------


def _row(conn: Connection, project: str, name: str, *, missing_ok: bool = False) -> Any:
    row = conn.execute(select(schedules).where(schedules.c.project == project,
                                               schedules.c.name == name)).first()
    if row is None and not missing_ok:
        raise NotFound(f"no schedule {name!r} in project {project!r}", field="schedule")
    return row


def _schedule(row: Any) -> Schedule:
    return Schedule(id=row.id, project=row.project, name=row.name, cron=row.cron,
                    timezone=row.timezone, misfire=row.misfire,
                    catch_up_max=row.catch_up_max, max_concurrent=row.max_concurrent,
                    action=check_action(row.action), paused=row.paused,
                    next_tick_at=row.next_tick_at, last_tick_at=row.last_tick_at,
                    created_at=row.created_at, created_by=row.created_by)
