"""Where events come from besides a publish: push endpoints (a subscription delivered by
POSTing each message to a URL) and data watches (a directory or bucket prefix whose new
files are announced as ``data-arrived``), with the files each watch has seen.

A push endpoint is a row beside its subscription, not a column of it: a subscription is
pulled or pushed, and the push row says where. ``event_watch_files`` remembers every file a
watch announced (its primary key makes announcing one file twice impossible, whatever the
workers do).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, UniqueConstraint

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

URL = 2048
PATH = 1024

event_push_endpoints = Table(
    "event_push_endpoints",
    metadata,
    # Deleting the subscription deletes its push endpoint.
    Column("subscription_id", String(ID),
           ForeignKey("event_subscriptions.id", ondelete="CASCADE"), primary_key=True),
    Column("endpoint", String(URL), nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
)

event_watches = Table(
    "event_watches",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("uri", String(PATH), nullable=False),
    Column("interval_seconds", Integer, nullable=False),
    Column("next_scan_at", UTCDateTime(), nullable=False),
    Column("last_scan_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    UniqueConstraint("project", "name"),
)

event_watch_files = Table(
    "event_watch_files",
    metadata,
    Column("watch_id", String(ID), ForeignKey("event_watches.id", ondelete="CASCADE"),
           primary_key=True),
    Column("path", String(PATH), primary_key=True),
    Column("size", BigInteger, nullable=True),
    Column("seen_at", UTCDateTime(), nullable=False),
)
