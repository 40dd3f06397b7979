"""Restarting the Ray head breaks nothing for good (issue 23, item 3).

A real head (``ray start --head`` on 127.0.0.1) is SIGKILLed with its process group and
started again on the same port. Meanwhile a real ``shipyard worker`` stays up and claims
no Ray run (so none fails for nothing), this process's Ray runs fail with ``Unavailable``
naming the head instead of crashing it, and once the head is back both run Ray steps
again without being restarted.
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
from pathlib import Path

import pytest

from shipyard import dsl
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import Unavailable
from shipyard.pipelines import _ray, get_pipeline_run, run_pipeline
from shipyard.pipelines.models import PipelineRun
from shipyard.runtime import Runtime, open_runtime

RAY = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"


@dsl.component
def double(x: int) -> int:
    import os

    assert os.environ.get("RAY_RAYLET_PID")  # in a Ray worker, not a step process of ours
    return 2 * x


@dsl.pipeline(name="ray-double")
def ray_double(x: int = 1) -> None:
    double(x=x)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Head:
    """A Ray head of this test's own (its processes in one process group, killed whole)."""

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


def wait_for(what: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.fixture
def ray_head(monkeypatch: pytest.MonkeyPatch) -> Iterator[Head]:
    # Independent of any token in ~/.ray or cluster in /tmp/ray another program left.
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    head = Head(dict(os.environ))
    monkeypatch.setenv("RAY_ADDRESS", head.address)
    head.start()
    try:
        yield head
    finally:
        _ray.stop_ray()
        head.kill()
        shutil.rmtree(head.temp, ignore_errors=True)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings.resolve(home=tmp_path / "home", uri=f"sqlite:///{tmp_path / 'db'}",
                                artifacts=str(tmp_path / "blobs"), environ={})
    with open_runtime(settings, cached=False) as rt:
        yield rt


def _run(rt: Runtime, x: int, *, submit: bool = False) -> PipelineRun:
    ctx = RequestContext(project="default", actor="tester")
    return run_pipeline(rt.store, rt.artifacts, ctx, ray_double, {"x": x},
                        settings=rt.settings, backend="ray", enable_caching=False,
                        submit=submit)  # fmt: skip


def test_a_restarted_head_is_used_again_by_this_process_and_a_worker(
    ray_head: Head, runtime: Runtime, tmp_path: Path
) -> None:
    ran = _run(runtime, 4)
    assert ran.state == "SUCCEEDED"
    assert ran.tasks["double"].outputs["Output"] == 8

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_HOME=str(tmp_path / "home"), SHIPYARD_ARTIFACTS=str(tmp_path / "blobs"))
    worker = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "--uri", runtime.settings.uri, "worker",
         "--poll", "0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)  # fmt: skip
    try:
        first = _run(runtime, 5, submit=True)
        wait_for(lambda: get_pipeline_run(runtime.store, "default", first.id).state
                 == "SUCCEEDED", timeout=120)

        ray_head.kill()
        # This process's run fails at once, saying what is missing; the process lives on.
        with pytest.raises(Unavailable, match=ray_head.address):
            _run(runtime, 6)
        waiting = _run(runtime, 7, submit=True)
        time.sleep(3)  # thirty polls: the worker would have claimed (and failed) it by now
        assert get_pipeline_run(runtime.store, "default", waiting.id).state == "QUEUED"
        assert worker.poll() is None

        ray_head.start()  # the same port, a new cluster
        wait_for(lambda: get_pipeline_run(runtime.store, "default", waiting.id).state
                 in ("SUCCEEDED", "FAILED"), timeout=120)
        done = get_pipeline_run(runtime.store, "default", waiting.id)
        assert done.state == "SUCCEEDED", done.error
        assert done.tasks["double"].outputs["Output"] == 14
        again = _run(runtime, 8)
        assert again.tasks["double"].outputs["Output"] == 16
        assert worker.poll() is None
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        out, _ = worker.communicate()
        print(out[-3000:])
