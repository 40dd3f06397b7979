"""The server's replica supervisor: replica processes per deployed model (between its
``min_replicas`` and ``max_replicas``, by load), started from the store's desired state,
replaced when they die, and the router in front of them.

``Supervisor.refresh()`` reads every deployment (``service.deployed_models``) and starts
``min_replicas`` replicas (``replica``) for each one that has none, drains those no longer
deployed (no new request; stopped once they have answered what they hold), and rebuilds
the routing table (a ``traffic.Router`` per endpoint, and its shadows). It runs at start, after
every change made through this server, and every ``refresh_seconds`` in the watcher
thread, so changes made elsewhere (another server, the CLI in local mode) arrive too and
a restarted server serves what was deployed before.

The watcher also replaces a replica whose process ended (after ``backoff`` seconds, growing
with each failure in a row). Until the new one is ready, requests for that deployment fail
at once with ``Unavailable`` (503, Retry-After), as do requests that were waiting on the
dead process: its socket closes with it. Nothing waits for a process that will not answer.

A request the split sends to a deployment with no ready replica yet (just deployed, or
moving to its alias's new version) is answered by the version it is moving from, else by
the deployment with the largest share that has one, so deploying and moving traffic lose
no request. A copy of each prediction request goes to the endpoint's shadow deployments,
not awaited; their answers go to the request log marked ``shadow``.

Predictions run on the server's event loop (``predict`` is a coroutine): idle connections
per replica are kept for the next request. Each replica takes at most ``max_in_flight``
requests at once (64 by default); one more is shed at once with 503 and Retry-After rather
than queued behind the others, so an overloaded model answers "later" instead of timing
out everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shipyard.config import Settings
from shipyard.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ShipyardError,
    Unavailable,
)
from shipyard.ids import new_id
from shipyard.pipelines._process import kill_group
from shipyard.registry import service as registry
from shipyard.serving import service, wire
from shipyard.serving.instances import signature_names
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.models import Prediction
from shipyard.serving.replica import FAILED_TO_LOAD, THREAD_VARIABLES
from shipyard.serving.requestlog import Logged, RequestLog, setting
from shipyard.serving.service import DeployedModel
from shipyard.serving.traffic import Router
from shipyard.store import Store

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 30.0
IDLE_CONNECTIONS = 64
MAX_IN_FLIGHT = 64
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

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Replica:
    """One replica process of one deployment."""

    def __init__(self, target: DeployedModel, socket: str, process: subprocess.Popen[bytes]
                 ) -> None:
        self.target = target
        self.socket = socket
        self.process = process
        self.state = "starting"  # -> ready | failed | stopped
        self.error = ""
        self.started = time.monotonic()
        self.settled = threading.Event()
        self.idle: list[Connection] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.in_flight = 0
        self.signature: dict[str, Any] | None = None  # the version's, for the protocols

    @property
    def pid(self) -> int:
        return self.process.pid

    def await_ready(self, stdout: IO[bytes]) -> None:
        """Read the replica's one line (``ready`` or its load error); in a thread."""
        line = stdout.readline().strip()
        if line == b"ready":
            self.state = "ready"
        else:
            self.state = "failed"
            try:
                self.error = str(json.loads(line)["error"])
            except (ValueError, KeyError, TypeError):
                self.error = "the replica exited while loading the model"
        self.settled.set()

    def stop(self) -> None:
        self.state = "stopped"
        if self.process.poll() is None:
            kill_group(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.settled.wait(5)  # its reader has seen the end of the killed process's output
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._close_idle()
        with contextlib.suppress(OSError):
            os.unlink(self.socket)

    def _close_idle(self) -> None:
        idle, self.idle = self.idle, []
        if not idle or self.loop is None or self.loop.is_closed():
            return

        def close() -> None:
            for _, writer in idle:
                writer.close()

        with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
            self.loop.call_soon_threadsafe(close)

    async def call(self, message: dict[str, Any], timeout: float,
                   max_in_flight: int = MAX_IN_FLIGHT) -> Any:
        """Send one request and return the replica's answer (its error raised)."""
        what = self.target.deployment.id
        if self.in_flight >= max_in_flight:
            raise Unavailable(f"the replica of {what} is busy with {self.in_flight} requests "
                              "(its limit): retry shortly", retry_after=1, overloaded=True)
        self.loop = asyncio.get_running_loop()
        try:
            frame = wire.encode(message)
        except ValueError:
            raise InvalidArgument("instances hold NaN or Infinity, which JSON does not have: "
                                  "send null for a missing value", field="instances") from None
        self.in_flight += 1
        try:
            return await self._exchange(frame, timeout)
        finally:
            self.in_flight -= 1

    async def _exchange(self, frame: bytes, timeout: float) -> Any:
        what = self.target.deployment.id
        conn = self.idle.pop() if self.idle else None
        try:
            if conn is None:
                conn = await asyncio.open_unix_connection(self.socket)
            reader, writer = conn
            writer.write(frame)
            await writer.drain()
            answer = await asyncio.wait_for(wire.read_frame(reader), timeout)
        except TimeoutError:
            self._discard(conn)
            raise Unavailable(f"the replica of {what} did not answer within {timeout:g} s",
                              retry_after=1) from None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self._discard(conn)
            raise Unavailable(f"the replica of {what} stopped answering; a new one is "
                              "starting: retry shortly", retry_after=1) from None
        if self.state == "ready" and len(self.idle) < IDLE_CONNECTIONS:
            self.idle.append(conn)
        else:
            conn[1].close()
        if isinstance(answer, dict) and "error" in answer:
            wire.raise_error(answer)
        if not isinstance(answer, dict) or not isinstance(answer.get("predictions"), list):
            raise Unavailable(f"the replica of {what} answered nonsense", retry_after=1)
        return answer

    @staticmethod
    def _discard(conn: Connection | None) -> None:
        if conn is not None:
            conn[1].close()


@dataclass
class Route:
    router: Router
    targets: dict[str, DeployedModel]  # deployed model id -> deployment (those that answer)
    shadows: list[DeployedModel] = field(default_factory=list)  # get a copy of each request


@dataclass
class Pool:
    """The replicas of one deployment and its recent load (for the autoscaler)."""

    target: DeployedModel
    replicas: list[Replica] = field(default_factory=list)
    signature: dict[str, Any] | None = None
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    calm_since: float = field(default_factory=time.monotonic)
    turn: int = 0

    def choose(self, max_in_flight: int = MAX_IN_FLIGHT) -> Replica | None:
        """The ready replica with the fewest requests in flight (ties in turn); None
        when none is ready."""
        ready = [r for r in self.replicas if r.state == "ready"]
        if not ready:
            return None
        self.turn += 1
        count = len(ready)
        return min((ready[(self.turn + i) % count] for i in range(count)),
                   key=lambda r: r.in_flight)

    def ever_ready(self) -> bool:
        return any(r.state == "ready" for r in self.replicas)


@dataclass
class Supervisor:
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

    # -- desired state -----------------------------------------------------------------------

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
                    for _ in range(target.deployment.min_replicas):
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
                     "in_flight": r.in_flight, "shadow": r.target.deployment.shadow}
                    for key, pool in self.pools.items() for r in pool.replicas]

    # -- the data plane ----------------------------------------------------------------------

    def project_of(self, endpoint: str) -> str | None:
        """The project of the one served endpoint named ``endpoint`` (KServe and OIP paths
        name no project); None when none is served here. ``Conflict`` when several
        projects serve that name."""
        found = [project for (project, name) in self.routes if name == endpoint]
        if len(found) > 1:
            raise Conflict(f"{len(found)} projects have an endpoint named {endpoint!r}: use "
                           "the path that names the project, /v1/projects/{project}/"
                           f"locations/-/endpoints/{endpoint}:predict", field="name")
        return found[0] if found else None

    def signature_of(self, project: str, endpoint: str, version: str | None = None
                     ) -> dict[str, Any] | None:
        """The input signature of the endpoint's deployment ``version`` names (else of its
        first one), from its replica; None when unknown."""
        route = self.routes.get((project, endpoint))
        if route is None or not route.targets:
            return None
        target = next(iter(route.targets.values()))
        if version is not None:
            with contextlib.suppress(ShipyardError):
                target = _pinned(route, endpoint, version)
        pool = self.pools.get(target.key) or self.retiring.get(target.key)
        return None if pool is None else pool.signature

    def targets_of(self, project: str, endpoint: str) -> list[DeployedModel]:
        """The deployments served for an endpoint (in-memory; empty when none)."""
        route = self.routes.get((project, endpoint))
        return [] if route is None else list(route.targets.values())

    async def predict(self, project: str, endpoint: str, instances: list[Any],
                      version: str | None = None, request_id: str | None = None
                      ) -> Prediction:
        """One prediction through the endpoint's split, or from the deployment ``version``
        names (its model version number or its deployed model id) when given.
        ``request_id`` goes to the request log with the shadows' answers."""
        prediction, _ = await self.ask(project, endpoint, {"instances": instances}, version,
                                       request_id)
        return prediction

    async def explain(self, project: str, endpoint: str, instances: list[Any],
                      method: str | None = None, path_count: int | None = None
                      ) -> tuple[Prediction, list[dict[str, Any]]]:
        """Predictions and attributions (``serving.explain``) from one deployment."""
        prediction, answer = await self.ask(project, endpoint, {
            "op": "explain", "instances": instances, "method": method,
            "path_count": path_count})
        explanations = answer.get("explanations")
        if not isinstance(explanations, list):
            raise Unavailable(f"the replica of {prediction.deployed_model_id} answered "
                              "nonsense", retry_after=1)
        return prediction, explanations

    def pick(self, project: str, endpoint: str, version: str | None = None
             ) -> DeployedModel:
        """The deployment that answers the next request: by the split (``draw``), or the
        one ``version`` names."""
        route = self.routes.get((project, endpoint))
        if route is None:
            raise NotFound(f"no endpoint named {endpoint!r} is served here", field="name")
        return (route.targets[route.router.choose(self.draw())] if version is None
                else _pinned(route, endpoint, version))

    async def ask(self, project: str, endpoint: str, message: dict[str, Any],
                  version: str | None = None, request_id: str | None = None
                  ) -> tuple[Prediction, dict[str, Any]]:
        """Send ``message`` to a replica of the deployment the split (or ``version``)
        picks, and a copy to the endpoint's shadows."""
        route = self.routes.get((project, endpoint))
        if route is None:
            # Deployed elsewhere since the last refresh, or not deployed at all.
            await asyncio.to_thread(self.refresh)
            route = self.routes.get((project, endpoint))
            if route is None:
                ep = await asyncio.to_thread(service.get_endpoint, self.store, project,
                                             endpoint)  # NotFound if there is none
                raise FailedPrecondition(f"endpoint {ep.name!r} has no deployed model: "
                                         "deploy one first", field="name")
        target = self.pick(project, endpoint, version)
        replica = self._replica_for(route, target, fall_back=version is None)
        if replica is None:
            pool = self.pools.get(target.key)
            found = pool.replicas[0] if pool is not None and pool.replicas else None
            state = "gone" if found is None else found.state
            why = f": {found.error}" if found is not None and found.error else ""
            raise Unavailable(f"the replica of {target.deployment.id} is {state}{why}; retry "
                              "shortly", retry_after=1)
        deployment = replica.target.deployment  # the version that answers
        if route.shadows and message.get("op") in (None, "predict"):
            self._mirror(route, message, request_id)
        try:
            answer = await replica.call(message, self.request_timeout, self.max_in_flight)
        except Unavailable as exc:
            if not exc.details.get("overloaded"):
                self._wake.set()  # it may have died: let the watcher look now
            raise
        return Prediction(predictions=answer["predictions"], deployed_model_id=deployment.id,
                          model=deployment.model, model_version=deployment.version), answer

    def _replica_for(self, route: Route, target: DeployedModel, fall_back: bool
                     ) -> Replica | None:
        """A ready replica of ``target``; else of the version it is moving from; else
        (``fall_back``, a request the split routed) of the deployment with the largest
        share that has one, so a deployment still starting loses no request."""
        pool = self.pools.get(target.key)
        if pool is None:  # a route read just before a refresh moved it to the retiring
            pool = next((p for p in list(self.retiring.values()) if p.target.key == target.key),
                        None)
        replica = None if pool is None else pool.choose()
        if replica is None and target.key in self.retiring:
            replica = self.retiring[target.key].choose()
        if replica is None and fall_back:
            for other in sorted(route.targets.values(),
                                key=lambda t: -t.deployment.traffic_percentage):
                other_pool = self.pools.get(other.key)
                if other is not target and other_pool is not None:
                    replica = other_pool.choose()
                    if replica is not None:
                        break
        return replica

    # -- shadows -----------------------------------------------------------------------------

    def _mirror(self, route: Route, message: dict[str, Any], request_id: str | None) -> None:
        """Send a copy of ``message`` to each shadow with a ready replica that has room;
        not awaited, so a shadow adds no latency and its failures reach no caller."""
        for shadow in route.shadows:
            pool = self.pools.get(shadow.key)
            replica = None if pool is None else pool.choose()
            if replica is None or replica.in_flight >= self.max_in_flight:
                self.shadow_failures += 1
                continue
            task = asyncio.get_running_loop().create_task(
                self._shadow(replica, pool.signature if pool else None, message,
                             request_id or new_id()))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, replica: Replica, signature: dict[str, Any] | None,
                      message: dict[str, Any], request_id: str) -> None:
        started = time.perf_counter()
        try:
            answer = await replica.call(message, self.request_timeout, self.max_in_flight)
        except Exception:  # a shadow's failure is its own: counted, never raised
            self.shadow_failures += 1
            return
        self.shadow_answers += 1
        logged = self.request_log
        if logged is None or not logged.sampled():
            return
        target = replica.target
        logged.record(Logged(
            request_id=request_id, time=time.time(), project=target.project,
            endpoint=target.endpoint, deployed_model_id=target.deployment.id,
            model_version=target.deployment.version, protocol="shadow",
            latency_ms=(time.perf_counter() - started) * 1000, rows=message["instances"],
            predictions=answer["predictions"], names=signature_names(signature),
            shadow=True))

    # -- processes ---------------------------------------------------------------------------

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
                [sys.executable, "-m", "shipyard.serving.replica"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, cwd="/",
                start_new_session=True)  # fmt: skip
        replica = Replica(target, socket, process)
        replica.signature = pool.signature = version.signature
        config = {"socket": socket, "version": version.model_dump(mode="json"),
                  "home": str(self.settings.home), "artifacts": self.settings.artifacts,
                  "trusted_types": list(self.settings.trusted_types),
                  "trusted_digests": list(self.settings.trusted_digests)}
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
                wanted = min(max(math.ceil(mean / self.target_in_flight - 1e-9),
                                 deployment.min_replicas), deployment.max_replicas)
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


def _pinned(route: Route, endpoint: str, version: str) -> DeployedModel:
    """The deployment a version-pinned request names: ``3`` (the model version, when one
    model has it here) or ``lead-scoring:3`` (the deployed model id)."""
    if version in route.targets:
        return route.targets[version]
    found = [t for t in route.targets.values() if str(t.deployment.version) == version]
    if len(found) == 1:
        return found[0]
    deployed = sorted(route.targets)
    if not found:
        raise NotFound(f"endpoint {endpoint!r} serves no version {version[:64]!r}: it serves "
                       f"{deployed}", field="version")
    raise InvalidArgument(f"version {version!r} of several models is deployed on "
                          f"{endpoint!r}: name one of {deployed}", field="version")

