"""Schedules on SQLite and PostgreSQL: cron in a time zone across daylight-saving changes,
the misfire policies, the concurrency cap, and exactly one run per tick with three workers
on a virtual clock."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from shipyard import dsl
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, InvalidArgument, NotFound
from shipyard.events import actions, bus, scheduler
from shipyard.events.acting import perform
from shipyard.pipelines.compiler import dump_spec, to_spec
from shipyard.store import Store
from shipyard.store.schema import pipeline_runs
from shipyard.store.schema.events import event_schedule_ticks
from tests.pipelines import steps

CTX = RequestContext(project="default", actor="tester")
P = "default"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """SQLite only, for behaviour that does not depend on the database (input checks)."""
    from shipyard.store import open_store

    s = open_store(f"sqlite:///{tmp_path / 'one.db'}", cached=False)
    try:
        yield s
    finally:
        s.dispose()
TICKS = 1000 * int(os.environ.get("SHIPYARD_SOAK", "1"))
PER_ROUND = 25


def _perform(store: Store) -> scheduler.Perform:
    def run(ctx: RequestContext, action: Any, context: dict[str, Any]) -> dict[str, Any]:
        return perform(store, None, None, ctx, action, context)

    return run


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- cron arithmetic -------------------------------------------------------------------------


def test_a_daily_tick_keeps_its_local_time_across_daylight_saving() -> None:
    ny = ZoneInfo("America/New_York")  # EST (UTC-5) until 2026-03-08, then EDT (UTC-4)
    first = scheduler.next_tick("0 9 * * *", ny, _utc(2026, 3, 7, 15))
    second = scheduler.next_tick("0 9 * * *", ny, first)
    assert first == _utc(2026, 3, 8, 13)  # 09:00 EDT: the clocks went forward at 02:00
    assert scheduler.next_tick("0 9 * * *", ny, _utc(2026, 3, 6, 15)) == _utc(2026, 3, 7, 14)
    assert second == _utc(2026, 3, 9, 13)


def test_a_skipped_wall_time_fires_after_the_gap_and_a_repeated_one_fires_once() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # 2026-03-29 02:00 -> 03:00; 2026-10-25 03:00 -> 02:00
    spring = scheduler.next_tick("30 2 * * *", berlin, _utc(2026, 3, 28, 12))
    assert spring == _utc(2026, 3, 29, 1)  # 03:00 CEST: 02:30 did not exist that day
    autumn = [scheduler.next_tick("30 2 * * *", berlin, _utc(2026, 10, 24, 12))]
    autumn.append(scheduler.next_tick("30 2 * * *", berlin, autumn[0]))
    # 02:30 CEST (00:30 UTC) on the 25th, then not again at 02:30 CET, but on the 26th.
    assert autumn == [_utc(2026, 10, 25, 0, 30), _utc(2026, 10, 26, 1, 30)]


def test_bad_input_is_refused_naming_the_field(sqlite_store: Store) -> None:
    store = sqlite_store
    good = actions.Publish(topic="t")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "@reboot"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"misfire": "sometimes"}, "misfire"),
        ({"misfire": "catch_up(0)"}, "misfire"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"action": {"type": "publish", "topic": "t", "colour": "red"}}, "action.colour"),
        ({"action": {"type": "launch"}}, "action.type"),
        ({"action": {"type": "promote", "model": "m", "alias": "prod"}}, "action.version"),
        ({"action": {"type": "promote", "model": "m", "alias": "p", "version": "latest"}},
         "action.version"),
        ({"action": "run it"}, "action"),
    ]
    for change, field in cases:
        arguments: dict[str, Any] = {"cron": "* * * * *", "action": good, **change}
        with pytest.raises(InvalidArgument) as caught:
            scheduler.create_schedule(store, CTX, "s", **arguments)
        assert caught.value.field == field, (change, caught.value)
    assert scheduler.list_schedules(store, P) == []


# -- managing --------------------------------------------------------------------------------


def test_create_list_pause_resume_delete(sqlite_store: Store) -> None:
    store = sqlite_store
    now = _utc(2026, 12, 3, 10, 7, 30)
    made = scheduler.create_schedule(store, CTX, "nightly", cron="0 2 * * *",
                                     timezone="Europe/Berlin", now=now,
                                     action=actions.Publish(topic="t"))
    assert made.next_tick_at == _utc(2026, 12, 4, 1)  # 02:00 CET
    assert made.misfire == "skip" and made.max_concurrent == 1 and not made.paused
    with pytest.raises(AlreadyExists):
        scheduler.create_schedule(store, CTX, "nightly", cron="0 2 * * *",
                                  action=actions.Publish(topic="t"))
    assert [s.name for s in scheduler.list_schedules(store, P)] == ["nightly"]
    assert scheduler.pause_schedule(store, CTX, "nightly").paused
    # Paused: its tick passes without firing.
    assert scheduler.fire_due(store, "w", _perform(store), now=_utc(2026, 12, 4, 1)) == 0
    resumed = scheduler.resume_schedule(store, CTX, "nightly", now=_utc(2026, 12, 5, 12))
    assert not resumed.paused and resumed.next_tick_at == _utc(2026, 12, 6, 1)
    scheduler.delete_schedule(store, CTX, "nightly")
    with pytest.raises(NotFound):
        scheduler.get_schedule(store, P, "nightly")


# -- firing ----------------------------------------------------------------------------------


def _messages(store: Store, sub: str) -> list[Any]:
    got = bus.pull(store, P, sub, max_messages=1000)
    bus.ack(store, P, sub, [m.lease_token for m in got])
    return [m.data for m in got]


@pytest.mark.parametrize(("misfire", "fired"), [("skip", 0), ("run_once", 1),
                                                 ("catch_up(3)", 3)])
def test_misfire_policies_after_missed_ticks(sqlite_store: Store, misfire: str, fired: int) -> None:
    store = sqlite_store
    start = _utc(2026, 12, 3, 9, 0, 30)
    bus.create_subscription(store, CTX, "seen", "ticks")
    scheduler.create_schedule(store, CTX, "ten-minutes", cron="*/10 * * * *",
                              misfire=misfire, max_concurrent=5, now=start,
                              action=actions.Publish(topic="ticks", data="{{ tick }}"))
    late = _utc(2026, 12, 3, 10, 45)  # ticks 09:10 .. 10:40 were missed (10:40 by 5 min)
    assert scheduler.fire_due(store, "w", _perform(store), now=late) == max(fired, 1)
    expected = [_utc(2026, 12, 3, 10, 40 - 10 * (fired - 1 - i)).isoformat()
                for i in range(fired)]
    assert _messages(store, "seen") == expected
    state = scheduler.get_schedule(store, P, "ten-minutes")
    assert state.next_tick_at == _utc(2026, 12, 3, 10, 50)
    assert scheduler.fire_due(store, "w", _perform(store), now=late) == 0  # nothing due
    # On time again (within the grace of a minute): the next tick fires under every policy.
    on_time = _utc(2026, 12, 3, 10, 50, 40)
    assert scheduler.fire_due(store, "w", _perform(store), now=on_time) == 1
    assert _messages(store, "seen") == [_utc(2026, 12, 3, 10, 50).isoformat()]


def test_the_concurrency_cap_skips_ticks_while_a_queued_run_is_in_flight(store: Store
                                                                          ) -> None:
    @dsl.pipeline(name="refresh")
    def refresh(x: int) -> None:
        steps.add(a=x, b=1)

    start = _utc(2026, 12, 3, 10, 0, 30)
    spec = dump_spec(to_spec(refresh)[0])
    scheduler.create_schedule(
        store, CTX, "refresh", cron="*/5 * * * *", now=start, max_concurrent=1,
        action=actions.RunPipeline(pipeline="refresh", spec=spec, arguments={"x": 41}))
    fire = _perform(store)
    tick = _utc(2026, 12, 3, 10, 5)
    assert scheduler.fire_due(store, "w", fire, now=tick) == 1
    (first,) = scheduler.list_ticks(store, P, "refresh")
    assert first.state == "done" and first.tick_at == tick
    run_id = first.result["pipeline_run_id"] if first.result else None
    with store.read() as conn:
        run = conn.execute(select(pipeline_runs).where(pipeline_runs.c.id == run_id)).one()
    assert run.state == "QUEUED" and run.arguments == {"x": 41}
    # The run is still queued at the next tick: that tick is skipped, not queued twice.
    scheduler.fire_due(store, "w", fire, now=tick + timedelta(minutes=5))
    second = scheduler.list_ticks(store, P, "refresh")[0]
    assert second.state == "skipped" and "max_concurrent" in (second.error or "")
    with store.write() as conn:
        conn.execute(pipeline_runs.update().where(pipeline_runs.c.id == run_id)
                     .values(state="SUCCEEDED"))
    scheduler.fire_due(store, "w", fire, now=tick + timedelta(minutes=10))
    assert scheduler.list_ticks(store, P, "refresh")[0].state == "done"


def test_a_failing_action_is_recorded_on_its_tick_and_audited(sqlite_store: Store) -> None:
    store = sqlite_store
    from shipyard import audit

    start = _utc(2026, 12, 3, 10, 0, 30)
    scheduler.create_schedule(store, CTX, "promote", cron="* * * * *", now=start,
                              action=actions.Promote(model="nope", alias="prod", version=1))
    assert scheduler.fire_due(store, "w", _perform(store), now=_utc(2026, 12, 3, 10, 1)) == 1
    (tick,) = scheduler.list_ticks(store, P, "promote")
    assert tick.state == "failed" and "nope" in (tick.error or "")
    (row,) = audit.query(store, action="events.schedule.fire")
    assert row["outcome"] == "error" and row["actor"] == "tester"


def test_three_workers_on_a_virtual_clock_fire_each_tick_exactly_once(store: Store) -> None:
    # 1,000 ticks of an every-minute schedule; the virtual clock moves 25 ticks ahead per
    # round and the three workers race to claim them (catch_up(25) fires all of them).
    start = _utc(2026, 1, 1, 0, 0, 30)
    scheduler.create_schedule(store, CTX, "every-minute", cron="* * * * *", now=start,
                              misfire=f"catch_up({PER_ROUND})", max_concurrent=PER_ROUND,
                              action=actions.Publish(topic="ticks", data="{{ tick }}"))
    clock = [start]
    gate = threading.Barrier(4)
    ran: list[tuple[str, str]] = []  # (worker, tick) per action run
    errors: list[BaseException] = []
    rounds = TICKS // PER_ROUND

    def worker(name: str) -> None:
        def fire(ctx: RequestContext, action: Any, context: dict[str, Any]
                 ) -> dict[str, Any]:
            ran.append((name, context["tick"]))
            return {}

        try:
            for _ in range(rounds):
                gate.wait()
                while scheduler.fire_due(store, name, fire, now=clock[0]):
                    pass
                gate.wait()
        except BaseException as exc:  # reported below
            errors.append(exc)
            gate.abort()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(rounds):
            clock[0] = _utc(2026, 1, 1) + timedelta(minutes=(i + 1) * PER_ROUND)
            gate.wait()
            gate.wait()
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join()
    assert not errors, errors
    expected = [(_utc(2026, 1, 1) + timedelta(minutes=i + 1)).isoformat()
                for i in range(TICKS)]
    assert sorted(tick for _, tick in ran) == expected  # each tick's action ran once
    with store.read() as conn:
        states = dict(conn.execute(select(event_schedule_ticks.c.state, func.count())
                                   .group_by(event_schedule_ticks.c.state)).all())
    assert states == {"done": TICKS}
    assert len({name for name, _ in ran}) >= 2  # the work was shared


def test_the_worker_source_waits_for_a_tick_due_within_its_lookahead(tmp_path: Any) -> None:
    from shipyard.config import Settings
    from shipyard.runtime import open_runtime
    from shipyard.worker.events import Schedules

    clock = [_utc(2026, 12, 3, 10, 0, 30)]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += timedelta(seconds=seconds)

    settings = Settings.resolve(home=tmp_path, uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                                artifacts=str(tmp_path / "blobs"), environ={})
    with open_runtime(settings, cached=False) as runtime:
        store = runtime.store
        bus.create_subscription(store, CTX, "seen", "ticks")
        scheduler.create_schedule(store, CTX, "every-minute", cron="* * * * *", now=clock[0],
                                  action=actions.Publish(topic="ticks", data="{{ tick }}"))
        source = Schedules(clock=lambda: clock[0], lookahead=0.5, sleep=sleep)
        assert source.claim_and_run(runtime, "w") is False  # 30 s away: no waiting
        assert slept == []
        clock[0] = _utc(2026, 12, 3, 10, 0, 59, 700_000)
        assert source.claim_and_run(runtime, "w") is True  # 0.3 s away: waits and fires
        assert slept == [pytest.approx(0.3)]
        assert _messages(store, "seen") == [_utc(2026, 12, 3, 10, 1).isoformat()]


def test_a_rule_created_through_the_server_calls_only_allowed_modules(
        sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store = sqlite_store
    from shipyard.errors import FailedPrecondition

    server_ctx = RequestContext(project=P, actor="alice", token_id="0" * 32)
    action = actions.CallFunction(function="subprocess:getoutput")
    monkeypatch.setenv("SHIPYARD_ACTION_FUNCTIONS", "mycompany.hooks")
    with pytest.raises(FailedPrecondition) as caught:
        scheduler.create_schedule(store, server_ctx, "s", cron="* * * * *", action=action)
    assert caught.value.field == "action.function"
    allowed = actions.CallFunction(function="mycompany.hooks.retrain:on_tick")
    assert scheduler.create_schedule(store, server_ctx, "s", cron="* * * * *",
                                     action=allowed).action == allowed
    # In local mode (no token) the caller runs the worker itself: no list applies.
    assert scheduler.create_schedule(store, CTX, "local", cron="* * * * *",
                                     action=action).action == action
