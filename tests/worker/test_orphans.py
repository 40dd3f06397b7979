"""A SIGKILLed worker leaves no step running (issue 23).

Only one process is killed (``kill -9 <pid>``, as the OOM killer does), not its process
group: the step's process, in a session of its own, must still end with it, whether it
was forked from a warm launcher (the worker or that launcher killed) or started cold.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.worker.test_leases import Setup, wait_for


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name; None once it has ended."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return None if fields[0] in ("Z", "X") else fields  # a zombie has ended


def _alive(pid: int) -> bool:
    return _stat(pid) is not None


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
@pytest.mark.parametrize("victim", ["worker", "launcher"])
def test_a_killed_workers_forked_steps_end_with_it(setup: Setup, victim: str) -> None:
    run = setup.submit()
    worker = setup.worker()
    try:
        wait_for(lambda: setup.gated_running(run.id), timeout=60)
        step = int(setup.mark.read_text().split()[0])
        fields = _stat(step)
        assert fields is not None
        launcher = int(fields[1])  # the step's parent: the warm launcher it forked from
        assert launcher != worker.pid and _alive(launcher)
        os.kill(worker.pid if victim == "worker" else launcher, signal.SIGKILL)
        wait_for(lambda: not _alive(step), timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate()


def test_a_cold_step_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    """``_process.spawn`` (a step started cold) from a parent that is then SIGKILLed."""
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from shipyard.pipelines._process import spawn
            child = spawn([sys.executable, "-c", "import time; time.sleep(120)"],
                          log={str(tmp_path / "log")!r}, env={{}}, cwd={str(tmp_path)!r})
            print(child.pid, flush=True)
            time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait()
        wait_for(lambda: not _alive(child), timeout=10)
    finally:
        os.killpg(parent.pid, signal.SIGKILL) if parent.poll() is None else None
        parent.communicate()
