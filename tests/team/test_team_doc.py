"""docs/team.md runs as written (issue 23, item 9).

Its set-up is brought up for real: a PostgreSQL database (SHIPYARD_TEST_POSTGRES), a moto
S3 server holding the bucket, and the guide's own commands: its ``shipyard server`` block
started twice (two API hosts, two homes), its ``shipyard worker`` block, its ``curl`` and
user blocks run by bash, and its ``python team`` blocks run as Alice's script. The guide's
host names are replaced by 127.0.0.1 and this test's ports; nothing else is changed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.security.credentials import read_credentials
from tests.conftest import _pg_database, require_postgres
from tests.server.live import free_port

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "team.md"
BUCKET, PREFIX = "ml-team", "shipyard"


def blocks(kind: str) -> list[str]:
    """The guide's blocks fenced exactly as ```kind (```bash not-run is not run)."""
    return re.findall(rf"^```{kind}\n(.*?)^```", GUIDE.read_text(), flags=re.S | re.M)


def _until(what: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


@pytest.fixture
def s3() -> Iterator[dict[str, str]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _until(lambda: _answers(f"http://127.0.0.1:{port}/"))
        assert httpx.put(f"http://127.0.0.1:{port}/{BUCKET}", timeout=10).status_code == 200
        yield {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
               "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def database() -> Iterator[str]:
    require_postgres()
    yield from _pg_database()


class Team:
    """The guide's processes, its host names mapped to this test's ports."""

    def __init__(self, tmp: Path, settings: dict[str, str]) -> None:
        self.tmp = tmp
        self.settings = settings
        self.ports = {"api-1": free_port(), "api-2": free_port()}
        self.procs: list[subprocess.Popen[str]] = []

    def local(self, text: str, host: str | None = None) -> str:
        """The guide's text with its hosts replaced (the load balancer is api-1)."""
        for name, port in self.ports.items():
            text = text.replace(f"{name}.internal:8080", f"127.0.0.1:{port}")
        text = text.replace("shipyard.internal:8080", f"127.0.0.1:{self.ports['api-1']}")
        if host is not None:
            text = text.replace("--host 0.0.0.0 --port 8080",
                                f"--host 127.0.0.1 --port {self.ports[host]}")
        return text

    def env(self, home: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "AWS_"))}
        env.update(self.settings, SHIPYARD_HOME=str(self.tmp / home), **extra)
        return env

    def start(self, command: str, home: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(["bash", "-c", f"exec {command.strip()}"], env=self.env(home),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def bash(self, script: str, home: str, **extra: str) -> str:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=self.tmp,
                              env=self.env(home, **extra), capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def stop(self) -> str:
        out = []
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                out.append(proc.communicate(timeout=30)[0])
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out.append(proc.communicate()[0])
        return "\n".join(out)


def test_the_team_guide_runs_against_two_servers_postgres_and_s3(
    database: str, s3: dict[str, str], tmp_path: Path
) -> None:
    bash = blocks("bash")
    [server] = [b for b in bash if b.startswith("shipyard server")]
    [worker] = [b for b in bash if b.startswith("shipyard worker")]
    [ready] = [b for b in bash if b.startswith("curl")]
    [users] = [b for b in bash if "shipyard users create" in b]
    [alice] = blocks("python team")
    assert len(bash) == 4, "a new bash block in docs/team.md: run it here too"
    # The guide's example settings (its ```bash not-run block), with this test's values.
    [example] = blocks("bash not-run")
    assert "SHIPYARD_URI=" in example and "SHIPYARD_ARTIFACTS=" in example
    team = Team(tmp_path, {"SHIPYARD_URI": database,
                           "SHIPYARD_ARTIFACTS": f"s3://{BUCKET}/{PREFIX}", **s3})
    try:
        for host in ("api-1", "api-2"):  # the first creates the tables and the admin
            proc = team.start(team.local(server, host), home=host)
            url = f"http://127.0.0.1:{team.ports[host]}/api/v1/live"
            _until(lambda p=proc, u=url: p.poll() is not None or _answers(u))  # type: ignore[misc]
            assert proc.poll() is None, team.stop()
        checks = team.bash(team.local(ready), home="api-1").splitlines()
        assert [json.loads(line)["status"] for line in checks] == ["ready", "ready"]
        team.start(team.local(worker), home="worker-1")

        admin = read_credentials(tmp_path / "api-1")
        assert admin
        team.bash(team.local(users), home="admin", ADMIN_TOKEN=admin)
        token = json.loads((tmp_path / "alice.json").read_text())["plaintext"]

        script = tmp_path / "alice.py"
        script.write_text(team.local(alice))
        laptop = {k: v for k, v in os.environ.items()
                  if not k.startswith(("SHIPYARD_", "AWS_"))}
        laptop.update(SHIPYARD_HOME=str(tmp_path / "alice"), SHIPYARD_TOKEN=token,
                      SHIPYARD_URI=f"http://127.0.0.1:{team.ports['api-2']}")
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=laptop,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr + team.stop()
    except BaseException:
        print(team.stop())
        raise
    else:
        team.stop()
    # The blobs went to the bucket, under its prefix: nothing was written locally.
    listing = httpx.get(f"{s3['AWS_ENDPOINT_URL']}/{BUCKET}?list-type=2&prefix={PREFIX}/",
                        timeout=10).text
    assert listing.count("<Key>") >= 3, listing  # the two steps' outputs and the marker
