"""A worker that dies or is stopped does not leave its pipeline run RUNNING (issue 23, 1).

Real ``shipyard worker`` processes on SQLite and PostgreSQL: one is SIGKILLed (with its
process group, as a container's kill) or sent SIGTERM in the middle of a run, and the run
is recovered by another worker within the lease, or handed back at once; its finished
tasks are not run again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from shipyard import dsl
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument
from shipyard.lineage import queries as lineage
from shipyard.pipelines import get_pipeline_run, run_pipeline
from shipyard.pipelines.models import PipelineRun
from shipyard.pipelines.queue import Lease, _claim, recover_lost_runs
from shipyard.runtime import Runtime, open_runtime
from shipyard.store.schema import pipeline_runs
from shipyard.store.types import utcnow

HEARTBEAT, LEASE = 0.2, 1.0


@dsl.component
def first(x: int) -> int:
    return x + 1


@dsl.component
def gated(y: int, gate: str, mark: str) -> int:
    import os
    import time

    with open(mark, "a") as f:  # one line per start of this step
        f.write(f"{os.getpid()}\n")
    while not os.path.exists(gate):
        time.sleep(0.02)
    return y * 10


@dsl.pipeline(name="gated")
def gated_pipeline(x: int = 1, gate: str = "", mark: str = "") -> None:
    y = first(x=x)
    gated(y=y.output, gate=gate, mark=mark)


@dataclass
class Setup:
    runtime: Runtime
    env: dict[str, str]
    uri: str
    gate: Path
    mark: Path

    def submit(self, gate: Path | None = None, mark: Path | None = None) -> PipelineRun:
        ctx = RequestContext(project="default", actor="tester")
        return run_pipeline(
            self.runtime.store, self.runtime.artifacts, ctx, gated_pipeline,
            {"x": 4, "gate": str(gate or self.gate), "mark": str(mark or self.mark)},
            settings=self.runtime.settings, submit=True)  # fmt: skip

    def run(self, run_id: str) -> PipelineRun:
        return get_pipeline_run(self.runtime.store, "default", run_id)

    def worker(self, *options: str) -> subprocess.Popen[str]:
        # A session of its own: killing its group takes its steps too, as a container's
        # kill would.
        return subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli.main", "--uri", self.uri, "worker",
             "--poll", "0.05", "--heartbeat", str(HEARTBEAT), "--lease", str(LEASE),
             *options],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # fmt: skip

    def starts(self) -> int:
        return len(self.mark.read_text().split()) if self.mark.exists() else 0

    def gated_running(self, run_id: str, starts: int = 1) -> bool:
        """The gated step has started ``starts`` times and "first"'s end is recorded (it
        may be written just after the next step's start)."""
        if self.starts() != starts:
            return False
        tasks = self.run(run_id).tasks
        return "first" in tasks and tasks["first"].state == "SUCCEEDED"


@pytest.fixture
def setup(store_uri: str, tmp_path: Path) -> Iterator[Setup]:
    home, blobs = tmp_path / "home", tmp_path / "blobs"
    settings = Settings.resolve(home=home, uri=store_uri, artifacts=str(blobs), environ={})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_HOME=str(home), SHIPYARD_ARTIFACTS=str(blobs))
    gate = tmp_path / "gate"
    with open_runtime(settings, cached=False) as runtime:
        try:
            yield Setup(runtime, env, store_uri, gate, tmp_path / "starts")
        finally:
            gate.touch()  # lets any step left behind finish


def wait_for(what: Callable[[], bool], timeout: float = 30.0) -> float:
    start = time.monotonic()
    while not what():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out")
        time.sleep(0.02)
    return time.monotonic() - start


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    out, _ = proc.communicate(timeout=30)
    return out


