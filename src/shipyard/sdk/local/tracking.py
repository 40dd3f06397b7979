"""Experiment tracking in local mode (the local ``TrackingPort``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.tracking import artifacts as run_artifacts
from shipyard.tracking import search, service
from shipyard.tracking.models import (
    Experiment,
    MetricPoint,
    MetricTuple,
    RunArtifact,
    RunData,
    RunPage,
)

if TYPE_CHECKING:
    from shipyard.sdk.local import Scope


class LocalTracking:
    def __init__(self, scope: Scope) -> None:
        self._s = scope
        self._store = scope.store
        self._project = scope.project
        # log_batch writes no audit row and reads only the project from its context, so one
        # context serves every call (building one, with its random request id, cost ~3 us of
        # a ~10 us call).
        self._log_ctx = scope.ctx()

    def create_experiment(self, name: str) -> Experiment:
        return service.get_or_create_experiment(self._store, self._s.ctx(), name)

    def list_experiments(self) -> list[Experiment]:
        return service.list_experiments(self._store, self._project)

    def create_run(self, experiment: str, *, name: str | None = None,
                   tags: Mapping[str, str] | None = None,
                   params: Mapping[str, Any] | None = None) -> RunData:
        return service.create_run(self._store, self._s.ctx(), experiment, name=name, tags=tags,
                                  params=params)

    def log_batch(self, run_id: str, *, metrics: Sequence[MetricTuple] = (),
                  params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        service.log_batch(self._store, self._log_ctx, run_id, metrics=metrics, params=params,
                          tags=tags)

    def terminate_run(self, run_id: str, status: str = "FINISHED") -> RunData:
        return service.set_terminated(self._store, self._s.ctx(), run_id, status)

    def heartbeat_run(self, run_id: str, lease_seconds: float) -> str:
        return service.heartbeat(self._store, self._s.ctx(), run_id, lease_seconds)

    def get_run(self, run_id: str) -> RunData:
        return service.get_run(self._store, self._project, run_id)

    def search_runs(self, *, experiments: Sequence[str] | None = None,
                    filter: str | None = None, order_by: Sequence[str] | None = None,
                    max_results: int = 1000, page_token: str | None = None) -> RunPage:
        return search.search_runs(self._store, self._project, experiments_=experiments,
                                  filter=filter, order_by=order_by, max_results=max_results,
                                  page_token=page_token)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        return service.metric_history(self._store, self._project, run_id, key)

    def log_artifact(self, run_id: str, path: str | os.PathLike[str],
                     name: str | None = None) -> RunArtifact:
        service.require_run(self._store, self._project, run_id)
        return run_artifacts.log_artifact_path(self._store, self._s.artifacts, self._s.ctx(),
                                               run_id, path, name=name)

    def download_artifact(self, run_id: str, name: str, dest: str | os.PathLike[str]) -> Path:
        return run_artifacts.download(self._store, self._s.artifacts, self._project, run_id,
                                      name, dest)
