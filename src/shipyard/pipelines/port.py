"""What the SDK needs from pipelines (local: ``shipyard.sdk.local.pipelines`` runs them in
and under the calling process; remote: ``shipyard.client.pipelines`` queues them on the
server's worker)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from shipyard.pipelines.models import PipelineRun

Executor = Literal["process", "ray"]


class PipelinesPort(Protocol):
    def run_pipeline(self, pipeline_or_yaml: Any, arguments: Mapping[str, Any] | None = None,
                     *, enable_caching: bool = True, parallelism: int | None = None,
                     inline: bool = False, raise_on_error: bool = True, submit: bool = False,
                     max_cache_age: float | None = None, executor: Executor = "process",
                     source: Mapping[str, str] | None = None) -> PipelineRun: ...

    def get_pipeline_run(self, run_id: str) -> PipelineRun: ...

    def list_pipeline_runs(self, *, pipeline_name: str | None = None,
                           state: str | None = None, limit: int = 100
                           ) -> list[PipelineRun]: ...

    def retry_pipeline_run(self, run_id: str, *, raise_on_error: bool = True
                           ) -> PipelineRun: ...

    def cancel_pipeline_run(self, run_id: str, *, force: bool = False) -> PipelineRun: ...

    def get_task_log(self, run_id: str, task: str) -> str: ...
