"""Worker processes the events crash tests start (``python -m tests.crash.event_workers``)
and SIGKILL themselves at a chosen point, so the point is exact and the death is real.

``tick URI NOW POINT``: fire the schedules due at NOW (ISO time) as worker ``victim`` and
die with SIGKILL at POINT: ``claimed`` (the claim committed, the action not started) or
``acting`` (the tick moved to acting, inside the action before it does anything).

``loop HOME POINT OFFSET STOP``: a worker for the closed loop (pipelines, triggers,
canaries) on the store in HOME whose clock runs OFFSET seconds ahead (so the leases a
killed predecessor held have run out: each restart is a later instant); it dies with
SIGKILL at POINT (``module:function:before`` or ``:after``, the first call) or, with
POINT ``none``, runs until the file STOP exists.
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


def arm(point: str) -> None:
    """Replace ``module.function`` by one that dies before or after its first call."""
    import importlib

    module_name, name, when = point.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if when == "before":
            die()
        result = original(*args, **kwargs)
        die()
        return result

    setattr(module, name, wrapped)


def loop(home: str, point: str, offset: str, stop_file: str) -> None:
    import threading
    import time
    from datetime import timedelta
    from pathlib import Path

    from shipyard.config import Settings
    from shipyard.pipelines.queue import Lease
    from shipyard.runtime import open_runtime
    from shipyard.serving.rollouts import CanaryRollouts
    from shipyard.store.types import utcnow
    from shipyard.worker import run_worker
    from shipyard.worker.events import Triggers
    from shipyard.worker.sources import PipelineQueue

    ahead = timedelta(seconds=float(offset))

    def clock() -> datetime:
        return utcnow() + ahead

    if point != "none":
        arm(point)
    stop = threading.Event()

    def watch() -> None:
        while not Path(stop_file).exists():
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    sources = [PipelineQueue(lease=Lease(heartbeat=0.2, timeout=1.0, max_recoveries=10)),
               Triggers(clock=clock), CanaryRollouts(clock=clock, check_every=0.2)]
    with open_runtime(Settings.resolve(home=home)) as runtime:
        run_worker(runtime, sources, stop, poll_seconds=0.05, name=f"loop-{os.getpid()}")


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "tick":
        tick(args[0], args[1], args[2])
    elif mode == "loop":
        loop(args[0], args[1], args[2], args[3])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
