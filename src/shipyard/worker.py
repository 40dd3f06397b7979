"""The worker loop: runs queued pipeline runs (later: schedules and monitors).

``shipyard server`` runs it in a background thread; ``shipyard worker`` runs it in its own
process so work can move off the server. Each claimed run is driven here while its steps run
in child processes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from shipyard.artifacts import ArtifactStore
from shipyard.config import Settings
from shipyard.errors import ShipyardError
from shipyard.store import Store

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"[:128]


def run_worker(store: Store, artifacts: ArtifactStore, settings: Settings,
               stop: threading.Event, *, poll_seconds: float = 0.5) -> None:
    from shipyard.pipelines import claim_and_run_next

    name = worker_name()
    while not stop.is_set():
        try:
            ran = claim_and_run_next(store, artifacts, name, settings=settings)
        except ShipyardError as exc:
            log.warning("worker: %s", exc.message)
            ran = None
        except Exception:
            log.exception("worker: a queued run could not be executed")
            ran = None
        if ran is None:
            stop.wait(poll_seconds)


def start_worker(store: Store, artifacts: ArtifactStore, settings: Settings
                 ) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(store, artifacts, settings, stop),
                              name="shipyard-worker", daemon=True)
    thread.start()
    return thread, stop
