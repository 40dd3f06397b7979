"""Batch prediction on Ray (``batch_predict(..., executor="ray")``): each chunk a Ray task.

The job is the same as on one machine (``serving.batch``): this process reads the source
in chunks, keeps the manifest and joins the parts, so the output, resuming and lineage are
the same. Only the predicting moves: each chunk not done yet is written to the job's parts
folder as Arrow IPC, handed to a Ray task that predicts it on any node, and its part comes
back and is written (temporary name, fsync, rename) before the manifest counts it. At most
``window`` chunks are in flight at once, on disk rather than in memory.

The model travels once: its folder (the version's files, which this process loaded under
its own trust settings) goes to the cluster as a tar through Ray's object store; each Ray
worker unpacks it into a scratch folder and loads it with the same ``LoadOptions``,
checking every file against the version's manifest, and keeps it for the chunks that
follow. So the nodes need ``shipyard`` and the model's libraries, no shared disk, no
artifact store and no database.

Ray's driver runs in a child process (``python -m shipyard.serving.batch_ray``), as for
pipelines (``pipelines._ray``): a driver whose head goes away is ended by Ray, which must
not end the caller. Its protocol is newline-delimited JSON on its stdin and stdout:

    here -> driver   {"op": "model", "folder": ..., "version": {...}, "options": {...}}
                     {"op": "chunk", "id": 3, "input": ".../in-3.arrow", "part": ".../part-3"}
    driver -> here   {"ready": true} once connected, or {"error": "..."} then it exits
                     {"id": 3} the part is written, or {"id": 3, "error": {...}}

End of file on its stdin ends the driver (and a local cluster it started).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from shipyard.errors import InvalidArgument, ShipyardError, Unavailable

__all__ = ["RayChunks"]

CONNECT_SECONDS = 120.0
DEFAULT_WINDOW = 4


class RayChunks:
    """This process's side of the driver: sends chunks, yields the ones whose part is
    written."""

    def __init__(self, model: Any, options: Any, window: int = DEFAULT_WINDOW) -> None:
        from shipyard.pipelines._ray import (
            RECONNECT_SECONDS,
            ray_address,
            reachable,
            require_ray,
        )

        require_ray()  # MissingDependency naming the extra, here rather than in the child
        self.address = ray_address()
        if not reachable(self.address):
            raise Unavailable(f"cannot reach the Ray cluster at {self.address}: its head "
                              "does not accept connections", retry_after=10)
        self.window = max(1, window)
        # Without this process's Shipyard settings (the database URI, a token): a local
        # cluster's workers are the driver's children and would inherit them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        # A lost head ends the driver after this long (Ray's default is a minute).
        env["RAY_gcs_rpc_server_reconnect_timeout_s"] = str(RECONNECT_SECONDS)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.serving.batch_ray", self.address],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
            start_new_session=True)  # fmt: skip
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="shipyard-batch-ray").start()
        first = self._next(CONNECT_SECONDS)
        if not first.get("ready"):
            self.close()
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise Unavailable(f"cannot reach {where}: {first.get('error', 'it ended')}",
                              retry_after=10)
        version = model.version
        self._send({"op": "model", "folder": str(model.path),
                    "version": {"name": version.name, "version": version.version},
                    "options": {"trusted_types": list(options.trusted_types),
                                "allow_pickle": bool(options.allow_pickle),
                                "trusted_digests": sorted(options.trusted_digests)}})
        self.in_flight: set[int] = set()

    def _read(self) -> None:
        out: IO[str] | None = self._process.stdout
        assert out is not None
        for line in out:
            with contextlib.suppress(ValueError):
                self._answers.put(json.loads(line))
        self._answers.put({"error": "the Ray driver process ended", "ended": True})

    def _next(self, timeout: float | None = None) -> dict[str, Any]:
        try:
            return self._answers.get(timeout=timeout)
        except queue.Empty:
            return {"error": f"no answer within {timeout:g}s", "ended": True}

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
        except (OSError, ValueError):
            raise Unavailable("lost the Ray driver process: the cluster went away",
                              retry_after=10) from None

    def submit(self, index: int, table: pa.Table, part: Path) -> None:
        """Send chunk ``index``; its part will be written at ``part``."""
        source = part.with_name(f"in-{index:08d}.arrow")
        with pa.OSFile(str(source), "wb") as sink, \
                pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self._send({"op": "chunk", "id": index, "input": str(source), "part": str(part)})
        self.in_flight.add(index)

    def full(self) -> bool:
        return len(self.in_flight) >= self.window

    def finished(self) -> Iterator[int]:
        """Wait for one chunk at least; yield every chunk whose part is written. A chunk
        the model failed on raises its error (naming the field, as on one machine)."""
        block = True
        while self.in_flight:
            try:
                answer = self._answers.get(block=block)
            except queue.Empty:
                return
            block = False
            if answer.get("ended") or "id" not in answer:
                raise Unavailable(f"lost the Ray cluster while predicting: "
                                  f"{answer.get('error', 'the driver ended')}", retry_after=10)
            index = int(answer["id"])
            self.in_flight.discard(index)
            error = answer.get("error")
            if error is not None:
                raise _error(error)
            yield index

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            with contextlib.suppress(OSError, ValueError):
                self._process.stdout.close()


def _error(error: dict[str, Any]) -> ShipyardError:
    message = str(error.get("message", "the Ray task failed"))[:1000]
    field = error.get("field")
    if error.get("kind") == "invalid_argument":
        return InvalidArgument(message, field=field if isinstance(field, str) else None)
    return Unavailable(f"the Ray task failed: {message}", retry_after=10)


# --- on a Ray worker -----------------------------------------------------------------------

_MODELS: dict[str, Any] = {}  # per Ray worker process: the model, loaded once


def predict_chunk(model_tar: bytes, key: str, version: dict[str, Any],
                  options: dict[str, Any], chunk: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """Run in a Ray worker: the chunk's part (``batch._predict``) as Arrow IPC bytes, or the
    error that names the field (a ``ShipyardError`` as data: it need not unpickle)."""
    import tempfile
    from types import SimpleNamespace

    from shipyard.pipelines._ray import _unpack
    from shipyard.registry import flavors
    from shipyard.registry.loaded import LoadedModel
    from shipyard.serving.batch import _predict

    about: Any = SimpleNamespace(**version)
    try:
        loaded = _MODELS.get(key)
        if loaded is None:
            scratch = Path(tempfile.mkdtemp(prefix="shipyard-batch-model-"))
            _unpack(model_tar, str(scratch))
            manifest, servable = flavors.load(scratch, flavors.LoadOptions(
                trusted_types=tuple(options["trusted_types"]),
                allow_pickle=bool(options["allow_pickle"]),
                trusted_digests=frozenset(options["trusted_digests"])))
            loaded = LoadedModel(about, manifest, servable, scratch)
            _MODELS.clear()
            _MODELS[key] = loaded
        table = pa.ipc.open_file(pa.BufferReader(chunk)).read_all()
        part = _predict(loaded, table, about)
    except ShipyardError as exc:
        return b"", {"kind": exc.kind, "message": exc.message, "field": exc.field}
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, part.schema) as writer:
        writer.write_table(part)
    return bytes(sink.getvalue().to_pybytes()), None


# --- the driver process --------------------------------------------------------------------


def _drive(address: str) -> None:
    """In the driver process: connect, load the model message, run chunks as Ray tasks and
    write their parts, until stdin ends."""
    from shipyard.pipelines._ray import _pack, open_bridge
    from shipyard.serving.batch import _fsync

    opened = open_bridge(address, predict_chunk)
    if opened is None:
        return
    tell, ray, task = opened
    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            with contextlib.suppress(ValueError):
                inbox.put(json.loads(line))
        inbox.put(None)

    threading.Thread(target=read, daemon=True).start()
    model: Any = None
    pending: dict[Any, tuple[int, str]] = {}
    while True:
        messages = []
        with contextlib.suppress(queue.Empty):
            messages.append(inbox.get(timeout=0.05 if pending else None))
            while True:
                messages.append(inbox.get_nowait())
        for message in messages:
            if message is None:
                if not address:
                    ray.shutdown()
                os._exit(0)
            if message["op"] == "model":
                folder = message["folder"]
                version = message["version"]
                key = f"{version['name']}:{version['version']}"
                model = (ray.put(_pack(folder)), key, version, message["options"])
                continue
            source = message["input"]
            with open(source, "rb") as given:
                chunk = given.read()
            os.unlink(source)
            ref = task.remote(*model, chunk)
            pending[ref] = (int(message["id"]), message["part"])
        if not pending:
            continue
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.2)
        for ref in ready:
            ident, part = pending.pop(ref)
            try:
                data, error = ray.get(ref)
            except Exception as exc:  # a lost node, a worker that died
                error = {"kind": "unavailable", "message": str(exc)[:1000]}
            if error is not None:
                tell({"id": ident, "error": error})
                continue
            tmp = f"{part}.tmp"
            with open(tmp, "wb") as written:
                written.write(data)
            _fsync(Path(tmp))
            os.replace(tmp, part)
            tell({"id": ident})


if __name__ == "__main__":
    _drive(sys.argv[1] if len(sys.argv) > 1 else "")
