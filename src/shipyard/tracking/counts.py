"""How many runs a project holds, by status: one grouped COUNT, for summaries (the
console's overview) that must not load the runs themselves."""

from __future__ import annotations

from sqlalchemy import func, select

from shipyard.store import Store
from shipyard.store.schema import runs

__all__ = ["count_runs"]


def count_runs(store: Store, project: str) -> dict[str, int]:
    """The number of runs of ``project`` per status (statuses without runs are absent)."""
    stmt = (select(runs.c.status, func.count()).where(runs.c.project == project)
            .group_by(runs.c.status))
    with store.read() as conn:
        return {str(status): int(n) for status, n in conn.execute(stmt)}
