"""The worker: runs the background work of every capability from a list of job sources.

``shipyard server`` runs it in a background thread; ``shipyard worker`` runs it in its own
process so work can move off the server. Both open one runtime (``open_runtime``) and pass
it, with ``default_sources()``, to ``run_worker``. A capability with background work adds a
``JobSource`` (see ``docs/runtime.md``).
"""

from shipyard.pipelines.queue import Lease
from shipyard.worker.loop import POLL_SECONDS, run_worker, start_worker, worker_name
from shipyard.worker.sources import JobSource, PipelineQueue, default_sources

__all__ = [
    "POLL_SECONDS",
    "JobSource",
    "Lease",
    "PipelineQueue",
    "default_sources",
    "run_worker",
    "start_worker",
    "worker_name",
]
