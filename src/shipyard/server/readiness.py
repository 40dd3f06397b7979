"""Readiness: whether this server can do its work now (the database and the artifact store
answer), as Kubernetes' readiness probe asks. Liveness (the process answers at all) is a
separate route that touches neither.

Each check runs in a thread of its own and is given ``timeout`` seconds: an object store
that does not answer (a wrong endpoint, a black-holed network) makes the server unready in
that time instead of hanging the probe. A check still hanging from an earlier probe is
not started again; it reports how long it has been hanging.

What a check found is logged in full; the answer (public, like any probe route) names the
component and the kind of fault, not the server's paths, buckets or credentials.

Every server of one database must use one artifact store: a server started without
``SHIPYARD_ARTIFACTS`` would write blobs to a local folder while the others read S3, and
what it stored would be missing for everybody else. So the first server to start records
its store in the database (an audit event, ``artifacts.store.identify``: the store's
location and the digest of a marker blob it stored there, unique to this deployment), and
every server checks at start that its store holds that marker: one that does not refuses
to start, naming both stores. The marker, not
the location, decides: two hosts' ``/srv/blobs`` folders are different stores, and one
bucket reached through two endpoints is the same. To move to another store on purpose,
copy the blobs (the marker among them) or start one server with
``SHIPYARD_ARTIFACT_STORE_MOVED=1``, which records its store as the store.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import FailedPrecondition
from shipyard.runtime import Runtime
from shipyard.store.dialect import advisory_lock
from shipyard.store.schema import audit_log

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 5.0
# A tiny blob the artifact check stores (once: content addressing makes later stores a
# lookup) and finds again: it proves the store is reachable, the bucket or folder exists
# and the credentials can write and read.
PROBE = b"shipyard readiness probe\n"
IDENTIFY = "artifacts.store.identify"  # the audit action recording the deployment's store
MOVED_ENV = "SHIPYARD_ARTIFACT_STORE_MOVED"
_IDENTITY_LOCK = 0x5A1B7A2F  # serialises servers recording the store at their first start


@dataclass(frozen=True)
class StoreIdentity:
    """The artifact store the database records: where it was and its marker blob."""

    location: str
    marker: str  # the digest of a blob only that store holds


class WrongArtifactStore(Exception):
    """This server's artifact store is not the one the database records."""

    def __init__(self, mine: str, recorded: StoreIdentity) -> None:
        super().__init__(
            f"this server's artifact store {mine} is not the one the shared database "
            f"records ({recorded.location}): it does not hold that store's marker blob "
            f"{recorded.marker[:12]}. Every server and worker of one database must use one "
            f"artifact store: set SHIPYARD_ARTIFACTS={recorded.location} (and its "
            f"credentials), or, if the store moved on purpose, copy the blobs or start "
            f"one server with {MOVED_ENV}=1")
        self.mine = mine
        self.recorded = recorded


def recorded_identity(conn: Connection) -> StoreIdentity | None:
    """The artifact store the database records (the latest ``IDENTIFY`` event), if any."""
    detail = conn.execute(
        select(audit_log.c.detail).where(audit_log.c.action == IDENTIFY)
        .order_by(audit_log.c.id.desc()).limit(1)
    ).scalar()
    if not isinstance(detail, dict) or not detail.get("marker"):
        return None
    return StoreIdentity(str(detail.get("location", "?")), str(detail["marker"]))


def identify_store(runtime: Runtime, *, moved: bool = False) -> StoreIdentity:
    """The store the database records, recording this server's store first when none is
    (or ``moved``); raises ``WrongArtifactStore`` when this server's store is another."""
    artifacts = runtime.artifacts
    with runtime.store.read() as conn:
        known = recorded_identity(conn)
    if known is None or moved:
        marker = artifacts.put_bytes(
            f"shipyard artifact store {secrets.token_hex(16)}\n".encode()).digest
        mine = StoreIdentity(artifacts.location, marker)

        def work(conn: Connection) -> StoreIdentity:
            advisory_lock(conn, _IDENTITY_LOCK)
            first = recorded_identity(conn)
            if first is not None and not moved:  # another server recorded its store first
                return first
            ctx = RequestContext(project="", actor="shipyard-server")
            audit.record(conn, ctx, IDENTIFY, "artifacts",
                         detail={"location": mine.location, "marker": mine.marker})
            return mine

        known = runtime.store.retry_write(work)
        if known == mine:
            log.info("recorded the artifact store %s as this database's store", mine.location)
    if not artifacts.exists(known.marker):
        raise WrongArtifactStore(artifacts.location, known)
    return known


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str  # "ok", or a short public reason
    error: str = ""  # the full error, for the server log and the start-up check


