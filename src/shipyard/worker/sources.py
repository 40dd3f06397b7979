"""Job sources: one per capability that has background work, each a one-method port.

A source claims one unit of its work (a queued pipeline run today; a due schedule tick, a
pending event delivery or a monitor run later), runs it to its end and says whether there
was any. Claiming goes through the store's ``claim_next``, so several workers (threads,
processes, machines) can poll one source and never run the same unit twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shipyard.runtime import Runtime

__all__ = ["JobSource", "PipelineQueue", "default_sources"]


@runtime_checkable
class JobSource(Protocol):
    """Background work of one capability, as the worker sees it."""

    @property
    def name(self) -> str:
        """A short name for logs (``pipelines``, ``schedules``)."""
        ...

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        """Claim one unit of work as ``worker_name``, run it to its end and return True;
        return False at once when there is none. A failure of the work itself is recorded
        on the work (a failed run), not raised; an exception means the source could not
        do its job (the database is unavailable) and is logged by the worker, which goes
        on polling."""
        ...


@dataclass(frozen=True)
class PipelineQueue:
    """Pipeline runs queued with ``submit=True`` or through the server, oldest first.

    Runs submitted through the server run their steps isolated (a run-bound token, the
    server URL and the step user from the runtime's settings); runs queued in local mode
    run as their submitter would have.
    """

    project: str | None = None  # None: every project's runs

    @property
    def name(self) -> str:
        return "pipelines"

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        from shipyard.pipelines import claim_and_run_next

        ran = claim_and_run_next(runtime.store, runtime.artifacts, worker_name,
                                 project=self.project, settings=runtime.settings)
        return ran is not None


def default_sources() -> list[JobSource]:
    """The sources ``shipyard worker`` and the server's embedded worker poll."""
    return [PipelineQueue()]
