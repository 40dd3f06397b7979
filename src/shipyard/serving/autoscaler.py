"""The supervisor's replica processes: starting one (``_start``), taking replicas out of
service (``_drain``, then ``_retire`` once they have answered what they hold), scaling each
deployment between its bounds by load (``_autoscale``; the policy is in ``Supervisor``'s
docstring), and replacing those whose process ended.

The watcher replaces a replica whose process ended (after ``backoff`` seconds, growing
with each failure in a row). Until the new one is ready, requests for that deployment fail
at once with ``Unavailable`` (503, Retry-After), as do requests that were waiting on the
dead process: its socket closes with it. Nothing waits for a process that will not answer.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from shipyard.config import Settings
from shipyard.registry import service as registry
from shipyard.serving import ray_bridge
from shipyard.serving.pool import RUNNERS, Pool, Replica
from shipyard.serving.replica import FAILED_TO_LOAD, THREAD_VARIABLES
from shipyard.store import Store

log = logging.getLogger(__name__)

# Autoscaling: requests in flight per replica it aims at, the seconds of load it averages,
# and the cool-down before it retires a replica (settings.extra serving_target_in_flight,
# serving_scale_window, serving_scale_down_seconds).
TARGET_IN_FLIGHT = 4.0
SCALE_WINDOW = 10.0
SCALE_DOWN_SECONDS = 60.0
DRAIN_GRACE = 0.5  # a retired replica lives this long at least (a request on its way)
# Variables a replica must not inherit: the server's database URI (it may hold a password)
# and its token. A replica reads only the artifact store.
_WITHHELD = ("SHIPYARD_URI", "SHIPYARD_TOKEN")


class Autoscaler:
    """The process side of ``Supervisor`` (which declares these fields with defaults)."""

    store: Store
    settings: Settings
    request_timeout: float
    target_in_flight: float
    scale_window: float
    scale_down_seconds: float
    pools: dict[str, Pool]
    failures: dict[str, int]
    restarts: dict[str, int]
    retiring: dict[str, Pool]
    draining: list[tuple[float, Replica]]
    _lock: threading.RLock
    _sockets: str
    _count: int

    def _start(self, pool: Pool) -> Replica:
        target = pool.target
        deployment = target.deployment
        version = registry.get_model_version(self.store, target.project, deployment.model,
                                             deployment.version)
        self._count += 1
        socket = os.path.join(self._sockets, f"{self._count}.sock")
        env = {k: v for k, v in os.environ.items() if k not in _WITHHELD}
        env.update(dict.fromkeys(THREAD_VARIABLES, "1"))
        logs = Path(self.settings.home) / "logs" / "replicas"
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(logs / f"{target.row or target.key}.log", "ab") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", RUNNERS[deployment.runtime]],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, cwd="/",
                start_new_session=True)  # fmt: skip
        replica = Replica(target, socket, process)
        replica.signature = pool.signature = version.signature
        config = {"socket": socket, "version": version.model_dump(mode="json"),
                  "home": str(self.settings.home), "artifacts": self.settings.artifacts,
                  "trusted_types": list(self.settings.trusted_types),
                  "trusted_digests": list(self.settings.trusted_digests)}
        if deployment.runtime == "ray":
            config.update(ray_bridge.config(target, self.settings, self.target_in_flight))
        assert process.stdin is not None and process.stdout is not None  # PIPE above
        try:
            process.stdin.write(json.dumps(config).encode() + b"\n")
            process.stdin.flush()
        except OSError:
            pass  # it died already: the reader below sees the end and marks it failed
        threading.Thread(target=replica.await_ready, args=(process.stdout,), daemon=True,
                         name=f"replica-{target.key[:8]}").start()
        pool.replicas.append(replica)
        log.info("serving: started replica %s of %s/%s (pid %d)", deployment.id,
                 target.project, target.endpoint, process.pid)
        return replica

    def _drain(self, replicas: Sequence[Replica]) -> None:
        """Take ``replicas`` out of service: no new request; stopped by the watcher once
        what they hold is answered."""
        now = time.monotonic()
        for replica in replicas:
            if replica.state == "ready":
                replica.state = "draining"
            self.draining.append((now, replica))

    def _autoscale(self, now: float) -> None:
        """Start or retire replicas by each deployment's load (see the class)."""
        with self._lock:
            for pool in self.pools.values():
                deployment = pool.target.deployment
                pool.samples.append((now, sum(r.in_flight for r in pool.replicas)))
                while pool.samples and pool.samples[0][0] < now - self.scale_window:
                    pool.samples.popleft()
                # Every replica counts, a dead one too: the watcher replaces it (with its
                # backoff), so a model that cannot load is not started again every tick.
                count = len(pool.replicas)
                mean = sum(load for _, load in pool.samples) / len(pool.samples)
                low, high = pool.bounds
                wanted = min(max(math.ceil(mean / self.target_in_flight - 1e-9), low), high)
                if wanted > count:
                    log.info("serving: %s has %.1f requests in flight: %d -> %d replicas",
                             deployment.id, mean, count, wanted)
                    for _ in range(wanted - count):
                        self._start(pool)
                    pool.calm_since = now
                elif wanted == count or now - pool.calm_since < self.scale_down_seconds:
                    if wanted >= count:
                        pool.calm_since = now
                else:
                    # The idlest replica, the newest among equals (one not ready first).
                    idlest = min(reversed(pool.replicas),
                                 key=lambda r: (r.state == "ready", r.in_flight))
                    log.info("serving: %s is calm: %d -> %d replicas", deployment.id,
                             count, count - 1)
                    pool.replicas.remove(idlest)
                    self._drain([idlest])
                    pool.calm_since = now

    def _retire(self) -> None:
        """Stop drained replicas that answered what they held (or that the request timeout
        has passed for), and old versions whose successor is ready."""
        now = time.monotonic()
        stop: list[Replica] = []
        with self._lock:
            for key, old in list(self.retiring.items()):
                new = self.pools.get(key)
                if new is None or new.ever_ready():
                    del self.retiring[key]
                    self._drain(old.replicas)
            keep = []
            for since, replica in self.draining:
                idle = replica.in_flight == 0 and now - since >= DRAIN_GRACE
                if idle or now - since > self.request_timeout + DRAIN_GRACE \
                        or replica.process.poll() is not None:
                    stop.append(replica)
                else:
                    keep.append((since, replica))
            self.draining = keep
        for replica in stop:
            replica.stop()

    def _replace_dead(self) -> None:
        with self._lock:
            for key, pool in self.pools.items():
                for replica in list(pool.replicas):
                    self._replace_if_dead(key, pool, replica)

    def _replace_if_dead(self, key: str, pool: Pool, replica: Replica) -> None:
        code = replica.process.poll()
        if code is None or replica.state == "stopped":
            if replica.state == "ready" and time.monotonic() - replica.started > 10:
                self.failures.pop(key, None)  # it serves again: no more backoff
            return
        failures = self.failures.get(key, 0)
        # Back off after repeated failures (a model that cannot load, a crash loop).
        delay = 0.0 if failures == 0 else min(0.25 * 2 ** (failures - 1), 10.0)
        if replica.state != "dead":
            replica.state = "dead"
            replica.error = replica.error or (
                "it could not load the model" if code == FAILED_TO_LOAD
                else f"its process ended (exit code {code})")
            replica.started = time.monotonic()  # when it was found dead
            replica.settled.set()
            log.warning("serving: replica %s (pid %d) ended with %d; replacing it",
                        replica.target.deployment.id, replica.pid, code)
        if time.monotonic() - replica.started < delay:
            return
        replica.stop()
        pool.replicas.remove(replica)
        self.failures[key] = failures + 1
        self.restarts[key] = self.restarts.get(key, 0) + 1
        self._start(pool)
