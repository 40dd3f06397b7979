"""The server's side of replica processes: a ``Replica`` per process (its socket, idle
connections and requests in flight), the ``Pool`` of one deployment's replicas, and the
``Route`` of one endpoint (its split, the deployments that answer, its shadows).

Predictions run on the server's event loop (``Replica.call`` is a coroutine): idle
connections per replica are kept for the next request. Each replica takes at most
``max_in_flight`` requests at once (64 by default); one more is shed at once with 503 and
Retry-After rather than queued behind the others, so an overloaded model answers "later"
instead of timing out everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any

from shipyard.errors import InvalidArgument, NotFound, Unavailable
from shipyard.pipelines._process import kill_group
from shipyard.serving import wire
from shipyard.serving.service import DeployedModel
from shipyard.serving.traffic import Router

IDLE_CONNECTIONS = 64
MAX_IN_FLIGHT = 64
# The module a replica process runs, by its deployment's runtime: the model itself, or the
# bridge to the Ray Serve application that runs it (``ray_bridge``).
RUNNERS = {"local": "shipyard.serving.replica", "ray": "shipyard.serving.ray_bridge"}
# A Ray bridge told to stop (its stdin closed) deletes its application first; killed if it
# has not ended after this long.
BRIDGE_STOP_SECONDS = 60.0

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
        if self.target.deployment.runtime == "ray" and self.process.poll() is None:
            self._let_go()
            return
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

    def _let_go(self) -> None:
        """Stop a Ray bridge: the end of its stdin makes it delete its Ray Serve application
        and exit; a thread waits for that (killing it after ``BRIDGE_STOP_SECONDS``), so
        the watcher that stops it does not."""
        process = self.process
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        self._close_idle()
        with contextlib.suppress(OSError):
            os.unlink(self.socket)

        def wait() -> None:
            try:
                process.wait(timeout=BRIDGE_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                kill_group(process.pid)
                process.wait()
            if process.stdout is not None:
                with contextlib.suppress(OSError):
                    process.stdout.close()

        threading.Thread(target=wait, daemon=True, name=f"stop-{process.pid}").start()

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

    @property
    def bounds(self) -> tuple[int, int]:
        """The replica processes the supervisor keeps: the deployment's ``min_replicas`` to
        ``max_replicas``, or one bridge for a Ray deployment (Ray Serve scales its replicas
        between those bounds)."""
        deployment = self.target.deployment
        if deployment.runtime == "ray":
            return 1, 1
        return deployment.min_replicas, deployment.max_replicas


def pinned(route: Route, endpoint: str, version: str) -> DeployedModel:
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
