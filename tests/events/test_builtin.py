"""Built-in events (issue 20): the registry and the pipeline runner announce their changes
on the bus inside the transaction of the change, so a subscription sees each committed
change once, with the payload keys ``shipyard.events.builtin`` lists, and nothing for a
change that rolled back."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sqlalchemy import func, select

from shipyard import dsl
from shipyard.artifacts import ArtifactStore, open_artifact_store
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import AlreadyExists, FailedPrecondition
from shipyard.events import builtin, bus
from shipyard.events.models import Message
from shipyard.pipelines import cancel_pipeline_run, get_pipeline_run, run_pipeline
from shipyard.pipelines.queue import Lease, claim_and_run_next
from shipyard.registry import (
    _rows,
    delete_alias,
    get_model,
    register_model,
    rollback,
    set_alias,
    set_status,
)
from shipyard.registry.aliases import move_alias
from shipyard.store import Store, open_store
from shipyard.store.schema import event_messages

CTX = RequestContext(project="default", actor="alice")
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
Y = np.array([0.0, 1.0, 2.0, 3.0])


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store(str(tmp_path / "artifacts"), cached=False)


def drain(store: Store, subscription: str) -> list[Message]:
    """Every message, acknowledging as it goes (events about one subject share an ordering
    key, so the next is delivered once the one before is acknowledged)."""
    got: list[Message] = []
    while batch := bus.pull(store, "default", subscription, max_messages=100):
        assert bus.ack(store, "default", subscription, [m.lease_token for m in batch]) == len(
            batch)
        got.extend(batch)
    return got


def register(store: Store, artifacts: ArtifactStore, **kw: Any) -> int:
    model = LinearRegression().fit(X, Y)
    return register_model(store, artifacts, CTX, "lead", model, input_example=X, **kw).version


def test_registering_and_moving_aliases_announce_each_change(
    store: Store, artifacts: ArtifactStore
) -> None:
    bus.create_subscription(store, CTX, "registered", builtin.VERSION_REGISTERED)
    bus.create_subscription(store, CTX, "moved", builtin.ALIAS_MOVED)
    register(store, artifacts, aliases=["staging"])
    register(store, artifacts)
    set_alias(store, CTX, "lead", "production", 2, reason="better rmse")
    set_alias(store, CTX, "lead", "production", 2, reason="no-op")  # not a move: no event
    with pytest.raises(FailedPrecondition):  # staging had no earlier version
        rollback(store, CTX, "lead", "staging")
    set_alias(store, CTX, "lead", "staging", 2, reason="promote")
    rollback(store, CTX, "lead", "staging", reason="regression")
    delete_alias(store, CTX, "lead", "production", reason="retiring")

    registered = drain(store, "registered")
    assert [m.data for m in registered] == [
        {"event": "model-version-registered", "model": "lead", "version": v, "run_id": None,
         "registered_by": "alice"} for v in (1, 2)]
    assert all(m.ordering_key == "lead" for m in registered)
    moved = [m.data for m in drain(store, "moved")]
    keys = {"event", "model", "alias", "version", "previous_version", "reason"}
    assert all(set(m) == keys and m["event"] == "model-alias-moved" for m in moved)
    assert [(m["alias"], m["previous_version"], m["version"], m["reason"]) for m in moved] == [
        ("staging", None, 1, "set at registration"),
        ("production", None, 2, "better rmse"),
        ("staging", 1, 2, "promote"),
        ("staging", 2, 1, "regression"),
        ("production", 2, None, "retiring"),
    ]


def test_a_change_that_rolls_back_announces_nothing(
    store: Store, artifacts: ArtifactStore
) -> None:
    register(store, artifacts, semver="1.0.0")
    # Nobody subscribed yet: nothing was written (no subscription could ever get it).
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(event_messages)).scalar() == 0
    bus.create_subscription(store, CTX, "moved", builtin.ALIAS_MOVED)
    bus.create_subscription(store, CTX, "registered", builtin.VERSION_REGISTERED)
    # The alias moved (its event written), then the rest of the change failed.
    with pytest.raises(RuntimeError), store.write() as conn:
        model = _rows.model_row(conn, "default", "lead", lock=True)
        move_alias(conn, CTX, model, "production", 1, reason="about to fail")
        raise RuntimeError("the rest of the change failed")
    with pytest.raises(AlreadyExists):  # semver taken: the version is not registered
        register(store, artifacts, semver="1.0.0", aliases=["production"])
    set_status(store, CTX, "lead", 1, "retired")
    with pytest.raises(FailedPrecondition):  # a retired version takes no alias
        set_alias(store, CTX, "lead", "production", 1)
    assert bus.pull(store, "default", "moved") == []
    assert bus.pull(store, "default", "registered") == []
    assert get_model(store, "default", "lead").aliases == {}


@dsl.component
def divide(x: float, y: float) -> float:
    return x / y


@dsl.pipeline(name="ratio")
def ratio(x: float = 1.0, y: float = 2.0) -> None:
    divide(x=x, y=y)


def test_pipeline_runs_announce_how_they_finished(
    store: Store, artifacts: ArtifactStore, home: Path, tmp_path: Path
) -> None:
    uri = store.engine.url.render_as_string(hide_password=False)
    settings = Settings.resolve(home=home, uri=uri, artifacts=str(tmp_path / "artifacts"),
                                project="default")
    bus.create_subscription(store, CTX, "runs", builtin.PIPELINE_RUN_FINISHED)
    ok = run_pipeline(store, artifacts, CTX, ratio, {"y": 4.0}, inline=True, settings=settings)
    bad = run_pipeline(store, artifacts, CTX, ratio, {"y": 0.0}, inline=True,
                       settings=settings, raise_on_error=False)
    queued = run_pipeline(store, artifacts, CTX, ratio, submit=True, settings=settings)
    cancel_pipeline_run(store, CTX, queued.id)
    assert claim_and_run_next(store, artifacts, "w", settings=settings) is None
    got = [m.data for m in drain(store, "runs")]
    assert [(m["run_id"], m["state"]) for m in got] == [
        (ok.id, "SUCCEEDED"), (bad.id, "FAILED"), (queued.id, "CANCELLED")]
    assert all(set(m) == {"event", "pipeline", "run_id", "state", "error"} for m in got)
    assert all(m["pipeline"] == "ratio" and m["event"] == "pipeline-run-finished" for m in got)
    assert got[0]["error"] is None
    assert "ZeroDivisionError" in got[1]["error"] or "division" in got[1]["error"]
    assert got[2]["error"] == "cancelled"


@dsl.component
def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@dsl.pipeline(name="napper")
def napper(seconds: float = 2.0) -> None:
    nap(seconds=seconds)


def test_a_run_a_stopping_worker_hands_back_is_not_announced_until_it_ends(
    artifacts: ArtifactStore, home: Path, tmp_path: Path
) -> None:
    # The hand-back is the runner's logic, the same on both databases: SQLite only.
    uri = f"sqlite:///{tmp_path / 'handback.db'}"
    store = open_store(uri, cached=False)
    settings = Settings.resolve(home=home, uri=uri, artifacts=str(tmp_path / "artifacts"),
                                project="default")
    bus.create_subscription(store, CTX, "runs", builtin.PIPELINE_RUN_FINISHED)
    queued = run_pipeline(store, artifacts, CTX, napper, {"seconds": 2.0}, submit=True,
                          settings=settings)
    handback = threading.Event()
    lease = Lease(heartbeat=0.1, timeout=5.0)
    worker = threading.Thread(target=claim_and_run_next, args=(store, artifacts, "w"),
                              kwargs={"settings": settings, "handback": handback,
                                      "lease": lease})
    worker.start()
    deadline = time.monotonic() + 60
    while get_pipeline_run(store, "default", queued.id).tasks.get("nap") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    handback.set()  # the worker is stopping: the run goes back to the queue
    worker.join(timeout=60)
    assert get_pipeline_run(store, "default", queued.id).state == "QUEUED"
    assert drain(store, "runs") == []
    done = claim_and_run_next(store, artifacts, "w2", settings=settings)
    assert done is not None and done.state == "SUCCEEDED"
    assert [(m.data["run_id"], m.data["state"]) for m in drain(store, "runs")] == [
        (queued.id, "SUCCEEDED")]
    store.dispose()
