"""Start the server: check the port first so a busy port is one clear line, not a trace."""

from __future__ import annotations

import errno
import logging
import socket

import uvicorn

from shipyard.config import Settings
from shipyard.errors import FailedPrecondition
from shipyard.server.app import bootstrap, create_app

log = logging.getLogger(__name__)


def check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise FailedPrecondition(
                    f"port {port} on {host} is already in use: stop the other process or "
                    f"pass --port", field="port") from None
            raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror}",
                                     field="host") from None


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8080,
          announce: bool = True) -> None:
    check_port(host, port)
    token = bootstrap(settings)
    app = create_app(settings)
    if announce:
        where = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        print(f"Shipyard {where}  (API docs: {where}/docs)", flush=True)
        if token:
            print(f"Created the admin token; it is in {settings.credentials_path} (0600). "
                  "The SDK and CLI on this machine use it automatically.", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
