"""Job sources: one per capability that has background work, each a one-method port.

A source claims one unit of its work (a queued pipeline run today; a due schedule tick, a
pending event delivery or a monitor run later), runs it to its end and says whether there
was any. Claiming goes through the store's ``claim_next``, so several workers (threads,
processes, machines) can poll one source and never run the same unit twice.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from shipyard.pipelines.queue import Lease
from shipyard.runtime import Runtime

__all__ = ["JobSource", "PipelineQueue", "SilentRuns", "default_sources"]

log = logging.getLogger(__name__)


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


@dataclass
class PipelineQueue:
    """Pipeline runs queued with ``submit=True`` or through the server, oldest first.

    Runs submitted through the server run their steps isolated (a run-bound token, the
    server URL and the step user from the runtime's settings); runs queued in local mode
    run as their submitter would have. A claimed run is leased (``lease``: the worker
    heartbeats for it); every ``lease.heartbeat`` seconds the source also recovers the runs
    of workers whose lease ran out. Setting ``handback`` hands the running run back to
    the queue (a stopping worker) and claims nothing more. While the Ray head
    ``RAY_ADDRESS`` names does not answer, runs with ``executor="ray"`` are not claimed
    (they would fail at once); they are again once it does.
    """

    project: str | None = None  # None: every project's runs
    lease: Lease = field(default_factory=Lease)
    handback: threading.Event | None = None
    _next_recovery: float = field(default=0.0, init=False, repr=False)
    _ray_down: bool = field(default=False, init=False, repr=False)

    @property
    def name(self) -> str:
        return "pipelines"

    def _unreachable_backends(self) -> tuple[str, ...]:
        from shipyard.pipelines import _ray

        down = not _ray.reachable()
        if down != self._ray_down:
            self._ray_down = down
            if down:
                log.warning("the Ray head at %s does not answer: claiming no Ray runs "
                            "until it does", _ray.ray_address())
            else:
                log.warning("the Ray head at %s answers again: claiming Ray runs",
                            _ray.ray_address())
        return ("ray",) if down else ()

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        from shipyard.pipelines.queue import claim_and_run_next, recover_lost_runs

        if self.handback is not None and self.handback.is_set():
            return False
        if time.monotonic() >= self._next_recovery:
            self._next_recovery = time.monotonic() + self.lease.heartbeat
            recover_lost_runs(runtime.store, worker_name, self.lease)
        ran = claim_and_run_next(runtime.store, runtime.artifacts, worker_name,
                                 project=self.project, settings=runtime.settings,
                                 lease=self.lease, handback=self.handback,
                                 skip_backends=self._unreachable_backends())
        return ran is not None


@dataclass
class SilentRuns:
    """Tracking runs whose client stopped heartbeating (its process was killed, its machine
    lost) end KILLED, checked every ``every`` seconds: what MLflow leaves RUNNING forever.
    Several workers may check at once; each run is ended once."""

    every: float = 10.0
    _next_check: float = field(default=0.0, init=False, repr=False)

    @property
    def name(self) -> str:
        return "silent-runs"

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        from shipyard.tracking.service import end_silent_runs

        if time.monotonic() < self._next_check:
            return False
        self._next_check = time.monotonic() + self.every
        ended = end_silent_runs(runtime.store)
        for run_id in ended:
            log.info("run %s ended KILLED: its client stopped heartbeating", run_id)
        return bool(ended)


def default_sources(*, lease: Lease | None = None,
                    handback: threading.Event | None = None) -> list[JobSource]:
    """The sources ``shipyard worker`` and the server's embedded worker poll: ``lease`` and
    ``handback`` go to the ones that claim long-running work (``PipelineQueue``)."""
    from shipyard.monitoring.jobs import MonitorRuns
    from shipyard.serving.rollouts import CanaryRollouts
    from shipyard.worker.event_sources import DataWatches, PushDeliveries
    from shipyard.worker.events import Schedules, Triggers

    return [PipelineQueue(lease=lease or Lease(), handback=handback), SilentRuns(),
            Schedules(), Triggers(), PushDeliveries(), DataWatches(), MonitorRuns(),
            CanaryRollouts()]
