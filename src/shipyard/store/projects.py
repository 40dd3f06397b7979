"""Projects: the namespace every resource lives in; created on first use."""

from __future__ import annotations

from sqlalchemy import Connection, select

from shipyard.store.dialect import insert_ignore
from shipyard.store.schema import projects
from shipyard.store.types import utcnow


def ensure_project(conn: Connection, name: str) -> None:
    if conn.execute(select(projects.c.name).where(projects.c.name == name)).first():
        return
    insert_ignore(conn, projects, {"name": name, "created_at": utcnow()}, keys=["name"])


def list_projects(conn: Connection) -> list[str]:
    return list(conn.execute(select(projects.c.name).order_by(projects.c.name)).scalars())
