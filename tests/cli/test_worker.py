"""`shipyard worker` runs runs queued with submit=True, from its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import shipyard as sy
from shipyard import dsl
from shipyard.sdk import session


@dsl.component
def double(x: int) -> int:
    return 2 * x


@dsl.pipeline(name="doubler")
def doubler(x: int = 21) -> None:
    double(x=x)


def test_worker_runs_queued_pipeline_runs(home: Path) -> None:
    sy.init(home=home, project="w")
    try:
        queued = sy.run_pipeline(doubler, {"x": 21}, submit=True)
        assert queued.state == "QUEUED"
        env = {**os.environ, "SHIPYARD_HOME": str(home), "SHIPYARD_PROJECT": "w"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli.main", "worker", "--poll", "0.1"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            run = sy.get_pipeline_run(queued.id)
            while run.state not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
                time.sleep(0.2)
                run = sy.get_pipeline_run(queued.id)
        finally:
            worker.send_signal(signal.SIGINT)
            out, _ = worker.communicate(timeout=30)
        assert run.state == "SUCCEEDED", out
        assert run.tasks["double"].outputs["Output"] == 42
        assert run.claimed_by and "waiting for queued pipeline runs" in out
        assert worker.returncode == 130
    finally:
        session.reset()


def test_worker_options_reach_the_steps_settings(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from typer.testing import CliRunner

    import shipyard.worker as worker_package
    from shipyard.cli.main import app

    seen: dict[str, object] = {}

    def record(runtime: object, sources: object, stop: threading.Event, **_: object) -> None:
        settings = runtime.settings  # type: ignore[attr-defined]
        seen.update(server_url=settings.server_url, step_user=settings.step_user)

    monkeypatch.setattr(worker_package, "run_worker", record)
    runner = CliRunner()
    base = ["--home", str(home), "worker"]
    done = runner.invoke(app, [*base, "--server-url", "http://10.0.0.5:9000",
                               "--step-user", "shipyard-step"])
    assert done.exit_code == 0, done.output
    assert seen == {"server_url": "http://10.0.0.5:9000", "step_user": "shipyard-step"}
    bad = runner.invoke(app, [*base, "--server-url", "ftp://x"])
    assert bad.exit_code == 2
    assert "--server-url" in bad.output
