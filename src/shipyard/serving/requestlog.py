"""Request-response logging: a sample of predictions, written in batches to Parquet in the
artifact store, and ground truth attached to a request id later (feedback).

The server's data plane hands each answered prediction, and each request that failed once it
was routed to a deployment (the model raised, the input did not fit its signature, its
replica was busy, gone or too slow), to ``RequestLog.record``, which keeps it with
probability ``rate`` (``settings.extra["serving_log_rate"]``, default 1.0: every
request). A writer thread turns what was kept into one Parquet file per endpoint and hour
every ``flush_seconds`` (5 s) or ``batch_rows`` (1,000 instances), whichever comes first,
and at shutdown. Files go through the artifact store's backend (``artifacts.backend``), so
a local folder, ``s3://`` and ``gs://`` roots all work: a file is published whole or not at
all (locally: temporary name, fsync, rename, fsync of the folder; in a bucket: one upload
of the complete file, which S3 and GCS publish only when it completes), so a crash (even
SIGKILL) loses at most the batch not yet written: the last few seconds.

Layout, under the artifact store's root (``<root>/request-logs/...``), one row per
instance, readable with DuckDB
(``read_parquet('<root>/request-logs/predictions/**/*.parquet', hive_partitioning=true)``;
for a bucket, DuckDB's ``httpfs`` with ``s3://bucket/prefix/request-logs/...``)::

    predictions/project=<p>/endpoint=<e>/hour=<YYYY-MM-DDTHH>/<batch id>.parquet
        request_id, instance, time (UTC), deployed_model_id, model_version, protocol,
        latency_ms, features (JSON object keyed by feature), prediction (JSON; null when
        the request failed), shadow (true for a shadow deployment's answer, which no caller
        saw), status (int16: the HTTP status answered, 200 for a prediction), error (the
        failure's kind and message, at most 256 characters; null on success)
    feedback/project=<p>/endpoint=<e>/hour=<YYYY-MM-DDTHH>/<batch id>.parquet
        request_id, instance, time (UTC), ground_truth (JSON)

Files written before ``status`` and ``error`` existed have neither: read them as status
200 and error null (``predictions_sql`` does). A shadow's rows carry the request id of the
caller's request, so the champion's and the shadow's answers pair up on it.

``feedback`` writes its file before it returns (durable when the caller hears back).
Join the two on ``request_id`` and ``instance``. Paths are built from the project and
endpoint names (checked names) and our own ids, and checked to stay inside the root.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from shipyard.artifacts.backend import Backend
from shipyard.errors import InvalidArgument
from shipyard.ids import new_id
from shipyard.serving import logfiles, wire
from shipyard.validation import check_name

log = logging.getLogger(__name__)

FOLDER = logfiles.FOLDER
FLUSH_SECONDS = 5.0
BATCH_ROWS = 1_000
MAX_QUEUED = 100_000  # requests held for the writer; more are dropped (and counted)
POLL_SECONDS = 0.05  # how often the writer takes what was recorded
MAX_FEEDBACK = 10_000
MAX_ERROR = 256  # characters of a failure's kind and message kept in the log


@dataclass
class Logged:
    request_id: str
    time: float
    project: str
    endpoint: str
    deployed_model_id: str
    model_version: int
    protocol: str
    latency_ms: float
    rows: list[Any]
    predictions: list[Any]
    names: Sequence[str] | None
    shadow: bool = False  # a shadow deployment's answer (never returned to the caller)
    status: int = 200  # the HTTP status answered
    error: str | None = None  # what failed (kind: message), None on success

    def __post_init__(self) -> None:
        if self.error is not None and len(self.error) > MAX_ERROR:
            self.error = self.error[:MAX_ERROR]


@dataclass
class RequestLog:
    """Where and how often predictions are logged, and the thread that writes them."""

    root: Path | None = None  # a local root (the backend over it when none is given)
    rate: float = 1.0
    flush_seconds: float = FLUSH_SECONDS
    batch_rows: int = BATCH_ROWS
    draw: Callable[[], float] = random.random
    dropped: int = 0
    written_files: int = 0
    _held: deque[Logged] = field(default_factory=deque)
    _asks: deque[threading.Event] = field(default_factory=deque)  # flushes asked for
    _poke: threading.Event = field(default_factory=threading.Event)
    _closing: bool = False
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    backend: Backend | None = None  # where the files go: the artifact store's backend

    def __post_init__(self) -> None:
        if self.backend is None:
            if self.root is None:
                raise InvalidArgument("a request log needs a root or a backend", field="root")
            from shipyard.artifacts.local import LocalBackend

            self.backend = LocalBackend(self.root)

    @classmethod
    def for_artifacts(cls, artifacts: str, extra: Mapping[str, str]) -> RequestLog | None:
        """The log for an artifact store location: a local folder, ``s3://``, ``gs://``
        (through the store's backend; ``MissingDependency`` naming the extra when its client
        library is absent)."""
        from shipyard.artifacts.locations import open_backend

        rate = float(setting(extra, "serving_log_rate", "1.0"))
        if not 0.0 <= rate <= 1.0:
            raise InvalidArgument("serving_log_rate must be between 0 and 1",
                                  field="serving_log_rate")
        return cls(backend=open_backend(artifacts), rate=rate,
                   flush_seconds=float(setting(extra, "serving_log_flush_seconds",
                                               str(FLUSH_SECONDS))))

    # -- the hot path ----------------------------------------------------------------------

    def sampled(self) -> bool:
        return self.rate > 0 and (self.rate >= 1 or self.draw() < self.rate)

    def record(self, entry: Logged) -> None:
        """Hold ``entry`` for the writer (never blocks: past ``MAX_QUEUED`` it is dropped).
        A deque's append, not a ``queue.Queue``: the queue's lock and the writer woken on
        every put took the GIL back and forth once per request, a tenth of the event
        loop's time under load (py-spy); the writer looks every ``POLL_SECONDS``."""
        if len(self._held) >= MAX_QUEUED:
            self.dropped += 1
        else:
            self._held.append(entry)

    # -- the writer --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shipyard-request-log",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write what is held and stop the writer."""
        if self._thread is None:
            return
        self._closing = True
        self._poke.set()
        self._thread.join(timeout=30)
        self._thread = None

    def _run(self) -> None:
        pending: list[Logged] = []
        rows = 0
        deadline = time.monotonic() + self.flush_seconds
        while True:
            self._poke.wait(POLL_SECONDS)
            self._poke.clear()
            closing = self._closing
            asked: list[threading.Event] = []
            while self._asks:  # the asks first: what was recorded before them is held now
                asked.append(self._asks.popleft())
            while self._held:
                entry = self._held.popleft()
                pending.append(entry)
                rows += len(entry.rows)
            if closing or asked or rows >= self.batch_rows or time.monotonic() >= deadline:
                self._write_safely(pending)
                pending, rows = [], 0
                deadline = time.monotonic() + self.flush_seconds
            for event in asked:
                event.set()
            if closing:
                return

    def flush(self, timeout: float = 30.0) -> None:
        """Write what is held now (for tests and shutdown; the thread does it on its own):
        the writer writes what it holds and returns here once it has."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            written = threading.Event()
            self._asks.append(written)
            self._poke.set()
            written.wait(timeout)
            return
        pending: list[Logged] = []
        while self._held:
            pending.append(self._held.popleft())
        self._write_safely(pending)

    def _write_safely(self, pending: list[Logged]) -> None:
        if not pending:
            return
        try:
            self.write(pending)
        except Exception:  # a full disk must not stop serving: log it, drop the batch
            log.exception("serving: could not write %d logged requests", len(pending))

    def write(self, pending: list[Logged]) -> list[PurePosixPath]:
        """One Parquet file per (project, endpoint, hour) of ``pending``; their keys under
        the artifact store's root."""
        groups: dict[tuple[str, str, str], list[Logged]] = {}
        for entry in pending:
            hour = datetime.fromtimestamp(entry.time, UTC).strftime("%Y-%m-%dT%H")
            groups.setdefault((entry.project, entry.endpoint, hour), []).append(entry)
        written = []
        with self._lock:
            for (project, endpoint, hour), entries in groups.items():
                written.append(self._write_group("predictions", project, endpoint, hour,
                                                 _prediction_table(entries)))
            self.written_files += len(written)
        return written

    def feedback(self, project: str, endpoint: str, items: Sequence[tuple[str, int, Any]]
                 ) -> PurePosixPath:
        """Record ground truth (request id, instance, value); durable when it returns."""
        if not items:
            raise InvalidArgument("feedback must hold at least one item", field="feedback")
        if len(items) > MAX_FEEDBACK:
            raise InvalidArgument(f"{len(items)} feedback items; the limit is {MAX_FEEDBACK}",
                                  field="feedback")
        import pyarrow as pa

        now = datetime.now(UTC)
        table = pa.table({
            "request_id": pa.array([i[0] for i in items], pa.string()),
            "instance": pa.array([i[1] for i in items], pa.int32()),
            "time": pa.array([now] * len(items), pa.timestamp("us", tz="UTC")),
            # The standard library: it writes any JSON the caller sent (orjson refuses
            # lone surrogates in strings).
            "ground_truth": pa.array([json.dumps(i[2]) for i in items], pa.string()),
        })
        with self._lock:
            return self._write_group("feedback", project, endpoint, now.strftime("%Y-%m-%dT%H"),
                                     table)

    def _write_group(self, kind: str, project: str, endpoint: str, hour: str, table: Any
                     ) -> PurePosixPath:
        import pyarrow as pa
        import pyarrow.parquet as pq

        check_name(project, "project")
        check_name(endpoint, "endpoint")
        # Checked names and our own id; the backend checks the key stays inside its root.
        key = (f"{FOLDER}/{kind}/project={project}/endpoint={endpoint}/hour={hour}/"
               f"{new_id()}.parquet")
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue().to_pybytes()
        assert self.backend is not None  # set in __post_init__
        staged = self.backend.stage()
        try:
            staged.write(data)
            staged.commit(key, len(data))  # published whole or not at all
        except BaseException:
            staged.discard()
            raise
        return PurePosixPath(key)


