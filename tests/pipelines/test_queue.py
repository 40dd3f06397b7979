"""Queued runs, workers claiming them, cancelling, and reading runs back."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from shipyard import dsl
from shipyard.errors import FailedPrecondition, NotFound
from shipyard.pipelines import (
    cancel_pipeline_run,
    claim_and_run_next,
    get_pipeline_run,
    list_pipeline_runs,
)
from shipyard.store.schema import audit_log
from tests.pipelines import steps
from tests.pipelines.conftest import Env


@dsl.pipeline(name="queued")
def queued(value: str = "hi") -> None:
    steps.echo(value=value)


def test_submit_then_worker_claims_and_runs(env: Env) -> None:
    submitted = env.run(queued, {"value": "hello"}, submit=True)
    assert submitted.state == "QUEUED" and submitted.tasks == {}
    run = claim_and_run_next(env.store, env.artifacts, "worker-1", settings=env.settings)
    assert run is not None and run.id == submitted.id
    assert run.state == "SUCCEEDED" and run.claimed_by == "worker-1"
    assert run.tasks["echo"].outputs["Output"] == "hello"
    assert claim_and_run_next(env.store, env.artifacts, "worker-1") is None
    with env.store.read() as conn:
        actions = conn.execute(select(audit_log.c.action)).scalars().all()
    assert "pipelines.run.create" in actions


def test_cancel_queued_and_finished_runs(env: Env) -> None:
    submitted = env.run(queued, submit=True)
    cancelled = cancel_pipeline_run(env.store, env.ctx, submitted.id)
    assert cancelled.state == "CANCELLED"
    assert claim_and_run_next(env.store, env.artifacts, "w") is None
    with pytest.raises(FailedPrecondition):
        cancel_pipeline_run(env.store, env.ctx, submitted.id)
    with pytest.raises(NotFound):
        get_pipeline_run(env.store, "default", "0" * 32)


@dsl.pipeline(name="long")
def long_running() -> None:
    steps.sleep(seconds=30.0, tag="long")


def test_cancel_running_run_kills_its_steps(env: Env) -> None:
    submitted = env.run(long_running, submit=True)
    results: list[object] = []
    worker = threading.Thread(
        target=lambda: results.append(
            claim_and_run_next(env.store, env.artifacts, "w", settings=env.settings)
        )
    )
    started = time.monotonic()
    worker.start()
    while get_pipeline_run(env.store, "default", submitted.id).tasks.get("sleep") is None:
        time.sleep(0.05)
    cancel_pipeline_run(env.store, env.ctx, submitted.id)
    worker.join(timeout=20)
    assert time.monotonic() - started < 15
    run = get_pipeline_run(env.store, "default", submitted.id)
    assert run.state == "CANCELLED"
    assert run.tasks["sleep"].state == "CANCELLED"


def test_list_runs_filters(env: Env) -> None:
    first = env.run(queued, submit=True)
    second = env.run(long_running, submit=True)
    assert [r.id for r in list_pipeline_runs(env.store, "default")] == [second.id, first.id]
    named = list_pipeline_runs(env.store, "default", pipeline_name="queued")
    assert [r.id for r in named] == [first.id]
    assert list_pipeline_runs(env.store, "other") == []
    assert len(list_pipeline_runs(env.store, "default", state="QUEUED")) == 2


def test_workers_claiming_at_once_take_different_runs(env: Env) -> None:
    from shipyard.pipelines.queue import _claim

    submitted = {env.run(queued, {"value": str(i)}, submit=True).id for i in range(6)}
    start = threading.Barrier(3, timeout=30)
    claims: list[str] = []

    def worker(name: str) -> None:
        start.wait()
        while (claimed := _claim(env.store, name, None)) is not None:
            claims.append(claimed[0])

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claims) == sorted(submitted), "each queued run is claimed exactly once"
    for run_id in submitted:
        run = get_pipeline_run(env.store, "default", run_id)
        assert run.state == "RUNNING" and run.claimed_by in ("w0", "w1", "w2")
