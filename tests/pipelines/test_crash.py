"""A runner killed with SIGKILL mid-run leaves no cache entry for unfinished steps, no step
process behind, and a run that ``retry`` finishes from its completed steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from sqlalchemy import func, select

from shipyard.pipelines import (
    cancel_pipeline_run,
    get_pipeline_run,
    list_pipeline_runs,
    retry_pipeline_run,
)
from shipyard.store.schema import (
    cache_entries,
    events,
    executions,
    lineage_artifacts,
    pipeline_tasks,
)
from tests.pipelines.conftest import Env

SCRIPT = textwrap.dedent(
    """
    import sys
    from shipyard import dsl
    from shipyard.artifacts import open_artifact_store
    from shipyard.config import Settings
    from shipyard.context import RequestContext
    from shipyard.pipelines import run_pipeline
    from shipyard.store import open_store

    @dsl.component
    def quick(out: dsl.Output[dsl.Dataset], ledger: str) -> None:
        with open(ledger, "a") as f:
            f.write("quick\\n")
        with open(out.path, "w") as f:
            f.write("data")

    @dsl.component
    def hang(data: dsl.Input[dsl.Dataset], marker: str, out: dsl.Output[dsl.Dataset]) -> None:
        import os, time
        with open(out.path, "w") as f:
            f.write("hung")
        if os.path.exists(marker):  # the retry: finish
            return
        parent = os.getppid()
        with open(marker + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(marker + ".tmp", marker)
        while os.getppid() == parent:  # until killed, or orphaned
            time.sleep(0.1)

    @dsl.pipeline(name="killed")
    def killed(marker: str, ledger: str) -> None:
        hang(data=quick(ledger=ledger).outputs["out"], marker=marker)

    uri, arts, home, marker, ledger = sys.argv[1:]
    settings = Settings.resolve(home=home, uri=uri, artifacts=arts)
    run_pipeline(open_store(uri), open_artifact_store(arts), RequestContext(project="default"),
                 killed, {"marker": marker, "ledger": ledger}, settings=settings)
    """
)


def _kill_runner_mid_run(env: Env) -> int:
    """Start the script's runner, SIGKILL it while ``hang`` runs; the step's pid."""
    script = env.tmp / "runner.py"
    script.write_text(SCRIPT)
    marker = env.tmp / "marker"
    args = [env.settings.uri, env.settings.artifacts, str(env.settings.home), str(marker),
            str(env.tmp / "ledger")]  # fmt: skip
    runner = subprocess.Popen([sys.executable, str(script), *args])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert runner.poll() is None, "the runner ended early"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
    return int(marker.read_text())


def _gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_sigkilled_runner_leaves_no_half_recorded_cache(env: Env) -> None:
    step_pid = _kill_runner_mid_run(env)
    assert _gone(step_pid), "the step outlived its runner"
    with env.store.read() as conn:
        entries = conn.execute(select(cache_entries)).fetchall()
        tasks = dict(conn.execute(select(pipeline_tasks.c.name, pipeline_tasks.c.state)).all())
    assert tasks == {"quick": "SUCCEEDED", "hang": "RUNNING"}
    assert len(entries) == 1  # quick's, whose outputs are stored
    digest = entries[0].outputs["out"]["artifact"]["digest"]
    assert env.artifacts.exists(digest)
    run_id = _run_id(env)
    cancelled = cancel_pipeline_run(env.store, env.ctx, run_id, force=True)
    assert cancelled.state == "CANCELLED" and cancelled.tasks["hang"].state == "CANCELLED"
    with env.store.read() as conn:
        state = conn.execute(
            select(executions.c.state).where(
                executions.c.id == cancelled.tasks["hang"].execution_id
            )
        ).scalar()
    assert state == "CANCELED"


def test_retry_after_a_killed_runner_resumes_without_duplicates(env: Env) -> None:
    _kill_runner_mid_run(env)
    run_id = _run_id(env)
    before = get_pipeline_run(env.store, "default", run_id)
    cancel_pipeline_run(env.store, env.ctx, run_id, force=True)
    retried = retry_pipeline_run(env.store, env.artifacts, env.ctx, run_id, settings=env.settings)
    assert retried.state == "SUCCEEDED"
    assert (env.tmp / "ledger").read_text() == "quick\n"  # quick did not run again
    assert retried.tasks["quick"].execution_id == before.tasks["quick"].execution_id
    assert retried.tasks["quick"].outputs == before.tasks["quick"].outputs
    with env.store.read() as conn:
        names = conn.execute(select(lineage_artifacts.c.name)).scalars().all()
        outputs = conn.execute(
            select(events.c.execution_id, events.c.name).where(events.c.kind == "output")
        ).all()
        entries = conn.execute(select(func.count()).select_from(cache_entries)).scalar()
    # One artifact and one output event per output, one cache entry per step.
    assert sorted(names) == ["hang.out", "quick.out"]
    assert len(outputs) == 2 and len(set(outputs)) == 2
    assert entries == 2


def _run_id(env: Env) -> str:
    (run,) = list_pipeline_runs(env.store, "default")
    return run.id
