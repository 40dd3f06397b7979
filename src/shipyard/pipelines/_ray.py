"""The Ray launcher: each step a Ray task (``backend="ray"``, ``pip install 'shipyard[ray]'``).

The task runs ``_executor.run_captured`` in a Ray worker, a process Shipyard does not own:
the step's environment and output capture last only for the step. The request and the
result cross to the worker as JSON, as they do to a step process, and the step's folder
travels with them (``run_shipped``): its inputs, copied there from the artifact store, go
to the node as a tar through Ray's object store, and what the step wrote (its output
artifacts and files, its log) comes back the same way and is stored by the runner. So the
nodes share no disk with the worker, and need neither the artifact store nor the database.

Ray's driver does not live in this process but in a child of its own, the *bridge*
(``python -m shipyard.pipelines._ray``, started by ``start_ray``): a Ray driver whose head
goes away terminates its whole process after a minute, and cannot reconnect to a head
that comes back. So a lost head ends only the bridge (it watches its head's port, and Ray
is told to give up after ``RECONNECT_SECONDS``): the steps it was running fail saying so,
and the next step starts a new bridge, which connects to the head once it is back (or
fails with ``Unavailable`` while it is not). ``reachable`` tells a worker
whether the head ``RAY_ADDRESS`` names answers at all, so that it claims no Ray run while
it does not (``worker.sources.PipelineQueue``).

Bridge protocol, newline-delimited JSON on the bridge's stdin and stdout:

    here -> bridge   {"op": "start", "id": 7, "request": {...}, "cpus": 1}
                     {"op": "cancel", "id": 7}
    bridge -> here   {"ready": true} once connected, or {"error": "..."} then it exits
                     {"id": 7, "result": {...}} a step's end (a ``StepResult``'s JSON)

End of file on its stdin (this process ended, even SIGKILLed) ends the bridge.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urlsplit

from shipyard.errors import MissingDependency, Unavailable
from shipyard.pipelines._messages import StepRequest, StepResult

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 10  # how long a bridge waits for a lost head before it gives up
CONNECT_SECONDS = 120.0  # how long a new bridge may take to connect (or start a local Ray)
_PROBE_SECONDS = 1.0


def require_ray() -> Any:
    """The ``ray`` module, or ``MissingDependency`` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise MissingDependency("ray", "ray") from None
    return ray


def ray_address() -> str:
    """The cluster steps go to: ``RAY_ADDRESS``, or "" for a local one Ray starts."""
    return os.environ.get("RAY_ADDRESS", "").strip()


def _endpoint(address: str) -> tuple[str, int] | None:
    """The host and port a Ray address connects to first (the head's GCS, or a Ray Client
    server for ``ray://``); None for a local cluster or an address we cannot read."""
    if not address or address in ("auto", "local"):
        return None
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    try:
        port = parts.port or (10001 if parts.scheme == "ray" else 6379)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


def reachable(address: str | None = None) -> bool:
    """Whether the Ray head ``address`` (default ``RAY_ADDRESS``) accepts connections; a
    local cluster (no address) always is, the bridge starting one of its own."""
    endpoint = _endpoint(ray_address() if address is None else address)
    if endpoint is None:
        return True
    try:
        socket.create_connection(endpoint, timeout=_PROBE_SECONDS).close()
    except OSError:
        return False
    return True


