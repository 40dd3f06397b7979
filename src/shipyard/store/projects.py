"""Projects: the namespace every resource lives in; created on first use."""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shipyard.store.schema import projects
from shipyard.store.types import utcnow


def ensure_project(conn: Connection, name: str) -> None:
    if conn.execute(select(projects.c.name).where(projects.c.name == name)).first():
        return
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(
        dialect_insert(projects)
        .values(name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )


def list_projects(conn: Connection) -> list[str]:
    return list(conn.execute(select(projects.c.name).order_by(projects.c.name)).scalars())
