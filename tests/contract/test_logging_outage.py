"""Background logging keeps working while the server is briefly down, and loses nothing."""

from __future__ import annotations

import time
from pathlib import Path

import shipyard as sy
from shipyard.config import Settings
from shipyard.sdk import session
from tests.server.live import free_port, live_server


def test_background_logging_survives_a_server_restart(home: Path, tmp_path: Path) -> None:
    settings = Settings.resolve(home=home, uri=f"sqlite:///{tmp_path / 's.db'}",
                                artifacts=str(tmp_path / "blobs"))
    port = free_port()
    try:
        with live_server(settings, port=port, worker=False) as server:
            sy.init(home=home, uri=server.url, project="p")
            run = sy.start_run(experiment="outage", synchronous=False)
            for step in range(100):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.flush()
        # The server is down: these calls return at once and stay buffered.
        started = time.monotonic()
        for step in range(100, 200):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        assert time.monotonic() - started < 1.0
        time.sleep(0.5)  # the logger meets the outage and starts retrying
        with live_server(settings, port=port, worker=False):
            run.flush(timeout=60)
            run.end()
            history = sy.get_metric_history(run.id, "loss")
            assert [p.step for p in history] == list(range(200))
            assert sy.get_run(run.id).status == "FINISHED"
    finally:
        session.reset()
