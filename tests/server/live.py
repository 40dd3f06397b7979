"""A real uvicorn server on 127.0.0.1 in a background thread, for tests."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from shipyard.config import Settings
from shipyard.server.app import bootstrap, create_app


@dataclass
class LiveServer:
    url: str
    token: str
    settings: Settings
    # The FastAPI app being served, for tests that need its state (login links).
    app: Any = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(settings: Settings, *, port: int | None = None, **app_options: Any
                ) -> Iterator[LiveServer]:
    """A server for ``settings``; a second one on the same home reuses the admin token."""
    from shipyard.security.credentials import read_credentials

    token = bootstrap(settings) or read_credentials(settings.home)
    assert token is not None
    port = port or free_port()
    if settings.server_url is None:  # as ``serve`` does: steps of server-side runs call back
        settings = dataclasses.replace(settings, server_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, **app_options)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    with running(config):
        yield LiveServer(url=f"http://127.0.0.1:{port}", token=token, settings=settings,
                         app=app)


@contextmanager
def running(config: uvicorn.Config) -> Iterator[uvicorn.Server]:
    """Serve ``config`` in a background thread until the block ends."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
