"""The one ``MetaData`` every table is defined on, its naming convention, the id and name
lengths, and the projects table every resource belongs to."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table

from shipyard.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ID = 32  # length of a server-made id
NAME = 128

projects = Table(
    "projects",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
)
