"""What the SDK needs from experiment tracking, whichever side of the wire the store is on.

``shipyard.sdk.local.tracking`` implements it with the tracking services on a store this
process opened; ``shipyard.client.tracking`` with HTTP calls to a server. The contract tests
run one suite against both, so the two modes answer alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from shipyard.tracking.models import (
    Experiment,
    MetricPoint,
    MetricTuple,
    RunArtifact,
    RunData,
    RunPage,
)


class TrackingPort(Protocol):
    def create_experiment(self, name: str) -> Experiment: ...

    def list_experiments(self) -> list[Experiment]: ...

    def create_run(self, experiment: str, *, name: str | None = None,
                   tags: Mapping[str, str] | None = None,
                   params: Mapping[str, Any] | None = None) -> RunData: ...

    def log_batch(self, run_id: str, *, metrics: Sequence[MetricTuple] = (),
                  params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, str] | None = None) -> None: ...

    def terminate_run(self, run_id: str, status: str = "FINISHED") -> RunData: ...

    def heartbeat_run(self, run_id: str, lease_seconds: float) -> str: ...

    def get_run(self, run_id: str) -> RunData: ...

    def search_runs(self, *, experiments: Sequence[str] | None = None,
                    filter: str | None = None, order_by: Sequence[str] | None = None,
                    max_results: int = 1000, page_token: str | None = None) -> RunPage: ...

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]: ...

    def log_artifact(self, run_id: str, path: str | os.PathLike[str],
                     name: str | None = None) -> RunArtifact: ...

    def download_artifact(self, run_id: str, name: str,
                          dest: str | os.PathLike[str]) -> Path: ...
