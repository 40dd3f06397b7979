"""The events capability's job sources: ``Schedules`` (fires due schedule ticks) and
``Triggers`` (reads the triggers' subscriptions and runs their actions).

Both take a ``clock`` (a function returning the time, aware, UTC) so tests can run many
workers over many ticks on a virtual clock; by default it is the real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from shipyard.context import RequestContext
from shipyard.runtime import Runtime
from shipyard.store.types import utcnow

__all__ = ["Clock", "Schedules", "Triggers"]

Clock = Callable[[], datetime]


def _performer(runtime: Runtime) -> Callable[[RequestContext, Any, dict[str, Any]],
                                             dict[str, Any]]:
    from shipyard.events.acting import perform

    def run(ctx: RequestContext, action: Any, context: dict[str, Any]) -> dict[str, Any]:
        return perform(runtime.store, runtime.artifacts, runtime.settings, ctx, action,
                       context)

    return run


@dataclass
class Schedules:
    """Due schedule ticks. When the next tick of any schedule is less than ``lookahead``
    seconds away the source waits for it (``sleep``), so a tick fires within milliseconds
    rather than a poll interval late; ``lookahead=0`` never waits."""

    clock: Clock = utcnow
    lookahead: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    _perform: Any = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return "schedules"

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        from shipyard.events.scheduler import fire_due
        from shipyard.store.schema.events import event_schedules

        if self._perform is None:
            self._perform = _performer(runtime)
        now = self.clock()
        if self.lookahead > 0:
            with runtime.store.read() as conn:
                soonest = conn.execute(select(func.min(event_schedules.c.next_tick_at)).where(
                    event_schedules.c.paused.is_(False))).scalar()
            if soonest is not None and now < soonest:
                wait = (soonest - now).total_seconds()
                if wait > self.lookahead:
                    return False
                self.sleep(wait)
                now = self.clock()
        return fire_due(runtime.store, worker_name, self._perform, now=now) > 0


@dataclass
class Triggers:
    """Messages waiting in the triggers' subscriptions, up to ``batch`` per trigger per
    pass."""

    clock: Clock | None = None
    batch: int = 10
    _perform: Any = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return "triggers"

    def claim_and_run(self, runtime: Runtime, worker_name: str) -> bool:
        from shipyard.events.triggers import process_triggers

        if self._perform is None:
            self._perform = _performer(runtime)
        now = self.clock() if self.clock is not None else None
        return process_triggers(runtime.store, self._perform, max_messages=self.batch,
                                now=now) > 0
