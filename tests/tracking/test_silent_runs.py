"""Runs whose client died end KILLED (issue 23, item 8): the SDK heartbeats for a run it
started, and the worker ends a RUNNING run whose lease ran out, as of the lease's end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from shipyard import audit
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import InvalidArgument, NotFound
from shipyard.runtime import open_runtime
from shipyard.store import Store
from shipyard.store.types import utcnow
from shipyard.tracking import service
from shipyard.worker.sources import SilentRuns

CTX = RequestContext(project="p1", actor="alice")


def test_a_run_whose_lease_ran_out_ends_killed_at_the_leases_end(store: Store) -> None:
    silent = service.create_run(store, CTX, "e")
    beating = service.create_run(store, CTX, "e")
    never = service.create_run(store, CTX, "e")  # a client that never heartbeats
    done = service.create_run(store, CTX, "e")
    for run in (silent, beating, done):
        assert service.heartbeat(store, CTX, run.id, 60) == "RUNNING"
    service.set_terminated(store, CTX, done.id, "FINISHED")
    later = utcnow() + timedelta(seconds=90)
    service.heartbeat(store, CTX, beating.id, 3600)

    assert service.end_silent_runs(store, now=later) == [silent.id]
    ended = service.get_run(store, "p1", silent.id)
    assert ended.status == "KILLED"
    assert ended.end_time is not None and ended.end_time < later - timedelta(seconds=20)
    assert service.get_run(store, "p1", beating.id).status == "RUNNING"
    assert service.get_run(store, "p1", never.id).status == "RUNNING"
    assert service.get_run(store, "p1", done.id).status == "FINISHED"
    assert service.end_silent_runs(store, now=later) == []  # once
    # A client that comes back learns its run was ended, and stops beating.
    assert service.heartbeat(store, CTX, silent.id, 60) == "KILLED"
    events = audit.query(store, project="p1", action="runs.update")
    assert any(e["resource"] == f"runs/{silent.id}" and e["detail"]["status"] == "KILLED"
               for e in events)


@pytest.mark.parametrize("lease", [0, 0.5, -1, 86_401, float("nan"), True, "60"])
def test_a_bad_lease_names_the_field(store: Store, lease: object) -> None:
    run = service.create_run(store, CTX, "e")
    with pytest.raises(InvalidArgument) as info:
        service.heartbeat(store, CTX, run.id, lease)  # type: ignore[arg-type]
    assert info.value.field == "lease_seconds"
    with pytest.raises(NotFound):
        service.heartbeat(store, CTX, "f" * 32, 60)


TRAINING = """
import sys, time
import shipyard as sy
sy.init(uri=sys.argv[1], home=sys.argv[2], project="p1")
run = sy.start_run("train")
run.log_metric("loss", 0.5)
time.sleep(1.0)  # the heartbeat thread's first beat, even on a busy machine
print(run.id, flush=True)
time.sleep(120)
"""


def test_a_killed_training_process_leaves_no_run_running(tmp_path: Path) -> None:
    home = tmp_path / "home"
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    command = [sys.executable, "-c", TRAINING, uri, str(home)]
    # The killed process vouches for 1.2 s at a time; the live one for 20 s, so that a slow
    # machine cannot make it miss a beat during the test.
    killed = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "SHIPYARD_RUN_HEARTBEAT": "0.3"})
    alive = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "SHIPYARD_RUN_HEARTBEAT": "5"})
    try:
        assert killed.stdout is not None and alive.stdout is not None
        killed_id, alive_id = killed.stdout.readline().strip(), alive.stdout.readline().strip()
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        runtime = open_runtime(Settings.resolve(home=home, uri=uri, environ={}),
                               cached=False)
        with runtime:
            deadline = time.monotonic() + 60
            while not SilentRuns(every=0).claim_and_run(runtime, "w1"):
                assert time.monotonic() < deadline, "the killed run was never ended"
                time.sleep(0.2)
            gone = service.get_run(runtime.store, "p1", killed_id)
            assert gone.status == "KILLED" and gone.metrics == {"loss": 0.5}
            assert service.get_run(runtime.store, "p1", alive_id).status == "RUNNING"
            assert SilentRuns(every=0).claim_and_run(runtime, "w1") is False
    finally:
        for process in (killed, alive):
            if process.poll() is None:
                process.kill()
                process.wait(10)
            if process.stdout is not None:
                process.stdout.close()
