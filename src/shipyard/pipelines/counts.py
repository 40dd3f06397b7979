"""How many pipeline runs a project holds, by state: one grouped COUNT, for summaries
(the console's overview) that must not load the runs themselves."""

from __future__ import annotations

from sqlalchemy import func, select

from shipyard.store import Store
from shipyard.store.schema import pipeline_runs

__all__ = ["count_pipeline_runs"]


def count_pipeline_runs(store: Store, project: str) -> dict[str, int]:
    """The number of pipeline runs of ``project`` per state (states without runs absent)."""
    stmt = (select(pipeline_runs.c.state, func.count())
            .where(pipeline_runs.c.project == project).group_by(pipeline_runs.c.state))
    with store.read() as conn:
        return {str(state): int(n) for state, n in conn.execute(stmt)}