class Readiness:
    """The readiness checks of one runtime; ``check()`` runs them all concurrently."""

    def __init__(self, runtime: Runtime, timeout: float = CHECK_TIMEOUT) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self._lock = threading.Lock()
        self._hanging: dict[str, float] = {}  # check name -> when it started

    def checks(self) -> dict[str, Callable[[], None]]:
        return {"database": self._database, "artifacts": self._artifacts}

    def check(self) -> dict[str, Outcome]:
        started = {name: self._start(name, fn) for name, fn in self.checks().items()}
        deadline = time.monotonic() + self.timeout
        out: dict[str, Outcome] = {}
        for name, pending in started.items():
            if isinstance(pending, Outcome):
                out[name] = pending
                continue
            thread, result = pending
            thread.join(max(0.0, deadline - time.monotonic()))
            out[name] = result[0] if result else Outcome(
                False, f"did not answer within {self.timeout:g}s")
        for name, outcome in out.items():
            if not outcome.ok:
                log.warning("not ready: the %s check failed: %s", name,
                            outcome.error or outcome.detail, extra={"check": name})
        return out

    def _start(self, name: str, fn: Callable[[], None]
               ) -> Outcome | tuple[threading.Thread, list[Outcome]]:
        with self._lock:
            since = self._hanging.get(name)
            if since is not None:
                return Outcome(False, f"has not answered for {time.monotonic() - since:.0f}s")
            self._hanging[name] = time.monotonic()
        result: list[Outcome] = []

        def run() -> None:
            try:
                fn()
                result.append(Outcome(True, "ok"))
            except Exception as exc:  # any fault of the component: reported, never raised
                result.append(Outcome(False, _public_reason(exc), f"{exc!r}"))
            finally:
                with self._lock:
                    self._hanging.pop(name, None)

        thread = threading.Thread(target=run, name=f"shipyard-ready-{name}", daemon=True)
        thread.start()
        return thread, result

    def _database(self) -> None:
        with self.runtime.store.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    def _artifacts(self) -> None:
        artifacts = self.runtime.artifacts
        info = artifacts.put_bytes(PROBE)
        if not artifacts.exists(info.digest):
            raise FileNotFoundError("the probe blob was stored but is not found")


def _public_reason(exc: Exception) -> str:
    """What kind of fault, without the server's own names (paths, buckets, hosts)."""
    if isinstance(exc, PermissionError):
        return "refused access (check its credentials or permissions)"
    if isinstance(exc, FileNotFoundError):
        return "was not found (check that the bucket or folder exists)"
    if isinstance(exc, TimeoutError | ConnectionError):
        return "is unreachable"
    from shipyard.errors import ShipyardError

    if isinstance(exc, ShipyardError) and exc.kind == "unavailable":
        return "is unavailable"
    return f"failed ({type(exc).__name__})"


def check_at_start(runtime: Runtime, timeout: float = CHECK_TIMEOUT) -> None:
    """Refuse to start when the artifact store cannot be used, with the full reason and
    what to check (the database was opened and migrated already). Warn when a shared
    database is paired with a local artifact folder: blobs written here are then
    invisible to the other servers and workers unless that folder is shared too."""
    location = runtime.artifacts.location
    if not runtime.store.is_sqlite and "://" not in location:
        log.warning(
            "the database is shared (PostgreSQL) but the artifact store is the local folder "
            "%s: other servers and workers cannot read what is stored here unless they "
            "mount it too; set SHIPYARD_ARTIFACTS to s3://... or gs://... for a team", location)
    outcome = Readiness(runtime, timeout).check()["artifacts"]
    if not outcome.ok:
        raise FailedPrecondition(
            f"the artifact store {runtime.artifacts.location} {outcome.detail}: "
            f"{outcome.error or 'no answer'}. Check SHIPYARD_ARTIFACTS and, for s3:// or "
            "gs://, the credentials and endpoint (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_ENDPOINT_URL, GOOGLE_APPLICATION_CREDENTIALS)",
            field="artifacts")
    try:
        identify_store(runtime, moved=os.environ.get(MOVED_ENV, "") == "1")
    except WrongArtifactStore as exc:
        raise FailedPrecondition(str(exc), field="artifacts") from None
