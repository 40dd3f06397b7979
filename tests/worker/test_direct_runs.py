"""A run started without the queue is leased to the process that runs it (issue 23).

``run_pipeline`` without ``submit`` runs in its caller's process; a real process doing so
is SIGKILLed mid-run, and once its lease has run out a worker fails the run (it cannot
take it over), naming the process and the retry command, with no task left RUNNING.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from shipyard.pipelines.queue import Lease, recover_lost_runs
from shipyard.store.schema import pipeline_runs
from shipyard.store.types import utcnow
from tests.worker.test_leases import Setup, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("store_uri", ["sqlite", "postgres"], indirect=True)
def test_a_killed_direct_run_is_failed_by_a_worker(setup: Setup) -> None:
    script = textwrap.dedent(f"""
        from shipyard.config import Settings
        from shipyard.context import RequestContext
        from shipyard.pipelines import run_pipeline
        from shipyard.runtime import open_runtime
        from tests.worker.test_leases import gated_pipeline

        settings = Settings.resolve()
        with open_runtime(settings, cached=False) as rt:
            run_pipeline(rt.store, rt.artifacts, RequestContext(project="default", actor="me"),
                         gated_pipeline, {{"x": 4, "gate": {str(setup.gate)!r},
                                           "mark": {str(setup.mark)!r}}},
                         settings=rt.settings)
    """)
    env = {**setup.env, "SHIPYARD_URI": setup.uri, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: setup.starts() == 1, timeout=60)
        with setup.runtime.store.read() as conn:
            run_id = conn.execute(select(pipeline_runs.c.id)).scalar_one()
        wait_for(lambda: setup.gated_running(run_id))  # "first"'s end recorded too
        with setup.runtime.store.read() as conn:
            row = conn.execute(select(pipeline_runs)).one()
        assert row.state == "RUNNING"
        assert row.claimed_by.startswith("direct:") and row.claimed_by.endswith(f"-{proc.pid}")
        assert row.lease_until > utcnow()  # held while it runs
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()

    lease = Lease(heartbeat=0.2, timeout=1.0)
    assert recover_lost_runs(setup.runtime.store, "w", lease) == []  # its lease holds yet
    with setup.runtime.store.write() as conn:  # the lease runs out (30 s by default)
        conn.execute(update(pipeline_runs).values(lease_until=utcnow() - timedelta(seconds=1)))
    [failed] = recover_lost_runs(setup.runtime.store, "w", lease)
    assert failed.id == row.id and failed.state == "FAILED"
    assert failed.error is not None
    assert failed.error.startswith(f"the process that ran it, {row.claimed_by[7:]}, stopped "
                                   "heartbeating")
    assert failed.error.endswith(f"'shipyard pipelines retry {row.id}' runs it again, "
                                 "reusing finished steps")
    assert failed.tasks["first"].state == "SUCCEEDED"
    assert failed.tasks["gated"].state == "FAILED"
    assert not any(t.state == "RUNNING" for t in failed.tasks.values())
