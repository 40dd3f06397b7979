"""Errors of the pipelines capability."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.errors import FailedPrecondition

if TYPE_CHECKING:
    from shipyard.pipelines.models import PipelineRun


class PipelineRunFailed(FailedPrecondition):
    """A run ended FAILED (or CANCELLED); ``run`` holds its record, ``run.tasks`` each
    step's state and error (with traceback)."""

    kind = "pipeline_run_failed"

    def __init__(self, run: PipelineRun) -> None:
        failed = [t for t in run.tasks.values() if t.state == "FAILED"]
        detail = "\n\n".join(f"--- task {t.name!r} ---\n{t.error or ''}" for t in failed)
        headline = run.error or f"pipeline run {run.id} ended {run.state}"
        super().__init__(
            headline + (f"\n{detail}" if detail else ""),
            run_id=run.id,
            state=run.state,
        )
        self.run = run
