"""Real Ray heads for the tests (``ray start --head`` on 127.0.0.1).

A head takes 20-40 s to start on a loaded 2-core machine, so the tests that only need one
to be there share a head per test process (``ray_cluster_head``, session scope) and get
``RAY_ADDRESS`` pointing at it for their duration (``ray_head``). Tests that kill or restart
a head (test_ray_restart) start one of their own with ``Head``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest

from shipyard.pipelines import _ray

RAY = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
# Independent of any token in ~/.ray or telemetry settings another program left.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


class Head:
    """A Ray head of the tests' own (its processes in one process group, killed whole)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = _free_port()
        # Ray's socket paths must stay short: a folder directly under /tmp.
        self.temp = tempfile.mkdtemp(prefix="sy-ray-", dir="/tmp")
        self.group: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        starter = subprocess.Popen(
            [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
             "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={self.temp}"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # fmt: skip
        out, _ = starter.communicate(timeout=120)
        self.group = starter.pid  # its daemons stay in the group it led
        assert starter.returncode == 0, out
        wait_for(lambda: _ray.reachable(self.address), timeout=30)

    def kill(self) -> None:
        if self.group is not None:
            try:
                os.killpg(self.group, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.group = None
            wait_for(lambda: not _ray.reachable(self.address), timeout=30)  # dead, not dying

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_cluster_head() -> Iterator[Head]:
    """One head for this test process, started when a test first asks for it."""
    head = Head({**os.environ, **RAY_ENV})
    head.start()
    try:
        yield head
    finally:
        head.remove()


@pytest.fixture
def ray_head(ray_cluster_head: Head, monkeypatch: pytest.MonkeyPatch) -> Iterator[Head]:
    """The shared head, with ``RAY_ADDRESS`` naming it while the test runs; this process's
    Ray bridge is ended after the test, so the next test connects afresh."""
    for key, value in RAY_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster_head.address)
    try:
        yield ray_cluster_head
    finally:
        _ray.stop_ray()
