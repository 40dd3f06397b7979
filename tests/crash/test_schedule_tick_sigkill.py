"""A worker SIGKILLed between claiming a schedule tick and running it does not leave the
tick unrun: another worker claims it again once the claim's lease (60 s) has passed and
runs it, once (at least once for the claim, exactly once for the run). A worker killed
while the action runs leaves the tick ``acting``: it is never run again (the action may
have taken effect), and after 15 minutes it is marked failed saying so.

The workers are real processes killed with SIGKILL at an exact point (they kill
themselves there: ``tests/crash/event_workers.py``); the clock is virtual."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shipyard.context import RequestContext
from shipyard.events import actions, bus, scheduler
from shipyard.events.acting import perform
from shipyard.store import Store, open_store
from tests.crash.conftest import ROOT

CTX = RequestContext(project="default", actor="tester")
T0 = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
TICK = datetime(2026, 3, 2, 12, 1, tzinfo=UTC)


@pytest.fixture
def crash_store(store_uri: str) -> Iterator[tuple[str, Store]]:
    s = open_store(store_uri, cached=False)
    try:
        yield store_uri, s
    finally:
        s.dispose()


def _kill_at(uri: str, now: datetime, point: str, log: Path) -> None:
    with log.open("ab") as stderr:
        done = subprocess.run([sys.executable, "-m", "tests.crash.event_workers", "tick", uri,
                               now.isoformat(), point], cwd=ROOT, stderr=stderr, timeout=120,
                              check=False)
    assert done.returncode == -signal.SIGKILL, log.read_text(errors="replace")[-2000:]


def _fire(store: Store, at: datetime) -> int:
    def run(ctx: RequestContext, action: Any, context: dict[str, Any]) -> dict[str, Any]:
        return perform(store, None, None, ctx, action, context)

    return scheduler.fire_due(store, "survivor", run, now=at)


def _seen(store: Store) -> list[Any]:
    got = bus.pull(store, "default", "seen", max_messages=100)
    bus.ack(store, "default", "seen", [m.lease_token for m in got])
    return [m.data["tick"] for m in got]


def _setup(store: Store) -> None:
    bus.create_subscription(store, CTX, "seen", "fired")
    scheduler.create_schedule(store, CTX, "minutely", cron="* * * * *", misfire="catch_up(5)",
                              action=actions.Publish(topic="fired", data={"tick": "{{ tick }}"}),
                              max_concurrent=5, now=T0)


def test_a_tick_claimed_by_a_killed_worker_runs_once_after_the_lease(
        crash_store: tuple[str, Store], tmp_path: Path) -> None:
    uri, store = crash_store
    _setup(store)
    claimed_at = TICK + timedelta(seconds=5)
    _kill_at(uri, claimed_at, "claimed", tmp_path / "victim.log")
    (left,) = scheduler.list_ticks(store, "default", "minutely")
    assert (left.tick_at, left.state, left.worker) == (TICK, "claimed", "victim")
    assert _seen(store) == []  # the victim died before the action

    # Within the lease the claim stands (its worker may be alive and slow): nothing runs.
    assert _fire(store, claimed_at + timedelta(seconds=50)) == 0
    assert _seen(store) == []
    # After it, the survivor claims the tick again and runs it; then the next tick.
    assert _fire(store, claimed_at + timedelta(seconds=61)) == 1
    assert _seen(store) == [TICK.isoformat()]
    assert _fire(store, claimed_at + timedelta(seconds=62)) == 1  # 12:02, a tick of its own
    assert _seen(store) == [(TICK + timedelta(minutes=1)).isoformat()]
    # Never again, however often and however late workers look.
    for later in (120, 1000, 5000):
        _fire(store, claimed_at + timedelta(seconds=later))
    ticks = {t.tick_at: t for t in scheduler.list_ticks(store, "default", "minutely")}
    assert ticks[TICK].state == "done" and ticks[TICK].worker == "survivor"
    assert [m for m in _seen(store) if m in (TICK.isoformat(),
                                             (TICK + timedelta(minutes=1)).isoformat())] == []


def test_a_worker_killed_while_acting_leaves_the_tick_never_run_twice(
        crash_store: tuple[str, Store], tmp_path: Path) -> None:
    uri, store = crash_store
    _setup(store)
    claimed_at = TICK + timedelta(seconds=5)
    _kill_at(uri, claimed_at, "acting", tmp_path / "victim.log")
    (left,) = scheduler.list_ticks(store, "default", "minutely")
    assert (left.tick_at, left.state) == (TICK, "acting")

    assert _fire(store, claimed_at + timedelta(seconds=61)) == 1  # 12:02 only
    assert _seen(store) == [(TICK + timedelta(minutes=1)).isoformat()]
    assert _fire(store, claimed_at + timedelta(minutes=16)) == 5  # catch_up(5): the latest 5
    ticks = {t.tick_at: t for t in scheduler.list_ticks(store, "default", "minutely")}
    assert ticks[TICK].state == "failed" and "unknown" in (ticks[TICK].error or "")
    assert TICK.isoformat() not in _seen(store)
