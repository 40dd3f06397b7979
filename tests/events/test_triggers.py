"""Triggers on SQLite and PostgreSQL: filters, actions with arguments from the event,
the idempotency key (a redelivered message never acts twice), the cooldown, and a failing
action that is retried, dead-lettered with its history and never blocks other keys."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shipyard import audit, dsl
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, InvalidArgument, NotFound
from shipyard.events import actions, bus, triggers
from shipyard.events.acting import perform
from shipyard.events.builtin import VERSION_REGISTERED
from shipyard.pipelines.compiler import dump_spec, to_spec
from shipyard.store import Store
from shipyard.store.schema import pipeline_runs
from shipyard.store.types import utcnow
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


def _process(store: Store, **kwargs: Any) -> int:
    def run(ctx: RequestContext, action: Any, context: dict[str, Any]) -> dict[str, Any]:
        return perform(store, None, None, ctx, action, context)

    return triggers.process_triggers(store, run, **kwargs)


def _drain(store: Store, sub: str) -> list[Any]:
    got = bus.pull(store, P, sub, max_messages=100)
    bus.ack(store, P, sub, [m.lease_token for m in got])
    return [m.data for m in got]


def test_bad_input_is_refused_naming_the_field(sqlite_store: Store) -> None:
    store = sqlite_store
    good = actions.Publish(topic="out")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"filter": {"model": {"nested": 1}}}, "filter.model"),
        ({"filter": {"bad key!": 1}}, "filter"),
        ({"filter": ["model"]}, "filter"),
        ({"cooldown_seconds": -1}, "cooldown_seconds"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"topic": "../x"}, "topic"),
        ({"action": {"type": "webhook", "url": "file:///etc/passwd"}}, "action.url"),
        ({"action": {"type": "call_function", "function": "os.system"}}, "action.function"),
        ({"action": {"type": "deploy", "endpoint": "e", "model": "m", "traffic": 10}},
         "action.traffic"),
    ]
    for change, field in cases:
        arguments: dict[str, Any] = {"topic": "in", "action": good, **change}
        with pytest.raises(InvalidArgument) as caught:
            triggers.create_trigger(store, CTX, "t", **arguments)
        assert caught.value.field == field, (change, caught.value)
    assert triggers.list_triggers(store, P) == []


def test_a_matching_event_runs_a_pipeline_with_arguments_from_the_event(store: Store
                                                                       ) -> None:
    @dsl.pipeline(name="retrain")
    def retrain(model: str, version: int) -> None:
        steps.add(a=version, b=1)

    trigger = triggers.create_trigger(
        store, CTX, "retrain-on-churn", topic=VERSION_REGISTERED,
        filter={"model": "churn", "version": [3, 4]},
        action=actions.RunPipeline(pipeline="retrain", spec=dump_spec(to_spec(retrain)[0]),
                                   arguments={"model": "{{ event.model }}",
                                              "version": "{{ event.version }}"}))
    assert trigger.subscription == "trigger.retrain-on-churn"
    with pytest.raises(AlreadyExists):
        triggers.create_trigger(store, CTX, "retrain-on-churn", topic="x",
                                action=actions.Publish(topic="y"))
    for data in ({"model": "churn", "version": 2}, {"model": "fraud", "version": 3},
                 {"model": "churn", "version": 3}):
        bus.publish(store, CTX, VERSION_REGISTERED, data, ordering_key=data["model"])
    # One pass takes churn's first and fraud's; churn's second follows its first (same key).
    assert _process(store) == 2 and _process(store) == 1
    with store.read() as conn:
        runs = conn.execute(select(pipeline_runs.c.state, pipeline_runs.c.arguments)).all()
    assert [(r.state, r.arguments) for r in runs] == [("QUEUED",
                                                        {"model": "churn", "version": 3})]
    (firing,) = triggers.list_firings(store, P, "retrain-on-churn")
    assert firing.state == "done" and firing.result and "pipeline_run_id" in firing.result
    rows = audit.query(store, action="events.trigger.fire")
    assert [(r["outcome"], r["actor"], r["client"]) for r in rows] == [
        ("ok", "tester", "trigger:retrain-on-churn")]
    assert _process(store) == 0  # nothing left


def test_a_redelivered_message_never_acts_twice(store: Store) -> None:
    bus.create_subscription(store, CTX, "seen", "out")
    triggers.create_trigger(store, CTX, "relay", topic="in",
                            action=actions.Publish(topic="out", data="{{ event.n }}"))
    before = utcnow() - timedelta(seconds=1)
    bus.publish(store, CTX, "in", {"n": 1})
    assert _process(store) == 1
    # Delivered again (seek replays it, as a lost ack would): acknowledged, not acted on.
    assert bus.seek(store, CTX, "trigger.relay", before) == 1
    assert _process(store) == 1
    assert _drain(store, "seen") == [1]
    (firing,) = triggers.list_firings(store, P, "relay")
    assert firing.state == "done" and firing.attempts == 1


def test_the_cooldown_skips_events_that_come_too_soon(store: Store) -> None:
    bus.create_subscription(store, CTX, "seen", "out")
    triggers.create_trigger(store, CTX, "calm", topic="in", cooldown_seconds=3600,
                            action=actions.Publish(topic="out", data="{{ event.n }}"))
    for n in (1, 2):
        bus.publish(store, CTX, "in", {"n": n})
    now = utcnow()
    assert _process(store, now=now) == 2
    bus.publish(store, CTX, "in", {"n": 3})
    assert _process(store, now=now + timedelta(seconds=3601)) == 1
    assert _drain(store, "seen") == [1, 3]
    states = [f.state for f in triggers.list_firings(store, P, "calm")]
    assert sorted(states) == ["done", "done", "skipped"]


def test_a_failing_action_is_retried_then_dead_lettered_without_blocking_other_keys(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    bus.create_subscription(store, CTX, "seen", "out")
    bus.create_subscription(store, CTX, "ops", "message-dead-lettered")
    triggers.create_trigger(store, CTX, "fragile", topic="in", max_attempts=3,
                            min_backoff_seconds=10, max_backoff_seconds=600,
                            action=actions.Publish(topic="out", data="{{ event.payload }}"))
    # Model a's first event has no payload: its action fails every time.
    bus.publish(store, CTX, "in", {"model": "a"}, ordering_key="a")
    bus.publish(store, CTX, "in", {"model": "a", "payload": "a2"}, ordering_key="a")
    bus.publish(store, CTX, "in", {"model": "b", "payload": "b1"}, ordering_key="b")
    now = utcnow()
    assert _process(store, now=now) == 2  # a's first and b's: a's second waits behind it
    assert _drain(store, "seen") == ["b1"]  # b went through
    bus.publish(store, CTX, "in", {"model": "b", "payload": "b2"}, ordering_key="b")
    assert _process(store, now=now + timedelta(seconds=5)) == 1  # b2; a1 is backing off
    assert _process(store, now=now + timedelta(seconds=11)) == 1  # a1, attempt 2
    assert bus.pull(store, P, "ops") == []  # no alert before the last attempt
    with caplog.at_level("WARNING", logger="shipyard.events.alerts"):
        assert _process(store, now=now + timedelta(seconds=32)) == 1  # a1, attempt 3: dead
    assert _process(store, now=now + timedelta(seconds=33)) == 1  # then a2 at last
    assert _drain(store, "seen") == ["b2", "a2"]
    (dead,) = bus.dead_letters(store, P, "trigger.fragile")
    assert dead.data == {"model": "a"} and dead.attempts == 3
    assert all("event.payload" in h["outcome"] for h in dead.history)
    failed = [f for f in triggers.list_firings(store, P, "fragile") if f.state != "done"]
    assert len(failed) == 1 and failed[0].attempts == 3 and failed[0].state == "dead"
    errors = audit.query(store, action="events.trigger.fire", outcome="error")
    assert len(errors) == 3
    # The alert: one built-in event, one audit row, one warning, each naming the message.
    (alert,) = bus.pull(store, P, "ops")
    assert alert.data == {"event": "message-dead-lettered", "subscription": "trigger.fragile",
                          "topic": "in", "message_id": dead.id, "attempts": 3,
                          "error": dead.history[-1]["outcome"]}
    assert alert.ordering_key == "trigger.fragile"
    (row,) = audit.query(store, action="events.message.dead_letter")
    assert row["outcome"] == "error" and row["resource"] == "subscriptions/trigger.fragile"
    assert row["detail"]["message_id"] == dead.id
    (line,) = [r for r in caplog.records if r.name == "shipyard.events.alerts"]
    assert line.levelname == "WARNING" and dead.id in line.getMessage()
    assert "trigger.fragile" in line.getMessage()


def test_pause_resume_and_delete(sqlite_store: Store) -> None:
    store = sqlite_store
    bus.create_subscription(store, CTX, "seen", "out")
    triggers.create_trigger(store, CTX, "relay", topic="in",
                            action=actions.Publish(topic="out", data="{{ event }}"))
    assert triggers.pause_trigger(store, CTX, "relay").paused
    bus.publish(store, CTX, "in", "held")
    assert _process(store) == 0
    triggers.resume_trigger(store, CTX, "relay")
    assert _process(store) == 1 and _drain(store, "seen") == ["held"]
    triggers.delete_trigger(store, CTX, "relay")
    with pytest.raises(NotFound):
        triggers.get_trigger(store, P, "relay")
    with pytest.raises(NotFound):
        bus.get_subscription(store, P, "trigger.relay")


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[Any]]]:
    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_webhooks_go_through_the_outbound_guard(hook_server: tuple[str, list[Any]],
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    from shipyard.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}", cached=False)
    url, received = hook_server
    triggers.create_trigger(store, CTX, "notify", topic="in", max_attempts=1,
                            action=actions.Webhook(url=url, body={"model": "{{ event.m }}"}))
    monkeypatch.delenv("SHIPYARD_OUTBOUND_ALLOWLIST", raising=False)
    bus.publish(store, CTX, "in", {"m": "churn"})
    _process(store)  # nothing allowlisted: refused, never sent
    assert received == []
    (dead,) = bus.dead_letters(store, P, "trigger.notify")
    assert "not allowed" in dead.history[0]["outcome"] or "allow" in dead.history[0]["outcome"]
    monkeypatch.setenv("SHIPYARD_OUTBOUND_ALLOWLIST", "127.0.0.1")
    bus.publish(store, CTX, "in", {"m": "fraud"})
    _process(store)
    assert received == [{"model": "fraud"}]
    store.dispose()


def test_a_python_function_runs_in_a_child_process(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    from shipyard.store import open_store

    (tmp_path / "myhooks.py").write_text(
        "import os\n"
        "def on_alert(fired):\n"
        "    return {'pid': os.getpid(), 'model': fired['event']['model']}\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}", cached=False)
    triggers.create_trigger(store, CTX, "hook", topic="alerts",
                            action=actions.CallFunction(function="myhooks:on_alert"))
    bus.publish(store, CTX, "alerts", {"model": "churn"})
    assert _process(store) == 1
    (firing,) = triggers.list_firings(store, P, "hook")
    assert firing.state == "done" and firing.result is not None
    returned = firing.result["returned"]
    assert returned["model"] == "churn" and returned["pid"] != __import__("os").getpid()
    store.dispose()


def test_a_run_pipeline_action_acting_again_for_one_firing_queues_one_run(store: Store
                                                                          ) -> None:
    """A worker killed after queueing the run and before recording its firing acts again
    on the redelivered message: the firing's key finds the run it queued."""
    @dsl.pipeline(name="retrain")
    def retrain(version: int) -> None:
        steps.add(a=version, b=1)

    action = actions.RunPipeline(pipeline="retrain", spec=dump_spec(to_spec(retrain)[0]),
                                 arguments={"version": 3})
    ctx = RequestContext(project=P, actor="tester", client="trigger:t")
    first = perform(store, None, None, ctx, action, {"idempotency_key": "trigger:t:m1"})
    again = perform(store, None, None, ctx, action, {"idempotency_key": "trigger:t:m1"})
    other = perform(store, None, None, ctx, action, {"idempotency_key": "trigger:t:m2"})
    assert again == first and other["pipeline_run_id"] != first["pipeline_run_id"]
    with store.read() as conn:
        assert len(conn.execute(select(pipeline_runs.c.id)).scalars().all()) == 2
