"""Data watches: a directory or bucket prefix whose new files are announced on the bus as
``data-arrived`` (``builtin.DATA_ARRIVED``: watch, uri, files), each file once.

A watch is scanned every ``interval_seconds`` by a worker (``scan_due``; several workers
share the watches: a due watch is claimed by one). A scan lists the files (outside any
transaction, however long the listing takes), then in one transaction takes the watch's
row, compares the listing with the files it has seen (``event_watch_files``), records the
new ones and announces them: the files and their event commit together, so a file is
announced exactly once, even when two workers scan at once or one dies halfway.

``files`` are paths relative to the watch's ``uri`` (``part-0001.parquet``,
``2026/12/03/leads.csv``), sorted, at most ``MAX_FILES_PER_EVENT`` per event (a scan that
finds more announces several events). Hidden files and folders (a name starting with
``.``) are skipped, so a writer that writes ``.name.tmp`` and renames it when complete is
announced once, complete. A watch created with ``announce_existing=False`` (the default)
records what is there already without announcing it.

Locations: a local directory (``/data/leads``, ``file:///data/leads``), or an object store
prefix the artifact store can use (``s3://bucket/prefix``, ``gs://bucket/prefix``,
``memory://name``), listed through fsspec as the artifact store lists its own keys.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MissingDependency,
    NotFound,
)
from shipyard.events import builtin
from shipyard.events.models import Watch
from shipyard.ids import new_id
from shipyard.store import Store
from shipyard.store.dialect import claim_next
from shipyard.store.projects import ensure_project
from shipyard.store.schema import event_watch_files, event_watches
from shipyard.store.types import utcnow
from shipyard.validation import check_name

__all__ = ["Watch", "create_watch", "delete_watch", "list_watches", "scan", "scan_due"]

MAX_FILES_PER_EVENT = 100
MAX_URI = 1024
_OBJECT_STORES = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}


def check_uri(uri: Any) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI or "\x00" in uri:
        raise InvalidArgument(f"uri must be a directory or bucket prefix of at most {MAX_URI} "
                              "characters", field="uri")
    if "://" in uri and not uri.startswith("file://"):
        protocol = uri.split("://", 1)[0]
        if protocol != "memory" and protocol not in _OBJECT_STORES:
            raise InvalidArgument(f"uri {uri[:100]!r}: use a local directory, file://, s3://, "
                                  "gs:// or memory://", field="uri")
        if not uri.split("://", 1)[1].strip("/"):
            raise InvalidArgument("uri names no bucket", field="uri")
    return uri


WATCH_ROOTS = "SHIPYARD_WATCH_ROOTS"  # local directories watches made over HTTP may name


def check_reachable(ctx: RequestContext, uri: str) -> None:
    """Refuse, for a watch created through the server (a token), a local directory outside
    the ones the operator lists in ``SHIPYARD_WATCH_ROOTS`` (comma-separated; none by
    default): the server's workers would list that directory's files for the caller. In
    local mode the caller owns the machine and may watch what it likes; bucket prefixes are
    listed with the artifact store's credentials either way."""
    if ctx.token_id is None or ("://" in uri and not uri.startswith("file://")):
        return
    path = Path(uri.removeprefix("file://")).expanduser()
    roots = [Path(r.strip()) for r in os.environ.get(WATCH_ROOTS, "").split(",") if r.strip()]
    real = os.path.realpath(path)
    if not path.is_absolute() or not any(
            real == os.path.realpath(r) or real.startswith(os.path.realpath(r) + os.sep)
            for r in roots):
        raise FailedPrecondition(
            f"the server does not watch {uri[:100]!r}: local directories must be inside one "
            f"the operator lists in {WATCH_ROOTS} (or watch a bucket prefix)", field="uri")


def create_watch(store: Store, ctx: RequestContext, name: str, uri: str, *,
                 interval_seconds: int = 60, announce_existing: bool = False) -> Watch:
    """Watch ``uri`` for new files (scanned every ``interval_seconds`` by a worker). Files
    already there are announced on the first scan only with ``announce_existing``."""
    check_name(name, "name")
    check_uri(uri)
    check_reachable(ctx, uri)
    if isinstance(interval_seconds, bool) or not isinstance(interval_seconds, int) or not (
            1 <= interval_seconds <= 86400):
        raise InvalidArgument("interval_seconds must be from 1 to 86400",
                              field="interval_seconds")
    existing = {} if announce_existing else list_files(uri)

    def work(conn: Connection) -> Watch:
        ensure_project(conn, ctx.project)
        taken = conn.execute(select(event_watches.c.id).where(
            event_watches.c.project == ctx.project, event_watches.c.name == name)).first()
        if taken is not None:
            raise AlreadyExists(f"watch {name!r} already exists", field="name")
        now = utcnow()
        row = conn.execute(insert(event_watches).values(
            id=new_id(), project=ctx.project, name=name, uri=uri,
            interval_seconds=interval_seconds, next_scan_at=now, last_scan_at=None,
            created_at=now, created_by=ctx.actor).returning(*event_watches.c)).one()
        _remember(conn, row.id, existing, now)
        audit.record(conn, ctx, "events.watch.create", f"watches/{name}",
                     detail={"uri": uri, "interval_seconds": interval_seconds,
                             "existing_files": len(existing)})
        return _watch(row)

    return store.retry_write(work)


def list_watches(store: Store, project: str) -> list[Watch]:
    with store.read() as conn:
        rows = conn.execute(select(event_watches).where(event_watches.c.project == project)
                            .order_by(event_watches.c.name)).all()
    return [_watch(r) for r in rows]