def setting(extra: Mapping[str, str], key: str, default: str) -> str:
    """A serving setting: ``settings.extra[key]``, else ``SHIPYARD_<KEY>``, else the
    default."""
    return extra.get(key) or os.environ.get(f"SHIPYARD_{key.upper()}") or default


def sql_string(text: str) -> str:
    """``text`` as a DuckDB string literal (for what its parameters cannot carry: file
    lists and timestamps inside a query over the log)."""
    return "'" + text.replace("'", "''") + "'"


def predictions_sql(files: Sequence[str], *, hive: bool = False) -> str:
    """A DuckDB subquery over prediction log ``files`` with every column of today's layout:
    files written before ``status`` and ``error`` existed read as status 200, error null
    (``hive``: with the project, endpoint and hour partition columns)."""
    listed = "[" + ", ".join(sql_string(f) for f in files) + "]"
    options = ", hive_partitioning=true" if hive else ""
    return (f"(SELECT * REPLACE (CAST(coalesce(status, 200) AS SMALLINT) AS status) FROM ("
            f"SELECT * FROM read_parquet({listed}, union_by_name=true{options}) "
            "UNION ALL BY NAME SELECT CAST(NULL AS SMALLINT) AS status, "
            "CAST(NULL AS VARCHAR) AS error WHERE false))")


