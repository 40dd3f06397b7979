"""The deserialization tripwire is armed around the API suites' live servers."""

from __future__ import annotations

import os
import pickle
import threading

import httpx

from shipyard.security.tripwire import Tripwire, UnsafeDeserialization
from tests.server.conftest import live, live_uri  # noqa: F401 - fixtures
from tests.server.live import LiveServer


def test_unpickling_trips_while_the_server_runs(live: LiveServer,  # noqa: F811
                                                server_tripwire: Tripwire | None) -> None:
    assert server_tripwire is not None
    before = len(server_tripwire.trips)
    payload = pickle.dumps(os.getcwd)  # resolving a global is what any exploit needs
    caught: list[BaseException] = []

    def server_side() -> None:
        # Another thread, as the server's request handlers are: the patch is process-wide.
        try:
            pickle.loads(payload)
        except UnsafeDeserialization as exc:
            caught.append(exc)

    thread = threading.Thread(target=server_side)
    thread.start()
    thread.join()
    assert len(caught) == 1
    with httpx.Client(base_url=live.url) as anon:
        assert anon.get("/api/v1/health").status_code == 200
    assert len(server_tripwire.trips) == before + 1
    # Tripped on purpose: not a failure of this test (the autouse check would report it).
    del server_tripwire.trips[before:]

