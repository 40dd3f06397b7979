"""A runner killed with SIGKILL mid-run leaves no cache entry for unfinished steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from sqlalchemy import select

from shipyard.pipelines import cancel_pipeline_run, list_pipeline_runs
from shipyard.store.schema import cache_entries, pipeline_tasks
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
    def quick(out: dsl.Output[dsl.Dataset]) -> None:
        with open(out.path, "w") as f:
            f.write("data")

    @dsl.component
    def hang(data: dsl.Input[dsl.Dataset], marker: str) -> None:
        import os, time
        parent = os.getppid()
        open(marker, "w").close()
        while os.getppid() == parent:  # ends once the runner is gone
            time.sleep(0.1)

    @dsl.pipeline(name="killed")
    def killed(marker: str) -> None:
        hang(data=quick().outputs["out"], marker=marker)

    uri, arts, home, marker = sys.argv[1:]
    settings = Settings.resolve(home=home, uri=uri, artifacts=arts)
    run_pipeline(open_store(uri), open_artifact_store(arts), RequestContext(project="default"),
                 killed, {"marker": marker}, settings=settings)
    """
)


def test_sigkilled_runner_leaves_no_half_recorded_cache(env: Env) -> None:
    script = env.tmp / "runner.py"
    script.write_text(SCRIPT)
    marker = env.tmp / "marker"
    args = [env.settings.uri, env.settings.artifacts, str(env.settings.home), str(marker)]
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


def _run_id(env: Env) -> str:
    (run,) = list_pipeline_runs(env.store, "default")
    return run.id