class _Bridge:
    """This process's side of a bridge: sends steps, collects their results."""

    def __init__(self, address: str) -> None:
        require_ray()  # MissingDependency here, not in the child
        self.address = address
        # Without this process's own settings (the database URI, its token): a local
        # cluster's Ray workers are the bridge's children and would inherit them, and a
        # step gets what it should have from its request.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        env["RAY_gcs_rpc_server_reconnect_timeout_s"] = str(RECONNECT_SECONDS)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.pipelines._ray", address],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
            start_new_session=True,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._results: dict[int, StepResult] = {}
        self._next = 0
        self._ended = threading.Event()
        self._ready: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="shipyard-ray-bridge")
        self._reader.start()
        try:
            first = self._ready.get(timeout=CONNECT_SECONDS)
        except queue.Empty:
            first = {"error": f"no answer within {CONNECT_SECONDS:g}s"}
        if not first.get("ready"):
            self.close()
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            raise Unavailable(f"cannot reach {where}: {first.get('error', 'it ended')}",
                              retry_after=RECONNECT_SECONDS)

    @property
    def alive(self) -> bool:
        return not self._ended.is_set() and self._process.poll() is None

    def _read(self) -> None:
        out: IO[str] | None = self._process.stdout
        assert out is not None
        for line in out:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "id" not in message:
                self._ready.put(message)
                continue
            try:
                result = StepResult.from_json(message["result"])
            except (KeyError, TypeError, ValueError) as exc:
                result = StepResult.failed(f"the Ray task returned a malformed result: {exc}")
            with self._lock:
                self._results[int(message["id"])] = result
        self._ended.set()
        self._ready.put({"error": "the Ray driver process ended"})
        out.close()
        with contextlib.suppress(OSError, ValueError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)  # reaped, or ``close`` kills it

    def _send(self, message: dict[str, Any]) -> bool:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
        except (OSError, ValueError):  # it ended: its steps are reported lost
            return False
        return True

    def start(self, request: StepRequest) -> _RayHandle:
        with self._lock:
            self._next += 1
            ident = self._next
        self._send({"op": "start", "id": ident, "request": request.to_json(),
                    "cpus": request.cpus or 1})
        return _RayHandle(self, ident)

    def poll(self, ident: int) -> StepResult | None:
        with self._lock:
            if ident in self._results:
                return self._results.pop(ident)
        if self._ended.is_set():
            with self._lock:  # a last line may have come in just before the end
                if ident in self._results:
                    return self._results.pop(ident)
            where = f"the Ray cluster at {self.address}" if self.address else "Ray"
            return StepResult.failed(
                f"lost {where} while the step ran (its head stopped answering for "
                f"{RECONNECT_SECONDS}s, or the driver process ended); the step did not finish")
        return None

    def cancel(self, ident: int) -> None:
        self._send({"op": "cancel", "id": ident})

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=10 if self.address == "" else 2)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=5)  # it reads to the end of the dead process's output
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._ended.set()


_bridge: _Bridge | None = None
_bridge_lock = threading.Lock()


def start_ray() -> _Bridge:
    """This process's bridge to the cluster ``RAY_ADDRESS`` names: the live one, or a new
    one when there is none, it died (its head was lost) or the address changed.
    ``Unavailable`` when the cluster cannot be reached."""
    global _bridge
    address = ray_address()
    up = reachable(address)  # a connect to the head: a step starts on a live head only
    with _bridge_lock:
        if _bridge is not None and (not up or not _bridge.alive or _bridge.address != address):
            old, _bridge = _bridge, None
            old.close()
            log.warning("reconnecting to Ray (%s)", address or "local")
        if not up:
            raise Unavailable(f"cannot reach the Ray cluster at {address}: its head does "
                              "not accept connections", retry_after=RECONNECT_SECONDS)
        if _bridge is None:
            _bridge = _Bridge(address)
        return _bridge


def stop_ray() -> None:
    """End this process's bridge (and a local cluster it started)."""
    global _bridge
    with _bridge_lock:
        if _bridge is not None:
            old, _bridge = _bridge, None
            old.close()


class _RayHandle:
    def __init__(self, bridge: _Bridge, ident: int) -> None:
        self._bridge = bridge
        self._ident = ident
        self._result: StepResult | None = None

    @property
    def sentinel(self) -> int | None:
        return None

    def done(self) -> bool:
        if self._result is None:
            self._result = self._bridge.poll(self._ident)
        return self._result is not None

    def result(self) -> StepResult:
        while not self.done():
            time.sleep(0.05)
        assert self._result is not None
        return self._result

    def kill(self) -> None:
        if self._result is None:
            self._bridge.cancel(self._ident)
            self._result = StepResult.failed("the Ray task was cancelled")


class RayLauncher:
    """Starts each step as a Ray task asking for the step's ``cpus`` (one by default), on
    the cluster ``RAY_ADDRESS`` names or, without it, a local one Ray starts; through this
    process's bridge (``start_ray``), reconnecting when the head was lost."""

    blocking = False

    def __init__(self) -> None:
        require_ray()

    def start(self, request: StepRequest) -> _RayHandle:
        return start_ray().start(request)

    def close(self) -> None:
        return None  # Ray stays up for the runs that follow, as it would for any caller


# --- the step's folder travels with its task --------------------------------------------


