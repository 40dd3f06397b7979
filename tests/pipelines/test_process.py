"""Child processes leading a process group of their own (``_process``)."""

from __future__ import annotations

import os
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path

from shipyard.pipelines._process import spawn

# Starts a grandchild in the child's group, says its pid, then waits to be killed.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen(["sleep", "60"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat[stat.rindex(")") + 2] == "Z":
            return True
        time.sleep(0.02)
    return False


def test_killing_the_process_kills_its_group(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    process = spawn([sys.executable, "-c", PARENT], log=str(log), env=os.environ, cwd=str(tmp_path))
    deadline = time.monotonic() + 30
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.02)
    grandchild = int(log.read_text())
    assert os.getpgid(process.pid) == process.pid  # a group of its own
    assert process.returncode is None
    process.kill()
    assert process.returncode == -9
    assert _gone(grandchild)


def test_its_end_can_be_waited_on_with_other_descriptors(tmp_path: Path) -> None:
    process = spawn(
        [sys.executable, "-c", "print('hello')"],
        log=str(tmp_path / "log.txt"), env=os.environ, cwd=str(tmp_path),
    )  # fmt: skip
    if process.sentinel is not None:  # a pidfd (Linux 5.3 and later)
        assert wait([process.sentinel], timeout=30) == [process.sentinel]
    assert process.wait() == 0
    assert process.sentinel is None  # closed once reaped
    assert (tmp_path / "log.txt").read_text() == "hello\n"