def _prediction_table(entries: list[Logged]) -> Any:
    import pyarrow as pa

    request_ids: list[str] = []
    instances: list[int] = []
    times: list[datetime] = []
    deployed: list[str] = []
    versions: list[int] = []
    protocols: list[str] = []
    latencies: list[float] = []
    features: list[str] = []
    predictions: list[str | None] = []
    shadows: list[bool] = []
    statuses: list[int] = []
    errors: list[str | None] = []
    for entry in entries:
        count = len(entry.rows)
        request_ids += [entry.request_id] * count
        instances += range(count)
        times += [datetime.fromtimestamp(entry.time, UTC)] * count
        deployed += [entry.deployed_model_id] * count
        versions += [entry.model_version] * count
        protocols += [entry.protocol] * count
        latencies += [entry.latency_ms] * count
        shadows += [entry.shadow] * count
        statuses += [entry.status] * count
        errors += [entry.error] * count
        names = entry.names
        for row in entry.rows:
            keyed = dict(zip(names, row, strict=False)) if names is not None and \
                isinstance(row, list) else row
            features.append(wire.dumps(keyed).decode())
        if entry.status == 200:
            predictions += [wire.dumps(p).decode() for p in entry.predictions]
        else:
            predictions += [None] * count
    return pa.table({
        "request_id": pa.array(request_ids, pa.string()),
        "instance": pa.array(instances, pa.int32()),
        "time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "deployed_model_id": pa.array(deployed, pa.string()),
        "model_version": pa.array(versions, pa.int64()),
        "protocol": pa.array(protocols, pa.string()),
        "latency_ms": pa.array(latencies, pa.float64()),
        "features": pa.array(features, pa.string()),
        "prediction": pa.array(predictions, pa.string()),
        "shadow": pa.array(shadows, pa.bool_()),
        "status": pa.array(statuses, pa.int16()),
        "error": pa.array(errors, pa.string()),
    })
