"""Monitors on an endpoint whose request log is in an object store (s3://): a real S3 API
(moto's server on 127.0.0.1, through s3fs as production does; the artifact tests'
fixture). The run copies just its hours' files through the artifact store's backend."""

from __future__ import annotations

import os
import time
from pathlib import Path

from shipyard.config import Settings
from shipyard.monitoring import monitors as service
from shipyard.serving import service as serving
from shipyard.store import open_store
from tests.artifacts.conftest import BUCKET, s3_endpoint, s3_filesystem
from tests.monitoring.test_monitors import CTX, HOUR, T0, log_window, make

__all__ = ["s3_endpoint"]


def test_a_monitor_reads_a_request_log_in_s3(s3_endpoint: str, tmp_path: Path) -> None:
    prefix = f"{BUCKET}/monitor-{os.getpid()}-{time.monotonic_ns()}"
    settings = Settings(home=tmp_path, uri="sqlite://", artifacts=f"s3://{prefix}")
    store = open_store(f"sqlite:///{tmp_path}/shipyard.db", cached=False)
    serving.create_endpoint(store, CTX, "leads")
    make(store, objectives={"accuracy": 0.9})
    # The log as serving writes it (its writer, into a folder), then put in the bucket
    # under the same keys; a later hour's file must not be read.
    local = tmp_path / "log"
    log_window(local, T0, seed=1)
    log_window(local, T0 + HOUR, seed=2, shift=0.5, truth=True)
    log_window(local, T0 + 2 * HOUR, seed=3, shift=3.0)
    fs = s3_filesystem()
    fs.put(str(local / "request-logs"), f"{prefix}/", recursive=True)
    assert len(fs.find(f"{prefix}/request-logs")) == 4  # 3 hours of predictions, feedback

    run = service.run_monitor(store, settings, "default", "leads-monitor", now=T0 + 2 * HOUR)
    assert run.state == "succeeded", run.error
    assert run.result["rows"] == 2000  # the second hour only
    age = run.result["features"]["age"]
    assert age["drifted"] and age["drift"]["drifted"]  # against the baseline and hour one
    assert 0.15 < age["drift_score"] < 0.3  # a 0.5 sd shift, not the third hour's 3 sd
    assert run.result["performance"]["rows"] == 2000  # feedback read from the bucket too
    assert run.result["objectives"]["accuracy"]["value"] == 1.0
    assert set(run.result["breaches"]) == {"skew", "drift", "prediction_drift"}
    store.dispose()
