"""``shipyard server`` prints a one-time console login link at start (security review,
item 10; DESIGN.md 6), and the link works end to end: once, for the admin, as a cookie."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.server.live import free_port

LINK = re.compile(r"Console login link \(works once, for 15 minutes\): (http://\S+/login/\S+)")


def test_the_printed_login_link_signs_the_console_in_once(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home")}
    env.pop("SHIPYARD_URI", None)
    command = [sys.executable, "-c", "from shipyard.cli.main import main; main()",
               "server", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env)
    try:
        assert server.stdout is not None
        printed: list[str] = []
        link = None
        deadline = time.monotonic() + 30
        while link is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
            printed.append(line)
            match = LINK.search(line)
            link = match.group(1) if match else None
        assert link is not None, "".join(printed)
        assert link.startswith(f"http://127.0.0.1:{port}/login/")
        for _ in range(100):  # the link is printed just before uvicorn listens
            try:
                first = httpx.get(link, follow_redirects=False, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert first.status_code == 303
        cookie = first.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", cookies=first.cookies) as web:
            whoami = web.get("/api/v1/whoami")
            assert whoami.status_code == 200, whoami.text
            assert whoami.json()["name"] == "admin"
        again = httpx.get(link, follow_redirects=False, timeout=2)
        assert again.status_code == 401  # spent
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stdout is not None:
            server.stdout.close()


def test_steps_call_back_on_the_servers_local_address() -> None:
    from shipyard.server.run import local_url

    assert local_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert local_url("0.0.0.0", 9000) == "http://127.0.0.1:9000"  # a wildcard bind
    assert local_url("::", 9000) == "http://[::1]:9000"
    assert local_url("::1", 81) == "http://[::1]:81"
