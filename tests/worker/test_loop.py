"""The worker runs a list of job sources: in turn, sleeping only when none had work."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipyard import dsl
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import Unavailable
from shipyard.pipelines import get_pipeline_run, run_pipeline
from shipyard.runtime import Runtime, open_runtime
from shipyard.worker import JobSource, PipelineQueue, default_sources, run_worker, start_worker
from shipyard.worker.event_sources import DataWatches, PushDeliveries
from shipyard.worker.sources import SilentRuns


@dataclass
class Scripted:
    """A source whose answers are scripted: True (had work), False, or an exception."""

    name: str
    answers: list[bool | BaseException]
    calls: list[str]  # shared between sources: the order the worker asked them in
    workers: list[str] = field(default_factory=list)

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        self.calls.append(self.name)
        self.workers.append(worker_name)
        answer = self.answers.pop(0) if self.answers else False
        if isinstance(answer, BaseException):
            raise answer
        return answer


class StopWhenIdle(threading.Event):
    """Records when the worker sleeps, and stops it at the first sleep after ``idle`` ones."""

    def __init__(self, calls: list[str], idle: int = 1) -> None:
        super().__init__()
        self.calls = calls
        self.idle = idle
        self.sleeps: list[tuple[int, float | None]] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.sleeps.append((len(self.calls), timeout))
        if len(self.sleeps) >= self.idle:
            self.set()
        return self.is_set()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings.resolve(home=tmp_path / "home", artifacts=str(tmp_path / "blobs"),
                                environ={})
    with open_runtime(settings, cached=False) as rt:
        yield rt


def test_sources_take_turns_and_the_worker_sleeps_only_when_all_are_idle(
    runtime: Runtime,
) -> None:
    calls: list[str] = []
    busy = Scripted("busy", [True, True, True], calls)
    once = Scripted("once", [True], calls)
    stop = StopWhenIdle(calls)
    run_worker(runtime, [busy, once], stop, poll_seconds=0.25, name="w1")
    # Every pass asks every source once: the busy one cannot starve the other.
    assert calls == ["busy", "once", "busy", "once", "busy", "once", "busy", "once"]
    # One sleep, after the first pass in which neither had work, for poll_seconds.
    assert stop.sleeps == [(8, 0.25)]
    assert set(busy.workers) == {"w1"}


def test_a_failing_source_is_logged_and_the_others_go_on(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    broken = Scripted("broken", [Unavailable("the database is busy"), RuntimeError("bug")],
                      calls)
    fine = Scripted("fine", [True, True], calls)
    stop = StopWhenIdle(calls)
    with caplog.at_level(logging.WARNING, logger="shipyard.worker"):
        run_worker(runtime, [broken, fine], stop, poll_seconds=0.01)
    assert calls.count("fine") == 3 and calls.count("broken") == 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("broken: the database is busy" in m for m in messages)
    assert any("the broken job source failed" in m for m in messages)
    assert {getattr(r, "job_source", None) for r in caplog.records} == {"broken"}


def test_start_worker_runs_in_a_thread_until_stopped(runtime: Runtime) -> None:
    calls: list[str] = []
    source = Scripted("idle", [], calls)
    thread, stop = start_worker(runtime, [source], poll_seconds=0.01)
    try:
        assert thread.daemon and thread.name == "shipyard-worker"
        deadline = threading.Event()
        while len(calls) < 3 and not deadline.wait(0.01):
            pass
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive() and len(calls) >= 3


@dsl.component
def triple(x: int) -> int:
    return 3 * x


@dsl.pipeline(name="tripler")
def tripler(x: int = 2) -> None:
    triple(x=x)


def test_the_pipeline_queue_source_runs_queued_runs(runtime: Runtime) -> None:
    kinds = [type(s) for s in default_sources()]
    assert kinds[:2] == [PipelineQueue, SilentRuns]
    assert {PushDeliveries, DataWatches} <= set(kinds)
    source: JobSource = PipelineQueue()
    assert isinstance(source, JobSource) and source.name == "pipelines"
    assert source.claim_and_run(runtime, "w") is False  # nothing queued
    ctx = RequestContext(project="default", actor="tester")
    queued = run_pipeline(runtime.store, runtime.artifacts, ctx, tripler, {"x": 5},
                          settings=runtime.settings, submit=True)
    assert source.claim_and_run(runtime, "w") is True
    run = get_pipeline_run(runtime.store, "default", queued.id)
    assert run.state == "SUCCEEDED" and run.claimed_by == "w"
    assert run.tasks["triple"].outputs["Output"] == 15
    assert source.claim_and_run(runtime, "w") is False


def test_a_project_queue_takes_only_its_project(runtime: Runtime) -> None:
    other = RequestContext(project="other", actor="tester")
    run_pipeline(runtime.store, runtime.artifacts, other, tripler, {}, submit=True,
                 settings=runtime.settings)
    assert PipelineQueue(project="default").claim_and_run(runtime, "w") is False
