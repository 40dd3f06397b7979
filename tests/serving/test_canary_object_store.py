"""A canary judged from a request log in an object store (s3://): a real S3 API (moto's
server on 127.0.0.1, through s3fs as production does; the artifact tests' fixture). The
verdict reads a copy of the log's hours since the canary started, as monitors do."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shipyard.artifacts import ArtifactStore
from shipyard.context import RequestContext
from shipyard.registry import service as registry
from shipyard.serving import rollouts, service
from shipyard.store import Store
from tests.artifacts.conftest import BUCKET, s3_endpoint, s3_filesystem
from tests.serving.test_canary_rollouts import _canary, _Clock, _log, _source

__all__ = ["s3_endpoint"]


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_a_canary_is_judged_from_a_request_log_in_s3(
        s3_endpoint: str, store: Store, artifacts: ArtifactStore, ctx: RequestContext,
        versions: list[int], tmp_path: Path) -> None:
    prefix = f"{BUCKET}/canary-{os.getpid()}-{time.monotonic_ns()}"
    rollout = _canary(store, ctx, max_latency_ratio=1.5)
    local = tmp_path / "log"  # the log as serving writes it, then put in the bucket
    _log(local, "lead:3", 19, latency_ms=10.0)
    _log(local, "lead:2", 60, latency_ms=9.0)
    fs = s3_filesystem()
    fs.put(str(local / "request-logs"), f"{prefix}/", recursive=True)
    clock = _Clock()
    source, runtime = _source(store, Path("unused"), clock)
    runtime.settings.artifacts = f"s3://{prefix}"

    assert source.claim_and_run(runtime, "w1") is True  # 19 of 20 requests: not yet
    assert rollouts.get_rollout(store, "p1", rollout.id).state == "running"
    _log(local, "lead:3", 1, latency_ms=12.0)
    fs.put(str(local / "request-logs"), f"{prefix}/", recursive=True)
    clock.advance(6)
    assert source.claim_and_run(runtime, "w1") is True

    done = rollouts.get_rollout(store, "p1", rollout.id)
    assert done.state == "promoted", done.decision
    assert done.decision is not None
    assert (done.decision["candidate"]["requests"], done.decision["champions"]["requests"]) \
        == (20, 60)
    assert service.get_endpoint(store, "p1", "ep").traffic == {"lead:3": 100}
    assert registry.get_model_version(store, "p1", "lead", alias="production").version == 3
