"""Processes the crash tests start (``python -m tests.crash.workers ...``).

``log``: log metric batches to one run until a stop file appears. After each call returns,
the batch's step is appended to the worker's journal and fsynced, so the journal lists
(a subset of) the batches the store acknowledged, whatever instant the process dies at.

``migrate``: wait until every migrating process is ready, then open (and so migrate) the
store, so the migrations really start together.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def batch_size(step: int) -> int:
    """How many points the batch at ``step`` holds: varied, and known to the checker."""
    return 1 + (step * 7919) % 40


def batch(step: int) -> list[tuple[str, float, int]]:
    return [(f"k{j}", step * 1000.0 + j, step) for j in range(batch_size(step))]


def log(uri: str, run_id: str, journal: Path, stop: Path) -> None:
    from shipyard.context import RequestContext
    from shipyard.errors import Unavailable
    from shipyard.store import open_store
    from shipyard.tracking import service

    store = open_store(uri, migrate=False, cached=False)
    ctx = RequestContext(project="crash", actor="worker")
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    step = 0
    while not stop.exists():
        try:
            service.log_batch(store, ctx, run_id, metrics=batch(step))
        except Unavailable:
            continue  # busy past the timeout: not acknowledged, so simply try again
        os.write(fd, f"{step}\n".encode())
        os.fsync(fd)
        step += 1


def migrate(uri: str, barrier: Path, parties: int) -> None:
    from shipyard.store import open_store
    from shipyard.store.migrate import current_revision, head_revision

    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.iterdir())) < parties and time.monotonic() < deadline:
        time.sleep(0.005)
    store = open_store(uri, cached=False)
    if current_revision(store) != head_revision():
        raise SystemExit("the store is not at the head revision")
    store.dispose()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "log":
        log(args[0], args[1], Path(args[2]), Path(args[3]))
    elif mode == "migrate":
        migrate(args[0], Path(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
