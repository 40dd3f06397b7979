"""Restarting the Ray head breaks nothing for good (issue 23, item 3).

A real head (``ray start --head`` on 127.0.0.1) is SIGKILLed with its process group and
started again on the same port. Meanwhile a real ``shipyard worker`` stays up and claims
no Ray run (so none fails for nothing), this process's Ray runs fail with ``Unavailable``
naming the head instead of crashing it, and once the head is back both run Ray steps
again without being restarted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard import dsl
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.errors import Unavailable
from shipyard.pipelines import _ray, get_pipeline_run, run_pipeline
from shipyard.pipelines.models import PipelineRun
from shipyard.runtime import Runtime, open_runtime
from tests.ray.heads import RAY_ENV, Head, wait_for


@dsl.component
def double(x: int) -> int:
    import os

    assert os.environ.get("RAY_RAYLET_PID")  # in a Ray worker, not a step process of ours
    return 2 * x


@dsl.pipeline(name="ray-double")
def ray_double(x: int = 1) -> None:
    double(x=x)


@pytest.fixture
def own_ray_head(monkeypatch: pytest.MonkeyPatch) -> Iterator[Head]:
    # A head of this test's own, since the test kills it (the others share one).
    for key, value in RAY_ENV.items():
        monkeypatch.setenv(key, value)
    head = Head(dict(os.environ))
    monkeypatch.setenv("RAY_ADDRESS", head.address)
    head.start()
    try:
        yield head
    finally:
        _ray.stop_ray()
        head.remove()


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
    own_ray_head: Head, runtime: Runtime, tmp_path: Path
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

        own_ray_head.kill()
        # This process's run fails at once, saying what is missing; the process lives on.
        with pytest.raises(Unavailable, match=own_ray_head.address):
            _run(runtime, 6)
        waiting = _run(runtime, 7, submit=True)
        time.sleep(3)  # thirty polls: the worker would have claimed (and failed) it by now
        assert get_pipeline_run(runtime.store, "default", waiting.id).state == "QUEUED"
        assert worker.poll() is None

        own_ray_head.start()  # the same port, a new cluster
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