def delete_watch(store: Store, ctx: RequestContext, name: str) -> None:
    check_name(name, "name")

    def work(conn: Connection) -> None:
        row = _watch_row(conn, ctx.project, name)
        conn.execute(delete(event_watch_files).where(event_watch_files.c.watch_id == row.id))
        conn.execute(delete(event_watches).where(event_watches.c.id == row.id))
        audit.record(conn, ctx, "events.watch.delete", f"watches/{name}")

    store.retry_write(work)


def scan(store: Store, project: str, name: str, *, actor: str = "shipyard") -> list[str]:
    """Scan one watch now; the files it announced (new since the last scan)."""
    check_name(name, "name")
    with store.read() as conn:
        row = _watch_row(conn, project, name)
    return _scan(store, row, actor)


def scan_due(store: Store, worker_name: str, *, now: datetime | None = None,
             limit: int = 10) -> int:
    """Scan up to ``limit`` watches whose time has come (a worker's job); how many."""
    scanned = 0
    for _ in range(limit):
        at = now or utcnow()

        def claim(conn: Connection, at: datetime = at) -> Any:
            # Moving next_scan_at on claims it: no other worker takes it this interval.
            found = claim_next(conn, event_watches, event_watches.c.next_scan_at <= at,
                               order_by=[event_watches.c.next_scan_at, event_watches.c.id],
                               set_values={"next_scan_at": at + timedelta(days=3650)})
            if found is not None:
                conn.execute(update(event_watches).where(event_watches.c.id == found.id)
                             .values(next_scan_at=at + timedelta(
                                 seconds=found.interval_seconds)))
            return found

        row = store.retry_write(claim)
        if row is None:
            break
        _scan(store, row, worker_name)
        scanned += 1
    return scanned


def list_files(uri: str) -> dict[str, int]:
    """Every file under ``uri`` (hidden ones skipped): relative path -> size. A location
    that does not exist (yet) has no files."""
    if "://" in uri and not uri.startswith("file://"):
        return _list_object_store(uri)
    root = Path(uri.removeprefix("file://")).expanduser()
    found: dict[str, int] = {}
    if not root.is_dir():
        return found
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(dirpath)
        for name in files:
            if name.startswith("."):
                continue
            path = base / name
            try:
                size = path.lstat().st_size
            except OSError:  # gone between the listing and the look
                continue
            key = path.relative_to(root).as_posix()
            if len(key) <= MAX_URI:
                found[key] = size
    return found


def _list_object_store(uri: str) -> dict[str, int]:
    protocol, _, rest = uri.partition("://")
    import fsspec

    if protocol != "memory":
        module, extra = _OBJECT_STORES[protocol]
        try:
            __import__(module)
        except ImportError:
            raise MissingDependency(module, extra) from None
    fs = fsspec.filesystem(protocol, use_listings_cache=False) if protocol != "memory" else (
        fsspec.filesystem("memory"))
    root = rest.strip("/")
    if protocol == "memory":
        root = f"/{root}"
    if not fs.exists(root):
        return {}
    found: dict[str, int] = {}
    prefix = root.rstrip("/") + "/"
    for path, info in fs.find(root, detail=True).items():
        key = str(path)
        if key.startswith(prefix):
            key = key[len(prefix):]
        if len(key) > MAX_URI or any(part.startswith(".") for part in key.split("/")):
            continue
        found[key] = int(info.get("size") or 0)
    return found


def _scan(store: Store, row: Any, actor: str) -> list[str]:
    listed = list_files(row.uri)

    def work(conn: Connection) -> list[str]:
        # Hold the watch while comparing: a second scanner waits, then sees these files.
        locked = select(event_watches.c.id).where(event_watches.c.id == row.id)
        if conn.dialect.name != "sqlite":
            locked = locked.with_for_update()
        if conn.execute(locked).first() is None:
            return []  # deleted meanwhile
        seen = set(conn.execute(select(event_watch_files.c.path).where(
            event_watch_files.c.watch_id == row.id)).scalars())
        new = sorted(path for path in listed if path not in seen)
        now = utcnow()
        _remember(conn, row.id, {path: listed[path] for path in new}, now)
        conn.execute(update(event_watches).where(event_watches.c.id == row.id)
                     .values(last_scan_at=now))
        ctx = RequestContext(project=row.project, actor=actor)
        for start in range(0, len(new), MAX_FILES_PER_EVENT):
            builtin.announce(conn, ctx, builtin.DATA_ARRIVED, watch=row.name, uri=row.uri,
                             files=new[start:start + MAX_FILES_PER_EVENT])
        return new

    return store.retry_write(work)


def _remember(conn: Connection, watch_id: str, files: dict[str, int], now: datetime) -> None:
    if files:
        conn.execute(insert(event_watch_files), [
            {"watch_id": watch_id, "path": path, "size": size, "seen_at": now}
            for path, size in files.items()])


def _watch_row(conn: Connection, project: str, name: str) -> Any:
    row = conn.execute(select(event_watches).where(event_watches.c.project == project,
                                                   event_watches.c.name == name)).first()
    if row is None:
        raise NotFound(f"no watch {name!r} in project {project!r}", field="name")
    return row


def _watch(row: Any) -> Watch:
    return Watch(id=row.id, project=row.project, name=row.name, uri=row.uri,
                 interval_seconds=row.interval_seconds, next_scan_at=row.next_scan_at,
                 last_scan_at=row.last_scan_at, created_at=row.created_at)
