"""``shipyard server`` as a real process, for tests that stop, kill or restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.server.live import free_port


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    url: str
    port: int

    def stop(self, sig: int = signal.SIGINT) -> str:
        """Stop it (SIGINT: uvicorn's graceful stop) and return what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # Stuck: SIGABRT makes faulthandler (PYTHONFAULTHANDLER, set by server_env)
            # print every thread's stack, which says where it hangs.
            self.proc.send_signal(signal.SIGABRT)
            out, _ = self.proc.communicate(timeout=30)
            raise AssertionError(f"the server did not stop within 30 s:\n{out[-12000:]}"
                                 ) from None
        return out


def server_env(home: Path, uri: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(home)
    env["PYTHONFAULTHANDLER"] = "1"  # a stack dump of each thread on SIGABRT (see stop)
    if uri is not None:
        env["SHIPYARD_URI"] = uri
    env.update(extra)
    return env


def start_server(env: dict[str, str], *options: str, port: int | None = None,
                 wait: bool = True) -> ServerProcess:
    """Start ``shipyard server`` on 127.0.0.1 and, with ``wait``, wait until it answers."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "server", "--port", str(port), *options],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", port)
    if wait:
        wait_until_up(server)
    return server


def wait_until_up(server: ServerProcess, timeout: float = 120.0) -> None:
    # Generous: on a loaded machine importing the server alone can take tens of seconds.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"the server exited: {server.stop()}")
        try:
            httpx.get(f"{server.url}/api/v1/live", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"the server did not start: {server.stop(signal.SIGKILL)}")


@contextmanager
def running_server(env: dict[str, str], *options: str, port: int | None = None
                   ) -> Iterator[ServerProcess]:
    server = start_server(env, *options, port=port)
    try:
        yield server
    finally:
        server.stop()
