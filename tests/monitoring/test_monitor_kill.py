"""A monitor run killed with SIGKILL: real processes (forked from this one, so they start
in milliseconds) each run the due window of their own store and are killed at a point of
the run (a named point where the process stops and waits to be killed, or a seeded delay
after it started). Then the window is run again: no half-written result, the window is
judged (once), no alert raised or announced twice, and a delivery that may have left is
not sent again.

SHIPYARD_SOAK=1 adds more seeded delays."""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from shipyard.config import Settings
from shipyard.events import bus
from shipyard.monitoring import monitors as service
from shipyard.monitoring.channels import deliver_pending
from shipyard.serving import service as serving
from shipyard.store import open_store
from shipyard.store.schema import monitor_alerts, monitor_runs, monitors
from tests.monitoring.test_monitors import CTX, HOUR, T0, log_window, make

DUE = T0 + 2 * HOUR  # the first scheduled window ends here
# Where a run stops to be killed: before judging (the lease is taken), after judging,
# inside the recording transaction (the run and its alerts inserted, then the event
# announced), after the commit (deliveries pending), while a delivery is being sent.
POINTS = ["claimed", "judged", "recorded", "announced", "committed", "sending"]
DELAYS = random.Random(19).sample([i / 50 for i in range(50)],
                                  12 if os.environ.get("SHIPYARD_SOAK") else 2)


def _settings(home: Path) -> Settings:
    return Settings(home=home, uri=f"sqlite:///{home}/shipyard.db",
                    artifacts=str(home / "artifacts"))


def _prepare(home: Path) -> None:
    home.mkdir()
    store = open_store(f"sqlite:///{home}/shipyard.db", cached=False)
    serving.create_endpoint(store, CTX, "leads")
    make(store, alert=["log", "event"], start_at=T0 + HOUR)
    bus.create_subscription(store, CTX, "alerts", "monitor-alert-raised")
    log_window(home / "artifacts", T0, seed=1)
    log_window(home / "artifacts", T0 + HOUR, seed=2, shift=0.5)  # skew, drift, predictions
    store.dispose()


def _child(home: Path, point: str) -> None:
    """Run the due window, stopping at ``point`` (a file says so) to be killed there."""
    from shipyard.monitoring import alerting, channels, monitor_running

    def stop() -> None:
        (home / "stopped").write_text(point)
        time.sleep(120)

    def after(function: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            value = function(*args, **kwargs)
            stop()
            return value
        return wrapped

    def before(function: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            stop()
            return function(*args, **kwargs)
        return wrapped

    patches = {"claimed": (monitor_running, "judge", before),
               "judged": (monitor_running, "judge", after),
               "recorded": (monitor_running, "_decide_alerts", after),
               "announced": (alerting, "announce", after),
               "committed": (monitor_running, "_deliver", before),
               "sending": (channels, "send", before)}
    if point in patches:
        module, name, wrap = patches[point]
        setattr(module, name, wrap(getattr(module, name)))
    store = open_store(f"sqlite:///{home}/shipyard.db", cached=False)
    (home / "started").write_text(point)
    service.run_due(store, _settings(home), "doomed", now=DUE)
    (home / "finished").write_text(point)
    time.sleep(120)  # killed here when the delay was longer than the run


def test_a_monitor_run_killed_anywhere_is_judged_again_once(tmp_path: Path) -> None:
    cases = [(point, None) for point in POINTS] + [(f"after {d:.2f} s", d) for d in DELAYS]
    homes = [tmp_path / f"case{i}" for i in range(len(cases))]
    _prepare(tmp_path / "template")
    for home in [*homes, tmp_path / "warm"]:
        shutil.copytree(tmp_path / "template", home)
    # One run here first, so the forked children start with everything imported.
    warm = open_store(f"sqlite:///{tmp_path}/warm/shipyard.db", cached=False)
    service.run_monitor(warm, _settings(tmp_path / "warm"), "default", "leads-monitor",
                        now=DUE)
    warm.dispose()
    fork = multiprocessing.get_context("fork")
    children = []
    for home, (point, _) in zip(homes, cases, strict=True):
        child = fork.Process(target=_child, args=(home, point), daemon=True)
        child.start()
        children.append(child)
    deadline = time.monotonic() + 120
    started: dict[int, float] = {}
    waiting = set(range(len(cases)))
    while waiting and time.monotonic() < deadline:
        for i in sorted(waiting):
            home, (point, delay) = homes[i], cases[i]
            if delay is None:
                ready = (home / "stopped").exists()
            else:
                if i not in started and (home / "started").exists():
                    started[i] = time.monotonic()
                ready = i in started and time.monotonic() - started[i] >= delay
            if ready:
                assert children[i].pid is not None
                os.kill(children[i].pid, signal.SIGKILL)
                children[i].join(10)
                waiting.discard(i)
        time.sleep(0.01)
    assert not waiting, f"cases that never reached their point: {sorted(waiting)}"
    assert all(child.exitcode == -signal.SIGKILL for child in children)

    for home, (point, _) in zip(homes, cases, strict=True):
        store = open_store(f"sqlite:///{home}/shipyard.db", cached=False)
        settings = _settings(home)
        with store.read() as conn:
            before = conn.execute(select(func.count()).select_from(monitor_runs)).scalar()
            owner = conn.execute(select(monitors.c.lease_owner)).scalar()
        recorded = (home / "finished").exists() or point in ("committed", "sending")
        assert before == (1 if recorded else 0) or point.startswith("after"), point
        assert owner == (None if before else "doomed") or point.startswith("after"), point
        if owner == "doomed":  # the dead worker's lease (5 min) holds the monitor...
            assert before == 0
            assert not service.run_due(store, settings, "w2",
                                       now=DUE + timedelta(minutes=1))
        # ...then the window is judged again unless it was recorded.
        again = service.run_due(store, settings, "w2", now=DUE + timedelta(minutes=6))
        assert again == (before == 0), point
        assert not service.run_due(store, settings, "w2", now=DUE + timedelta(minutes=7))
        deliver_pending(store, settings)

        (run,) = service.history(store, "default", "leads-monitor")
        assert (run.window_end, run.state, run.trigger) == (DUE, "succeeded", "schedule")
        assert run.result["rows"] == 2000 and set(run.result["breaches"]) == \
            {"skew", "drift", "prediction_drift"}, point
        alerts = service.list_alerts(store, "default")
        assert sorted(a.kind for a in alerts) == ["drift", "prediction_drift", "skew"], point
        assert {a.run_id for a in alerts} == {run.id}
        announced: list[str] = []
        while pulled := bus.pull(store, "default", "alerts", max_messages=50):  # in turn
            announced += [m.data["alert_id"] for m in pulled]
            bus.ack(store, "default", "alerts", [m.lease_token for m in pulled])
        assert sorted(announced) == sorted(a.id for a in alerts), \
            point  # each alert announced once, with the transaction that recorded it
        logs = [d for a in alerts for d in a.deliveries if d["type"] == "log"]
        if point == "sending":  # it may have left: never sent again
            assert [d["state"] for d in logs] == ["sending"] * 3
        elif point.startswith("after"):  # killed anywhere, delivering included
            assert {d["state"] for d in logs} <= {"sending", "sent"}, point
        else:
            assert [d["state"] for d in logs] == ["sent"] * 3, point
        assert all(d["attempts"] <= 1 for d in logs)
        with store.read() as conn:
            assert conn.execute(select(func.count()).select_from(monitor_alerts)).scalar() \
                == 3
        store.dispose()
