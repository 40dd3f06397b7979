"""Local mode for pipelines: the runner executes in (and under) the calling process."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from shipyard import pipelines

if TYPE_CHECKING:
    from shipyard.artifacts import ArtifactStore
    from shipyard.config import Settings
    from shipyard.context import RequestContext
    from shipyard.pipelines.models import PipelineRun
    from shipyard.store import Store


class LocalPipelines:
    # Provided by LocalBackend, which mixes this class in.
    store: Store
    project: str
    settings: Settings
    artifacts: ArtifactStore
    ctx: Callable[[], RequestContext]

    def run_pipeline(self, pipeline_or_yaml: Any, arguments: dict[str, Any] | None = None,
                     *, executor: Literal["process", "ray"] = "process", **options: Any
                     ) -> PipelineRun:
        return pipelines.run_pipeline(self.store, self.artifacts, self.ctx(), pipeline_or_yaml,
                                      arguments, settings=self.settings, backend=executor,
                                      **options)

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        return pipelines.get_pipeline_run(self.store, self.project, run_id)

    def list_pipeline_runs(self, *, pipeline_name: str | None = None, state: str | None = None,
                           limit: int = 100) -> list[PipelineRun]:
        return pipelines.list_pipeline_runs(self.store, self.project,
                                            pipeline_name=pipeline_name, state=state,
                                            limit=limit)

    def retry_pipeline_run(self, run_id: str, *, raise_on_error: bool = True) -> PipelineRun:
        return pipelines.retry_pipeline_run(self.store, self.artifacts, self.ctx(), run_id,
                                            raise_on_error=raise_on_error,
                                            settings=self.settings)

    def cancel_pipeline_run(self, run_id: str, *, force: bool = False) -> PipelineRun:
        return pipelines.cancel_pipeline_run(self.store, self.ctx(), run_id, force=force)

    def get_task_log(self, run_id: str, task: str) -> str:
        return pipelines.get_task_log(self.store, self.artifacts, self.project, run_id, task)
