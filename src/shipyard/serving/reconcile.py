"""The supervisor's desired state: ``refresh`` brings replicas and routes in line with the
store, and the waits and views on what runs.

``refresh()`` reads every deployment (``service.deployed_models``) and starts
``min_replicas`` replicas (``replica``) for each one that has none, drains those no longer
deployed (no new request; stopped once they have answered what they hold), and rebuilds
the routing table (a ``traffic.Router`` per endpoint, and its shadows). It runs at start, after
every change made through this server, and every ``refresh_seconds`` in the watcher
thread, so changes made elsewhere (another server, the CLI in local mode) arrive too and
a restarted server serves what was deployed before.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from shipyard.errors import FailedPrecondition, Unavailable
from shipyard.serving import service
from shipyard.serving.autoscaler import Autoscaler
from shipyard.serving.pool import Pool, Replica, Route
from shipyard.serving.service import DeployedModel
from shipyard.serving.traffic import Router


class Reconciler(Autoscaler):
    """The desired-state side of ``Supervisor`` (which declares these fields)."""

    start_timeout: float
    routes: dict[tuple[str, str], Route]

    def refresh(self) -> list[Replica]:
        """Bring replicas and routes in line with the store; the replicas started."""
        desired = service.deployed_models(self.store)
        started: list[Replica] = []
        with self._lock:
            wanted = {target.key: target for target in desired}
            by_row = {target.row: target.key for target in desired}
            # New deployments' replicas first (the slow part: a read and a process each),
            # then the swap, so a request never meets a route whose pool has gone.
            for key, target in wanted.items():
                found = self.pools.get(key)
                if found is None:
                    found = self.pools[key] = Pool(target)
                    for _ in range(found.bounds[0]):
                        started.append(self._start(found))
                else:
                    found.target = target  # its traffic may have changed
                    for replica in found.replicas:
                        replica.target = target
            routes: dict[tuple[str, str], Route] = {}
            grouped: dict[tuple[str, str], list[DeployedModel]] = {}
            for target in desired:
                grouped.setdefault((target.project, target.endpoint), []).append(target)
            for where, targets in grouped.items():
                answering = [t for t in targets if not t.deployment.shadow]
                split = {t.deployment.id: t.deployment.traffic_percentage for t in answering}
                routes[where] = Route(Router(split), {t.deployment.id: t for t in answering},
                                      [t for t in targets if t.deployment.shadow])
            # Old versions of moved deployments join the retiring before the routes change,
            # and leave the pools after, so either routes find a ready replica.
            gone = [key for key in self.pools if key not in wanted]
            for key in gone:
                pool = self.pools[key]
                successor = by_row.get(pool.target.row)
                if successor is not None and pool.ever_ready():
                    # The deployment moved to another version: its old replicas answer
                    # until the new ones are ready (the watcher retires them then).
                    older = self.retiring.pop(successor, None)
                    if older is not None:
                        self._drain(older.replicas)
                    self.retiring[successor] = pool
            self.routes = routes
            for key in gone:
                pool = self.pools.pop(key)
                self.failures.pop(key, None)
                self.restarts.pop(key, None)
                if all(pool is not kept for kept in self.retiring.values()):
                    self._drain(pool.replicas)  # answered what they hold, then stopped
            for key in [key for key in self.retiring if key not in wanted]:
                self._drain(self.retiring.pop(key).replicas)
        return started

    def wait_ready(self, replicas: Sequence[Replica]) -> None:
        """Wait for ``replicas`` to load their models; ``FailedPrecondition`` naming the
        first that could not (``Unavailable`` for one still loading at the timeout)."""
        deadline = time.monotonic() + self.start_timeout
        for replica in replicas:
            if not replica.settled.wait(max(0.0, deadline - time.monotonic())):
                raise Unavailable(f"the replica of {replica.target.deployment.id} is still "
                                  f"loading after {self.start_timeout:g} s", retry_after=5)
            if replica.state == "failed":
                raise FailedPrecondition(f"{replica.target.deployment.id} cannot be served: "
                                         f"{replica.error}", field="model")

    def wait_deployed(self, project: str, endpoint: str, deployed_model_id: str) -> None:
        """``wait_ready`` for the replicas of one deployment (refreshed before)."""
        pool = self._pool_of(project, endpoint, deployed_model_id)
        if pool is None or not pool.replicas:
            raise Unavailable(f"no replica was started for {deployed_model_id}",
                              retry_after=1)
        self.wait_ready(list(pool.replicas))

    def _pool_of(self, project: str, endpoint: str, deployed_model_id: str) -> Pool | None:
        with self._lock:
            route = self.routes.get((project, endpoint))
            if route is None:
                return None
            target = route.targets.get(deployed_model_id) or next(
                (t for t in route.shadows if t.deployment.id == deployed_model_id), None)
            return None if target is None else self.pools.get(target.key)

    def replica_of(self, project: str, endpoint: str, deployed_model_id: str
                   ) -> Replica | None:
        """A current replica of one deployment, if it has one."""
        pool = self._pool_of(project, endpoint, deployed_model_id)
        return None if pool is None or not pool.replicas else pool.replicas[0]

    def status(self) -> list[dict[str, Any]]:
        """What runs: one entry per replica (for operators and tests)."""
        with self._lock:
            return [{"deployed_model_id": r.target.deployment.id, "endpoint": r.target.endpoint,
                     "project": r.target.project, "pid": r.pid, "state": r.state,
                     "error": r.error, "restarts": self.restarts.get(key, 0),
                     "in_flight": r.in_flight, "shadow": r.target.deployment.shadow,
                     "runtime": r.target.deployment.runtime}
                    for key, pool in self.pools.items() for r in pool.replicas]
