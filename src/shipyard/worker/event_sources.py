"""Job sources for events that leave the store or come from outside it: push
subscriptions (``PushDeliveries``: POST each message to its endpoint through the SSRF
guard) and data watches (``DataWatches``: announce new files as ``data-arrived``)."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.runtime import Runtime

__all__ = ["DataWatches", "PushDeliveries"]


@dataclass
class PushDeliveries:
    """Push subscriptions' ready messages, POSTed in Pub/Sub's push format; acknowledged on
    102/200/201/202/204, given back (backoff, then dead letters) on anything else. Where
    requests may go is the operator's outbound allowlist (``outbound_allowlist`` in the
    settings or ``SHIPYARD_OUTBOUND_ALLOWLIST``): nothing by default."""

    max_messages: int = 10

    @property
    def name(self) -> str:
        return "event-pushes"

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        from shipyard.events.push import deliver_pushes, outbound_policy

        policy = outbound_policy(runtime.settings.extra)
        return deliver_pushes(runtime.store, policy, max_messages=self.max_messages) > 0


@dataclass
class DataWatches:
    """Watches whose interval has passed: scanned, their new files announced once."""

    @property
    def name(self) -> str:
        return "data-watches"

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        from shipyard.events.watches import scan_due

        return scan_due(runtime.store, worker_name) > 0
