"""The server's replica supervisor: replica processes per deployed model (between its
``min_replicas`` and ``max_replicas``, by load), started from the store's desired state,
replaced when they die, and the router in front of them.

``Supervisor`` holds the state and its lifecycle (``start``, ``close`` and the watcher
thread); its parts, one module each:

- ``pool``: the handle on one replica process (``Replica``), a deployment's ``Pool``, an
  endpoint's ``Route``;
- ``autoscaler``: starting, scaling, draining and replacing replica processes;
- ``reconcile``: ``refresh`` from the store's desired state, and the waits and views;
- ``dataplane``: the predict path (the split, pinned versions, fall-backs, shadows).
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shipyard.config import Settings
from shipyard.errors import InvalidArgument
from shipyard.serving.autoscaler import SCALE_DOWN_SECONDS, SCALE_WINDOW, TARGET_IN_FLIGHT
from shipyard.serving.dataplane import DataPlane
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.pool import MAX_IN_FLIGHT, Pool, Replica, Route
from shipyard.serving.requestlog import RequestLog, setting
from shipyard.store import Store

__all__ = ["MAX_IN_FLIGHT", "REQUEST_TIMEOUT", "START_TIMEOUT", "Pool", "Replica", "Route",
           "Supervisor"]

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 30.0


@dataclass
class Supervisor(DataPlane):
    """The replicas of every deployment in ``store``, and the routes to them.

    Autoscaling: every deployment keeps between its ``min_replicas`` and ``max_replicas``
    replicas. The watcher samples each deployment's requests in flight (sent to a replica
    and not yet answered: the replica's queue and its work) every 50 ms; when their mean
    over the last ``scale_window`` seconds exceeds ``target_in_flight`` per replica, it
    starts as many replicas as that load needs (at most the maximum, at once). When fewer
    would do for ``scale_down_seconds`` in a row (the cool-down), it retires one replica,
    then waits another cool-down before the next. A retired replica takes no new request
    and is stopped once its requests in flight are answered, so scaling loses none.
    """

    store: Store
    settings: Settings
    refresh_seconds: float = 2.0
    request_timeout: float = REQUEST_TIMEOUT
    start_timeout: float = START_TIMEOUT
    max_in_flight: int = MAX_IN_FLIGHT
    target_in_flight: float = TARGET_IN_FLIGHT
    scale_window: float = SCALE_WINDOW
    scale_down_seconds: float = SCALE_DOWN_SECONDS
    metrics: ServingMetrics = field(default_factory=ServingMetrics)
    request_log: RequestLog | None = None
    draw: Callable[[], float] = random.random
    pools: dict[str, Pool] = field(default_factory=dict)
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # in a row, for the backoff
    restarts: dict[str, int] = field(default_factory=dict)
    # A deployment that moved to a new version (alias following) keeps its old replicas
    # answering until the new version has one ready: new pool key -> old pool.
    retiring: dict[str, Pool] = field(default_factory=dict)
    draining: list[tuple[float, Replica]] = field(default_factory=list)
    shadow_answers: int = 0
    shadow_failures: int = 0
    _shadow_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sockets: str = ""
    _count: int = 0

    def __post_init__(self) -> None:
        extra = self.settings.extra
        # Operators' bounds (settings.extra): seconds a replica may take, requests it holds.
        self.request_timeout = float(setting(extra, "serving_request_timeout",
                                             str(self.request_timeout)))
        self.max_in_flight = int(setting(extra, "serving_max_in_flight",
                                         str(self.max_in_flight)))
        self.target_in_flight = float(setting(extra, "serving_target_in_flight",
                                              str(self.target_in_flight)))
        self.scale_window = float(setting(extra, "serving_scale_window",
                                          str(self.scale_window)))
        self.scale_down_seconds = float(setting(extra, "serving_scale_down_seconds",
                                                str(self.scale_down_seconds)))
        if self.target_in_flight <= 0:
            raise InvalidArgument("serving_target_in_flight must be above 0",
                                  field="serving_target_in_flight")
        self.metrics.in_flight_source = self._in_flight
        if self.request_log is None:
            self.request_log = RequestLog.for_artifacts(self.settings.artifacts, extra)

    @property
    def replicas(self) -> dict[str, Replica]:
        """Every serving replica by a key of its own (deployment key and pid)."""
        with self._lock:
            return {f"{key}/{r.pid}": r for key, pool in self.pools.items()
                    for r in pool.replicas}

    def _in_flight(self) -> list[tuple[str, str, str, int]]:
        with self._lock:
            return [(p.target.project, p.target.endpoint, p.target.deployment.id,
                     sum(r.in_flight for r in p.replicas)) for p in self.pools.values()]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the replicas the store asks for, and the watcher (not waiting for them)."""
        self._sockets = tempfile.mkdtemp(prefix="shipyard-serve-")
        if self.request_log is not None:
            self.request_log.start()
        try:
            self.refresh()
        except Exception:  # the database may be down at start; the watcher tries again
            log.exception("serving: could not read the deployments")
        self._thread = threading.Thread(target=self._watch, name="shipyard-replicas",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            replicas = [r for pool in [*self.pools.values(), *self.retiring.values()]
                        for r in pool.replicas]
            replicas += [r for _, r in self.draining]
            self.pools, self.retiring, self.draining, self.routes = {}, {}, [], {}
        for replica in replicas:
            replica.stop()
        if self.request_log is not None:
            self.request_log.close()  # what is queued is written before the server exits
        if self._sockets:
            shutil.rmtree(self._sockets, ignore_errors=True)

    def _watch(self) -> None:
        last_refresh = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._replace_dead()
                self._autoscale(time.monotonic())
                self._retire()
                if time.monotonic() - last_refresh >= self.refresh_seconds:
                    last_refresh = time.monotonic()
                    self.refresh()
            except Exception:  # a database outage: keep serving, try again later
                log.exception("serving: the replica watcher failed; retrying")
