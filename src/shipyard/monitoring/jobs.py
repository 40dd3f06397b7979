"""The worker's job source for monitors: ``MonitorRuns`` claims one monitor whose next run
is due, judges that window and records it (``monitors.run_due``), and every
``retry_every`` seconds sends the alert deliveries still pending (an unreachable webhook or
SMTP server is tried again, up to ``channels.MAX_ATTEMPTS`` times)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from shipyard.config import Settings
from shipyard.store import Store

__all__ = ["MonitorRuns"]


class _Runtime(Protocol):  # what this source needs of shipyard.runtime.Runtime
    @property
    def store(self) -> Store: ...

    @property
    def settings(self) -> Settings: ...


@dataclass
class MonitorRuns:
    """Scheduled monitor runs (a ``worker.sources.JobSource``)."""

    lease_seconds: float = 300.0
    retry_every: float = 30.0
    _next_retry: float = field(default=0.0, init=False, repr=False)

    @property
    def name(self) -> str:
        return "monitors"

    def claim_and_run(self, runtime: _Runtime, worker_name: str) -> bool:
        from shipyard.monitoring.channels import deliver_pending
        from shipyard.monitoring.monitors import run_due

        ran = run_due(runtime.store, runtime.settings, worker_name,
                      lease_seconds=self.lease_seconds)
        if time.monotonic() >= self._next_retry:
            self._next_retry = time.monotonic() + self.retry_every
            ran = bool(deliver_pending(runtime.store, runtime.settings)) or ran
        return ran
