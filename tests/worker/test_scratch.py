"""Leftovers of killed processes in the temporary directory are removed at start, and only
those no live process owns (issue 23, item 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.worker.scratch import clean_leftover_scratch
from tests.worker.test_leases import Setup, stop, wait_for

HOUR_AGO = time.time() - 3600


def _age(path: Path) -> Path:
    """As if it was left an hour ago (its contents too)."""
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.utime(os.path.join(folder, name), (HOUR_AGO, HOUR_AGO))
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


def _folder(tmp: Path, name: str) -> Path:
    path = tmp / name
    (path / "step-a" / "outputs").mkdir(parents=True)
    (path / "step-a" / "outputs" / "model").write_text("x")
    return _age(path)


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_only_leftovers_no_live_process_owns_are_removed(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]],
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # Left by a process that was killed: nobody inside, unchanged for an hour.
    dead_run = _folder(tmp, "shipyard-run-0a1b2c3d-x1")
    dead_upload = tmp / "shipyard-upload-k2"
    dead_upload.write_bytes(b"half an upload")
    _age(dead_upload)
    # A live step works inside its folder (its working directory).
    live_run = _folder(tmp, "shipyard-run-4e5f6a7b-x2")
    sleepers.append(subprocess.Popen(["sleep", "60"], cwd=live_run / "step-a"))
    # A live upload holds its file open.
    live_upload = tmp / "shipyard-upload-k3"
    live_upload.write_bytes(b"receiving")
    _age(live_upload)
    sleepers.append(subprocess.Popen(
        [sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'rb'); time.sleep(60)",
         str(live_upload)]))  # fmt: skip
    # Left a moment ago (a live run between two steps looks like this).
    young = tmp / "shipyard-run-8c9d0e1f-x3"
    young.mkdir()
    # Not ours to judge.
    other = _folder(tmp, "shipyard-model-x4")
    wait_for(lambda: all(_has_open(p, live_upload) for p in sleepers[1:]), timeout=10)

    removed = clean_leftover_scratch(tmp, grace=60)

    assert sorted(removed) == sorted([dead_run, dead_upload])
    assert not dead_run.exists() and not dead_upload.exists()
    assert live_run.exists() and live_upload.exists() and young.exists() and other.exists()
    # Once the live ones' processes are gone, they are leftovers too.
    for proc in sleepers:
        proc.kill()
        proc.wait()
    _age(live_run)
    assert sorted(clean_leftover_scratch(tmp, grace=60)) == sorted([live_run, live_upload])
    assert young.exists()


def _has_open(proc: subprocess.Popen[bytes], path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{proc.pid}/fd")
    except OSError:
        return False
    return any(os.readlink(f"/proc/{proc.pid}/fd/{fd}") == str(path) for fd in fds
               if os.path.exists(f"/proc/{proc.pid}/fd/{fd}"))


def test_a_starting_worker_removes_what_a_killed_worker_left(
    setup: Setup, tmp_path: Path,
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    setup.env["TMPDIR"] = str(tmp)
    queued = setup.submit()
    a = setup.worker()
    try:
        wait_for(lambda: setup.gated_running(queued.id))
    finally:
        stop(a)  # SIGKILL, its steps with it
    [left] = list(tmp.glob(f"shipyard-run-{queued.id[:8]}-*"))
    time.sleep(0.2)  # the killed step's process is gone from /proc
    _age(left)
    setup.gate.touch()
    b = setup.worker()
    try:
        wait_for(lambda: not left.exists(), timeout=30)
        wait_for(lambda: setup.run(queued.id).state == "SUCCEEDED")
    finally:
        stop(b, signal.SIGTERM)
    assert setup.run(queued.id).tasks["gated"].outputs["Output"] == 50
