"""Worker processes the events crash tests start (``python -m tests.crash.event_workers``)
and SIGKILL themselves at a chosen point, so the point is exact and the death is real.

``tick URI NOW POINT``: fire the schedules due at NOW (ISO time) as worker ``victim`` and
die with SIGKILL at POINT: ``claimed`` (the claim committed, the action not started) or
``acting`` (the tick moved to acting, inside the action before it does anything).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from typing import Any


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def tick(uri: str, now: str, point: str) -> None:
    from shipyard.context import RequestContext
    from shipyard.events import scheduler
    from shipyard.store import open_store

    store = open_store(uri, migrate=False, cached=False)
    if point == "claimed":
        def start(*args: Any, **kwargs: Any) -> bool:
            die()
            raise AssertionError("still alive after SIGKILL")

        scheduler._start = start  # type: ignore[assignment]

    def perform(ctx: RequestContext, action: Any, context: dict[str, Any]) -> dict[str, Any]:
        if point == "acting":
            die()
        raise AssertionError(f"the action ran although the worker was to die at {point}")

    scheduler.fire_due(store, "victim", perform, now=datetime.fromisoformat(now))
    raise SystemExit("the worker did not reach its kill point")


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "tick":
        tick(args[0], args[1], args[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