def _pack(root: str, *, skip: tuple[str, ...] = ()) -> bytes:
    """The folder ``root`` as an uncompressed tar (its top-level entries in ``skip`` left
    out)."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in sorted(os.listdir(root)):
            if entry not in skip:
                tar.add(os.path.join(root, entry), arcname=entry)
    return buffer.getvalue()


def _unpack(data: bytes, root: str) -> None:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(root, filter="data")  # no links out, no absolute paths


def _moved(value: Any, old: str, new: str) -> Any:
    """``value`` (a request's JSON) with every path under folder ``old`` under ``new``."""
    if isinstance(value, str):
        if value == old or value.startswith(old + os.sep):
            return new + value[len(old):]
        return value
    if isinstance(value, list):
        return [_moved(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    return value


def run_shipped(request_json: dict[str, Any], folder: bytes) -> tuple[dict[str, Any], bytes]:
    """Run in a Ray worker, on any node: unpack the step's folder (its inputs) into a
    scratch folder of this node, run the step there, and send back what it wrote (all but
    its inputs). So a cluster needs no disk shared with the worker."""
    import shutil
    import tempfile

    from shipyard.pipelines import _executor

    scratch = tempfile.mkdtemp(prefix="shipyard-ray-")
    try:
        _unpack(folder, scratch)
        here = _moved(request_json, request_json["folder"], scratch)
        request = {k: v for k, v in here.items() if k not in ("params", "component")}
        request.update(params=request_json["params"], component=request_json["component"])
        result = _executor.run_captured(request)
        return result, _pack(scratch, skip=("inputs",))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the bridge process ------------------------------------------------------------------


def open_bridge(address: str, work: Callable[..., Any]
                ) -> tuple[Callable[[dict[str, Any]], None], Any, Any] | None:
    """In a bridge process (Ray's driver, a child of ours): keep stdout for the JSON-lines
    protocol, connect to ``address`` and make ``work`` a Ray task. Tells the parent
    ``{"ready": true}`` and returns the ``tell`` function, the ``ray`` module and the task,
    or tells it the error and returns None."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever Ray or a library prints goes to stderr, not into the protocol

    def tell(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")

    try:
        ray = require_ray()

        # "local": a cluster of its own, never one another program left on this machine.
        ray.init(address=address or "local", ignore_reinit_error=True,
                 include_dashboard=False, log_to_driver=False)
        task = ray.remote(work)
    except Exception as exc:
        tell({"error": f"{type(exc).__name__}: {exc}"})
        return None
    tell({"ready": True})
    return tell, ray, task


def _serve(address: str) -> None:
    """Run in the bridge process: connect, then run the steps read from stdin as Ray tasks
    and write their results to stdout, until stdin ends."""
    opened = open_bridge(address, run_shipped)
    if opened is None:
        return
    tell, ray, task = opened
    if _endpoint(address) is not None:
        threading.Thread(target=_watch_head, args=(address,), daemon=True).start()
    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            with contextlib.suppress(ValueError):
                inbox.put(json.loads(line))
        inbox.put(None)

    threading.Thread(target=read, daemon=True).start()
    pending: dict[Any, int] = {}  # Ray object ref -> step id
    refs: dict[int, Any] = {}
    folders: dict[int, str] = {}  # step id -> its folder here
    while True:
        messages = []
        with contextlib.suppress(queue.Empty):
            messages.append(inbox.get(timeout=0.05 if pending else None))
            while True:
                messages.append(inbox.get_nowait())
        for message in messages:
            if message is None:  # this process's owner is gone: nobody left to tell
                if not address:
                    ray.shutdown()  # the local cluster it started
                os._exit(0)
            ident = int(message["id"])
            if message["op"] == "start":
                request = message["request"]
                try:  # the step's folder, its inputs in it, travels with the task
                    packed = ray.put(_pack(request["folder"]))
                except OSError as exc:
                    tell({"id": ident, "result": StepResult.failed(
                        f"the step's folder could not be sent to Ray: {exc}").to_json()})
                    continue
                ref = task.options(num_cpus=message["cpus"]).remote(request, packed)
                pending[ref] = ident
                refs[ident] = ref
                folders[ident] = request["folder"]
            elif message["op"] == "cancel" and ident in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(refs[ident], force=True)
        if not pending:
            continue
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.2)
        for ref in ready:
            ident = pending.pop(ref)
            refs.pop(ident, None)
            folder = folders.pop(ident)
            try:
                result, written = ray.get(ref)
                _unpack(written, folder)  # its outputs and log, where the runner reads them
            except Exception as exc:  # a lost worker, a cancelled task, a full disk
                result = StepResult.failed(f"the Ray task failed: {exc}").to_json()
            tell({"id": ident, "result": result})


def _watch_head(address: str) -> None:
    """In the bridge: end it as soon as its head stops accepting connections. Ray would
    wait ``RECONNECT_SECONDS`` for it, and a head restarted meanwhile is a new cluster
    this driver cannot use; the next step starts a new bridge."""
    while True:
        time.sleep(0.5)
        if not reachable(address):
            os._exit(75)


if __name__ == "__main__":
    _serve(sys.argv[1] if len(sys.argv) > 1 else "")