def test_a_killed_workers_run_is_requeued_and_finished_by_another(setup: Setup) -> None:
    queued = setup.submit()
    a = setup.worker()
    try:
        wait_for(lambda: setup.gated_running(queued.id))
        running = setup.run(queued.id)
        assert running.state == "RUNNING" and running.claimed_by == f"{os.uname()[1]}-{a.pid}"
        assert running.tasks["first"].state == "SUCCEEDED"
        first_execution = running.tasks["first"].execution_id
    finally:
        stop(a)  # SIGKILL: no chance to record anything
    killed_at = time.monotonic()
    assert setup.run(queued.id).state == "RUNNING"  # nobody knows yet
    b = setup.worker()
    try:
        # Recovered by b once the lease has run out, then claimed again by b.
        wait_for(lambda: setup.starts() == 2)
        recovered_after = time.monotonic() - killed_at
        again = setup.run(queued.id)
        assert again.state == "RUNNING" and again.claimed_by == f"{os.uname()[1]}-{b.pid}"
        assert again.error is not None and "stopped heartbeating" in again.error
        setup.gate.touch()
        wait_for(lambda: setup.run(queued.id).state == "SUCCEEDED")
    finally:
        out = stop(b, signal.SIGTERM)
    done = setup.run(queued.id)
    assert done.tasks["gated"].outputs["Output"] == 50 and done.error is None
    # The finished task was reused, not run again.
    assert done.tasks["first"].execution_id == first_execution
    assert done.tasks["first"].outputs["Output"] == 5
    # Recovery is bounded by the lease (plus b's start-up and one poll).
    assert LEASE <= recovered_after < LEASE + 10, recovered_after
    assert b.returncode == 0 and "stopped" in out


def test_pipelines_show_says_which_worker_holds_the_run(setup: Setup) -> None:
    queued = setup.submit()
    a = setup.worker()
    try:
        wait_for(lambda: setup.gated_running(queued.id))
        shown = subprocess.run(
            [sys.executable, "-m", "shipyard.cli.main", "--uri", setup.uri, "pipelines", "show",
             queued.id], env={**setup.env, "COLUMNS": "200"}, capture_output=True, text=True,
            timeout=120)  # fmt: skip
    finally:
        stop(a)
    assert shown.returncode == 0, shown.stderr
    assert f"claimed by {os.uname()[1]}-{a.pid}" in shown.stdout


def test_a_live_worker_keeps_its_run_past_the_lease(setup: Setup) -> None:
    queued = setup.submit()
    a = setup.worker()
    b = setup.worker()
    try:
        wait_for(lambda: setup.gated_running(queued.id))
        owner = setup.run(queued.id).claimed_by
        time.sleep(3 * LEASE)  # both workers poll and look for lost runs meanwhile
        still = setup.run(queued.id)
        assert still.state == "RUNNING" and still.claimed_by == owner and still.error is None
        assert setup.starts() == 1
        setup.gate.touch()
        wait_for(lambda: setup.run(queued.id).state == "SUCCEEDED")
    finally:
        stop(a, signal.SIGTERM)
        stop(b, signal.SIGTERM)
    assert setup.starts() == 1


def test_a_busy_worker_recovers_a_dead_workers_run(setup: Setup, tmp_path: Path) -> None:
    first_run = setup.submit()
    a = setup.worker()
    try:
        wait_for(lambda: setup.gated_running(first_run.id))
        # b is kept busy with a run of its own, gated elsewhere.
        gate_b, mark_b = tmp_path / "gate-b", tmp_path / "starts-b"
        second_run = setup.submit(gate_b, mark_b)
        b = setup.worker()
        wait_for(lambda: mark_b.exists())
    finally:
        stop(a)
    try:
        killed_at = time.monotonic()
        wait_for(lambda: setup.run(first_run.id).state == "QUEUED")
        recovered_after = time.monotonic() - killed_at
        assert setup.run(second_run.id).state == "RUNNING"  # b never stopped running it
        assert recovered_after < LEASE + 5 * HEARTBEAT + 2, recovered_after
    finally:
        gate_b.touch()
        stop(b, signal.SIGTERM)


def test_a_run_that_lost_its_worker_too_often_fails_with_no_task_running(
    setup: Setup,
) -> None:
    queued = setup.submit()
    a = setup.worker("--max-recoveries", "0")
    try:
        wait_for(lambda: setup.gated_running(queued.id))
    finally:
        stop(a)
    b = setup.worker("--max-recoveries", "0")
    try:
        wait_for(lambda: setup.run(queued.id).state == "FAILED")
    finally:
        stop(b, signal.SIGTERM)
    failed = setup.run(queued.id)
    assert failed.error is not None
    assert f"its worker {os.uname()[1]}-{a.pid} stopped heartbeating" in failed.error
    assert f"shipyard pipelines retry {queued.id}" in failed.error
    assert {t: i.state for t, i in failed.tasks.items()} == {"first": "SUCCEEDED",
                                                            "gated": "FAILED"}
    assert setup.starts() == 1
    # The step's lineage execution ended too.
    execution = failed.tasks["gated"].execution_id
    assert execution is not None
    assert lineage.get_execution(setup.runtime.store, "default", execution).state == "FAILED"


