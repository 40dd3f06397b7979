"""``ActiveRun``: the object ``start_run`` returns, with synchronous or background logging.

In background mode (``start_run(..., synchronous=False)``) every ``log_*`` call only appends
to an in-memory buffer; a thread sends the buffer as one batch per round trip. A server that
is briefly down (``Unavailable``) is retried with backoff, keeping everything buffered.
``flush()`` returns once every point logged before it is stored, and raises the first error
that cannot be retried (say, a NaN metric), so nothing is lost silently. Ending the run
flushes first.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidArgument, ShipyardError, Unavailable
from shipyard.tracking import source
from shipyard.tracking.models import MetricTuple, RunArtifact, RunData
from shipyard.tracking.points import MAX_BATCH_METRICS
from shipyard.tracking.port import TrackingPort
from shipyard.validation import check_name

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    metrics: list[MetricTuple] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags)


class BackgroundLogger:
    """Buffers log calls and writes them from one thread; see the module docstring."""

    def __init__(self, backend: TrackingPort, run_id: str, *, max_retry_seconds: float = 300.0):
        self._backend = backend
        self._run_id = run_id
        self._max_retry = max_retry_seconds
        self._cond = threading.Condition()
        self._pending = _Pending()
        self._queued = 0  # batches accepted but not yet stored
        self._stored = 0
        self._error: ShipyardError | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"shipyard-log-{run_id[:8]}",
                                        daemon=True)
        self._thread.start()

    def add(self, *, metrics: list[MetricTuple] | None = None,
            params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None
            ) -> None:
        with self._cond:
            self._raise_error()
            if metrics:
                self._pending.metrics.extend(metrics)
            if params:
                self._pending.params.update(params)
            if tags:
                self._pending.tags.update(tags)
            self._queued += 1
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything added so far is stored; raise a stored error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._queued
            while self._stored < target and self._error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise Unavailable("logging did not finish in time; the data is still "
                                      "buffered and being retried")
                self._cond.wait(remaining)
            self._raise_error()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join(timeout=5)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _take(self) -> tuple[_Pending, int] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            batch = _Pending(self._pending.metrics[:MAX_BATCH_METRICS], self._pending.params,
                             self._pending.tags)
            rest = self._pending.metrics[MAX_BATCH_METRICS:]
            self._pending = _Pending(rest)
            # Calls covered by this batch: all of them once nothing is left behind.
            covered = self._queued if not rest else self._stored
            return batch, covered

    def _loop(self) -> None:
        while (taken := self._take()) is not None:
            batch, covered = taken
            delay, started = 0.1, time.monotonic()
            while True:
                try:
                    self._backend.log_batch(self._run_id, metrics=batch.metrics,
                                            params=batch.params or None,
                                            tags=batch.tags or None)
                    break
                except Unavailable as exc:
                    if time.monotonic() - started > self._max_retry:
                        self._fail(exc)
                        break
                    log.warning("logging paused, retrying in %.1fs: %s", delay, exc.message)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except ShipyardError as exc:
                    self._fail(exc)
                    break
                except Exception as exc:  # a bug must not hang flush() forever
                    log.exception("background logging failed")
                    self._fail(ShipyardError(f"background logging failed: {exc!r}"))
                    break
            with self._cond:
                self._stored = max(self._stored, covered)
                self._cond.notify_all()

    def _fail(self, exc: ShipyardError) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc


class Heartbeat:
    """Tells the store, every ``interval`` seconds from a daemon thread, that the run's
    client is alive; a run whose client stops (a killed process, a lost machine) ends
    KILLED once ``LEASE_BEATS`` beats were missed. A failed beat is retried at the next."""

    LEASE_BEATS = 4

    def __init__(self, backend: TrackingPort, run_id: str, interval: float) -> None:
        self._backend = backend
        self._run_id = run_id
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"shipyard-heartbeat-{run_id[-6:]}")
        self._thread.start()

    def _beat(self) -> None:
        lease = max(self._interval * self.LEASE_BEATS, 1.0)
        while not self._stop.is_set():
            try:
                if self._backend.heartbeat_run(self._run_id, lease) != "RUNNING":
                    return  # ended: nothing left to vouch for
            except Exception as exc:  # the store or server is away (or closed): beat again
                log.debug("heartbeat of run %s failed: %s", self._run_id, exc)
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()


class ActiveRun:
    """A run being logged to. Use as a context manager: the run ends FINISHED, or FAILED
    when the block raises. With ``heartbeat`` (seconds), the run is kept alive from a
    background thread and ends KILLED if this process dies without ending it."""

    def __init__(self, backend: TrackingPort, data: RunData, *, synchronous: bool = True,
                 heartbeat: float | None = None) -> None:
        self._backend = backend
        self._data = data
        self._logger = None if synchronous else BackgroundLogger(backend, data.id)
        self._heartbeat = None if heartbeat is None else Heartbeat(backend, data.id, heartbeat)

    # -- identity ------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._data.id

    @property
    def name(self) -> str:
        return self._data.name

    @property
    def experiment(self) -> str:
        return self._data.experiment

    @property
    def status(self) -> str:
        return self._data.status

    @property
    def data(self) -> RunData:
        """A fresh copy of the run as stored (after flushing buffered logs)."""
        self.flush()
        self._data = self._backend.get_run(self.id)
        return self._data

    @property
    def params(self) -> dict[str, str]:
        return self.data.params

    @property
    def metrics(self) -> dict[str, float]:
        return self.data.metrics

    @property
    def tags(self) -> dict[str, str]:
        return self.data.tags

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.name!r}, experiment={self.experiment!r})"

    # -- logging -------------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        self._send(params=dict(params))

    def log_param(self, key: str, value: Any) -> None:
        self._send(params={key: value})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None,
                    timestamp: int | None = None) -> None:
        s = 0 if step is None else step
        points: list[MetricTuple] = (
            [(k, v, s) for k, v in metrics.items()] if timestamp is None
            else [(k, v, s, timestamp) for k, v in metrics.items()]
        )
        self._send(metrics=points)

    def log_metric(self, key: str, value: float, step: int | None = None,
                   timestamp: int | None = None) -> None:
        # The hot path of a training loop: one point, straight to the port (log_metrics
        # would build a dict and a list first).
        s = 0 if step is None else step
        point: MetricTuple = (key, value, s) if timestamp is None else (key, value, s, timestamp)
        if self._logger is not None:
            self._logger.add(metrics=[point])
        else:
            self._backend.log_batch(self._data.id, metrics=[point])

    def log_batch(self, metrics: Sequence[MetricTuple] = (),
                  params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> None:
        """Log many points at once: ``metrics`` as ``(key, value, step[, timestamp_ms])``
        tuples, plus params and tags, in one write."""
        self._send(metrics=list(metrics), params=params,
                   tags={k: str(v) for k, v in tags.items()} if tags else None)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._send(tags={k: str(v) for k, v in tags.items()})

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def log_artifact(self, path_or_object: Any, name: str | None = None) -> RunArtifact:
        """Store a file, a directory or a small object with the run, under ``name``.

        ``path_or_object`` is one of:

        * a path (``str`` or ``os.PathLike``) to a file or directory, stored as it is
          (``name`` defaults to its last part). A path that does not exist is an
          ``InvalidArgument``: nothing is stored.
        * ``bytes`` (or ``bytearray``), stored as they are;
        * a ``dict`` or ``list`` of JSON values, stored as JSON (numpy numbers and arrays
          become JSON numbers and lists).

        An object needs a ``name``; text goes through ``log_text``. Anything else is an
        ``InvalidArgument``: save it to a file and log the file.
        """
        self.flush()
        if isinstance(path_or_object, str | os.PathLike):
            path = Path(path_or_object)
            if not path.exists():
                raise InvalidArgument(
                    f"path_or_object: no such file or directory: {path}; a str is a path "
                    "(log text with log_text)", field="path_or_object")
            return self._backend.log_artifact(self.id, path, name)
        return self._log_bytes(_object_bytes(path_or_object), name)

    def log_text(self, text: str, name: str) -> RunArtifact:
        """Store ``text`` (UTF-8) with the run as the file ``name``, e.g. ``notes.txt``."""
        if not isinstance(text, str):
            raise InvalidArgument("text must be a str", field="text")
        self.flush()
        return self._log_bytes(text.encode(), name)

    def _log_bytes(self, data: bytes, name: str | None) -> RunArtifact:
        if name is None:
            raise InvalidArgument("name is required when logging an object or text",
                                  field="name")
        check_name(name, "name")  # before it becomes a file name, even a temporary one
        with tempfile.TemporaryDirectory(prefix="shipyard-obj-") as scratch:
            path = Path(scratch) / name
            path.write_bytes(data)
            return self._backend.log_artifact(self.id, path, name)

    def _send(self, *, metrics: list[MetricTuple] | None = None,
              params: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None
              ) -> None:
        if self._logger is not None:
            self._logger.add(metrics=metrics, params=params, tags=tags)
        else:
            self._backend.log_batch(self.id, metrics=metrics or (), params=params, tags=tags)

    def flush(self, timeout: float | None = None) -> None:
        if self._logger is not None:
            self._logger.flush(timeout)

    def end(self, status: str = "FINISHED") -> RunData:
        if self._heartbeat is not None:
            self._heartbeat.stop()
        try:
            self._record_packages()
            if self._logger is not None:
                self._logger.close()
        finally:
            self._data = self._backend.terminate_run(self.id, status)
        return self._data

    def _record_packages(self) -> None:
        # At the end, so it lists what the run's code imported along the way.
        if source.PACKAGES_TAG not in self._data.tags:
            packages = source.packages_tag()
            if packages is not None:
                self._send(tags={source.PACKAGES_TAG: packages})

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        if exc_type is None:
            self.end("FINISHED")
        else:
            status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
            try:
                self.end(status)
            except ShipyardError:
                log.exception("could not mark run %s %s", self.id, status)


def _object_bytes(obj: Any) -> bytes:
    """The bytes ``log_artifact`` stores for an object of a documented kind."""
    if isinstance(obj, bytes | bytearray):
        return bytes(obj)
    if isinstance(obj, dict | list):
        try:
            return json.dumps(obj, indent=2, sort_keys=True, default=_numpy_value).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"path_or_object: the {type(obj).__name__} holds a value that is not JSON "
                f"({exc}): give a path, bytes, or a dict or list of JSON values; save "
                "anything else to a file and log the file", field="path_or_object") from None
    raise InvalidArgument(
        f"path_or_object: cannot log a {type(obj).__name__}: give a path (str or "
        "os.PathLike), bytes, or a dict or list of JSON values (text goes through "
        "log_text); save anything else to a file and log the file",
        field="path_or_object",
    )


def _numpy_value(value: Any) -> Any:
    # numpy scalars and arrays, met in metrics dicts; anything else is not JSON.
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
