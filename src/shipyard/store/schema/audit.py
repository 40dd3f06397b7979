"""The audit log's table (append-only, hash-chained: ``shipyard.audit``)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    String,
    Table,
)

from shipyard.store.schema.base import NAME, metadata
from shipyard.store.types import UTCDateTime

# Append-only: no code path updates or deletes rows here.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", UTCDateTime(), nullable=False),
    Column("actor", String(NAME), nullable=True),
    Column("token_id", String(32), nullable=True),
    Column("action", String(128), nullable=False),
    Column("resource", String(512), nullable=False),
    Column("project", String(NAME), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("client", String(64), nullable=True),
    Column("detail", JSON, nullable=True),
    # sha256 over the previous row's hash and this row's fields: a deleted or edited row
    # breaks the chain (``shipyard audit verify``). None for rows written before 0002.
    Column("hash", String(64), nullable=True),
    Index("ix_audit_log_time", "time"),
    Index("ix_audit_log_project", "project"),
)