def test_sigterm_hands_the_run_back_after_the_drain(setup: Setup) -> None:
    queued = setup.submit()
    a = setup.worker("--drain", "0.3")
    try:
        wait_for(lambda: setup.gated_running(queued.id))
        os.kill(a.pid, signal.SIGTERM)
        a.wait(timeout=30)
        took = time.monotonic()
    finally:
        out = stop(a)
    assert a.returncode == 0, out
    back = setup.run(queued.id)
    assert back.state == "QUEUED" and back.claimed_by is None
    assert back.error is not None and "its worker was stopping" in back.error
    assert back.tasks["first"].state == "SUCCEEDED"
    assert back.tasks["gated"].state == "CANCELLED"
    # The next worker takes it at once (no lease to wait for) and reuses "first".
    setup.gate.touch()
    b = setup.worker()
    try:
        waited = wait_for(lambda: setup.run(queued.id).state == "SUCCEEDED")
    finally:
        stop(b, signal.SIGTERM)
    assert waited < LEASE + 10 and took > 0
    done = setup.run(queued.id)
    assert done.tasks["first"].execution_id == back.tasks["first"].execution_id
    assert done.tasks["gated"].outputs["Output"] == 50


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_a_stopping_server_hands_its_embedded_workers_run_back(setup: Setup) -> None:
    from tests.server.processes import start_server

    queued = setup.submit()
    server = start_server({**setup.env, "SHIPYARD_URI": setup.uri}, "--worker-heartbeat",
                          str(HEARTBEAT), "--worker-lease", str(LEASE))
    try:
        wait_for(lambda: setup.gated_running(queued.id), timeout=120)
        assert setup.run(queued.id).claimed_by == f"{os.uname()[1]}-{server.proc.pid}"
    finally:
        out = server.stop(signal.SIGTERM)  # what systemd and Kubernetes send
    back = setup.run(queued.id)
    assert back.state == "QUEUED" and back.claimed_by is None, out
    assert back.error is not None and "its worker was stopping" in back.error
    assert {t: i.state for t, i in back.tasks.items()} == {"first": "SUCCEEDED",
                                                          "gated": "CANCELLED"}


def test_sigterm_lets_the_run_finish_within_the_drain(setup: Setup) -> None:
    queued = setup.submit()
    a = setup.worker("--drain", "30")
    try:
        wait_for(lambda: setup.gated_running(queued.id))
        os.kill(a.pid, signal.SIGTERM)
        time.sleep(0.3)
        assert a.poll() is None  # draining
        setup.gate.touch()
        a.wait(timeout=30)
    finally:
        out = stop(a)
    assert a.returncode == 0, out
    done = setup.run(queued.id)
    assert done.state == "SUCCEEDED" and done.claimed_by == f"{os.uname()[1]}-{a.pid}"
    assert done.tasks["gated"].outputs["Output"] == 50


def test_a_beating_worker_keeps_its_run_and_a_cancelling_one_ends_cancelled(
    setup: Setup,
) -> None:
    store = setup.runtime.store
    lease = Lease(heartbeat=HEARTBEAT, timeout=LEASE)
    queued = setup.submit()
    assert _claim(store, "w-alive", None, lease) == (queued.id, "default")
    assert recover_lost_runs(store, "w-other", lease) == []  # its lease holds
    with store.write() as conn:  # its lease ran out while it was being cancelled
        conn.execute(update(pipeline_runs).where(pipeline_runs.c.id == queued.id).values(
            state="CANCELLING", lease_until=utcnow() - timedelta(seconds=1)))
    [ended] = recover_lost_runs(store, "w-other", lease)
    assert ended.id == queued.id and ended.state == "CANCELLED"
    assert ended.error is not None and "its worker w-alive stopped heartbeating" in ended.error
    with store.read() as conn:
        row = conn.execute(select(pipeline_runs.c.recoveries)
                           .where(pipeline_runs.c.id == queued.id)).one()
    assert row.recoveries == 0


@pytest.mark.parametrize(("options", "field", "message"), [
    ({"heartbeat": 0.0}, "heartbeat", "between 0.05 and 3600"),
    ({"heartbeat": 5.0, "timeout": 10.0}, "lease", "at least three heartbeats (15s)"),
    ({"max_recoveries": -1}, "max_recoveries", "between 0 and 100"),
])
def test_bad_lease_settings_name_the_field(options: dict[str, float], field: str,
                                           message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Lease(**options)  # type: ignore[arg-type]
    assert caught.value.field == field and message in caught.value.message


def test_the_worker_command_refuses_a_lease_shorter_than_three_beats(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", "--home", str(tmp_path), "worker",
         "--heartbeat", "2", "--lease", "5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--lease" in done.stderr and "at least three heartbeats (6s)" in done.stderr
