"""Identity's tables: principals, their API tokens and their roles per project (grants)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    String,
    Table,
)

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

principals = Table(
    "principals",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "user" | "service"
    Column("password_hash", String(256), nullable=True),
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),  # the public lookup part of the token
    Column("principal_id", String(ID), ForeignKey("principals.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    # A token bound to one project (a pipeline step's): no role anywhere else, never admin.
    Column("project", String(NAME), nullable=True),
)

grants = Table(
    "grants",
    metadata,
    Column("principal_id", String(ID), ForeignKey("principals.id"), primary_key=True),
    Column("project", String(NAME), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
