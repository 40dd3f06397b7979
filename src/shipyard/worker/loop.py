"""The worker loop: poll a list of job sources in turn until told to stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence

from shipyard.errors import ShipyardError
from shipyard.runtime import Runtime
from shipyard.worker.sources import JobSource

__all__ = ["run_worker", "start_worker", "worker_name"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def worker_name() -> str:
    """This process's name in ``claimed_by`` columns: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"[:128]


def run_worker(
    runtime: Runtime,
    sources: Sequence[JobSource],
    stop: threading.Event,
    *,
    poll_seconds: float = POLL_SECONDS,
    name: str | None = None,
) -> None:
    """Run work from ``sources`` until ``stop`` is set.

    Each pass offers every source one claim, in order, so a busy source cannot starve the
    others; the loop sleeps ``poll_seconds`` (or until ``stop``) only after a pass in which
    no source had work. A source that raises is logged and polled again on the next pass.
    """
    name = name or worker_name()
    while not stop.is_set():
        busy = False
        for source in sources:
            if stop.is_set():
                return
            try:
                busy = source.claim_and_run(runtime, name) or busy
            except ShipyardError as exc:
                log.warning("worker: %s: %s", source.name, exc.message,
                            extra={"job_source": source.name, "worker": name})
            except Exception:
                log.exception("worker: the %s job source failed", source.name,
                              extra={"job_source": source.name, "worker": name})
        if not busy:
            stop.wait(poll_seconds)


def start_worker(
    runtime: Runtime,
    sources: Sequence[JobSource],
    *,
    poll_seconds: float = POLL_SECONDS,
) -> tuple[threading.Thread, threading.Event]:
    """``run_worker`` in a daemon thread (the server's embedded worker); set the returned
    event and join the thread to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker, args=(runtime, list(sources), stop),
        kwargs={"poll_seconds": poll_seconds}, name="shipyard-worker", daemon=True,
    )  # fmt: skip
    thread.start()
    return thread, stop
